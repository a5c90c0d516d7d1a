"""The columns of a batch's per-image tables, defined once for the stages that write them.

segment.py writes one row per file of a chunk (SEGMENTED_COLUMNS); report.py gathers them into
images.csv (IMAGES_COLUMNS) and skipped.csv (SKIPPED_COLUMNS). Both import the names from here,
so drawing the tables never needs what segmenting needs (TensorFlow).
"""

from __future__ import annotations

# The timed stages of segmenting one image, in order (seconds_<stage> columns).
STAGES = ("read", "normalize", "predict", "instances", "write")
MEASURE_STAGES = ("measure", "overlay")

# How the network saw the image (segment.rescale): its estimated nucleus diameter (pixels of
# the image; empty unless rescale is auto) and the factor it was resized by.
SCALE_COLUMNS = ("nucleus_diameter_px", "rescale_factor")
# Which engine ran the network and in what arithmetic (segment.backend, segment.precision).
ENGINE_COLUMNS = ("backend", "precision")
SEGMENTED_COLUMNS = ("image_id", "file", "status", "reason", "description", "height", "width",
                     "pixel_size_um", "pixel_size_source", "n_nuclei", *SCALE_COLUMNS,
                     "labels_file", *ENGINE_COLUMNS,
                     *(f"seconds_{s}" for s in STAGES))
MEASURE_SECONDS_COLUMNS = ("image_id", *(f"seconds_{s}" for s in MEASURE_STAGES))
CONFIDENCE_COLUMNS = ("image_id", "label", "confidence")

SUMMARY_COLUMNS = ("n_nuclei", "n_touching_border", "coverage", "mean_area", "median_area",
                   "mean_area_um2", "median_area_um2", "mean_intensity", "mean_confidence")
SKIPPED_COLUMNS = ("image_id", "file", "reason")
IMAGES_COLUMNS = ("image_id", "file", "description", "height", "width", "pixel_size_um",
                  "pixel_size_source", *SUMMARY_COLUMNS, *SCALE_COLUMNS, "labels_file",
                  *ENGINE_COLUMNS,
                  *(f"seconds_{s}" for s in (*STAGES, *MEASURE_STAGES)))
