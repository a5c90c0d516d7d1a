"""CellProfiler as the oracle: its measurement modules on arrays, the nuclear profile's settings.

MeasureObjectSizeShape runs with its advanced measurements (the moments and the inertia tensor)
and its Zernike features; MeasureObjectIntensity; MeasureObjectNeighbors twice, the nuclei their
own neighbours, Adjacent and Within NEIGHBOUR_DISTANCE px; MeasureObjectIntensityDistribution
with its defaults (RADIAL_BINS scaled rings, each object its own centre, no intensity Zernikes);
MeasureTexture on the objects at TEXTURE_SCALE px and TEXTURE_LEVELS grey levels. The object
centres Location_Center_X/Y are added as the Identify modules add them
(ImageSegmentation.add_measurements, which IdentifyPrimaryObjects calls).

Run with the python of .venv-cellprofiler (CellProfiler 4.2.8.1, Python 3.8/3.9; .ci/install-
cellprofiler), not the project's: tests/test_cellprofiler.py calls it as a subprocess.

    .venv-cellprofiler/bin/python tests/cellprofiler_oracle.py OUT_DIR CASE.npz [CASE.npz ...]

Each CASE.npz holds `labels` (2D integers, 0 = background, objects numbered 1..n with none
missing, as CellProfiler's object numbers are), `intensity` (2D, same shape) and `full_scale`
(the intensity of white: MeasureTexture, alone among these modules, sees intensity /
full_scale, the [0, 1] image CellProfiler's loader would give it). For each case it
writes OUT_DIR/<CASE>.csv: one row per object, `ObjectNumber` then every per-object
measurement the two modules record, named as CellProfiler names them, the image being "DNA"
(`AreaShape_Area`, `Intensity_MeanIntensity_DNA`, `Location_MaxIntensity_X_DNA`, ...), floats
written in full (repr), NaN and inf as nan and inf.

The modules run in-process on an in-memory Pipeline, Workspace, ObjectSet and ImageSet, as
CellProfiler's own module tests build them: no Java, no files but these. The intensity image is
given to CellProfiler as float64 with convert=False: CellProfiler's own loading would cast it to
float32 and scale integer images to [0, 1] (cellprofiler_core/image/_image.py, Image.set_image),
which would compare the loaders, not the definitions.
"""

import csv
import sys
from pathlib import Path

import cellprofiler_core.preferences
import numpy as np

cellprofiler_core.preferences.set_headless()

from cellprofiler.modules.identifyprimaryobjects import IdentifyPrimaryObjects  # noqa: E402
from cellprofiler.modules.measureobjectintensity import MeasureObjectIntensity  # noqa: E402
from cellprofiler.modules.measureobjectintensitydistribution import (  # noqa: E402
    MeasureObjectIntensityDistribution,
)
from cellprofiler.modules.measureobjectneighbors import (  # noqa: E402
    D_ADJACENT,
    D_WITHIN,
    MeasureObjectNeighbors,
)
from cellprofiler.modules.measureobjectsizeshape import MeasureObjectSizeShape  # noqa: E402
from cellprofiler.modules.measuretexture import IO_OBJECTS, MeasureTexture  # noqa: E402
from cellprofiler_core.image import Image, ImageSetList  # noqa: E402
from cellprofiler_core.measurement import Measurements  # noqa: E402
from cellprofiler_core.object import Objects, ObjectSet  # noqa: E402
from cellprofiler_core.pipeline import Pipeline  # noqa: E402
from cellprofiler_core.workspace import Workspace  # noqa: E402

OBJECTS = "Nuclei"
IMAGE = "DNA"
# The profile's scales (nucleiseg's morphometrics constants; the column names carry them, so a
# mismatch shows as a column CellProfiler does not write)
NEIGHBOUR_DISTANCE = 5
RADIAL_BINS = 4
TEXTURE_SCALE = 3
TEXTURE_LEVELS = 256
CATEGORIES = ("AreaShape", "Intensity", "Location", "Neighbors", "RadialDistribution", "Texture")


def _module(module, **settings):
    """A CellProfiler module with these settings (setting name: value) on the DNA nuclei."""
    for name, value in settings.items():
        getattr(module, name).value = value
    return module


def _neighbours(method):
    return _module(MeasureObjectNeighbors(), object_name=OBJECTS, neighbors_name=OBJECTS,
                   distance_method=method, distance=NEIGHBOUR_DISTANCE, wants_count_image=False,
                   wants_percent_touching_image=False)


def _radial():
    module = MeasureObjectIntensityDistribution()  # its defaults: 4 scaled bins, C_SELF
    module.images_list.value = IMAGE
    module.objects[0].object_name.value = OBJECTS
    assert module.bin_counts[0].bin_count.value == RADIAL_BINS
    assert module.bin_counts[0].wants_scaled.value
    return module


def _texture():
    module = _module(MeasureTexture(), images_list=IMAGE, objects_list=OBJECTS,
                     images_or_objects=IO_OBJECTS, gray_levels=TEXTURE_LEVELS)
    module.scale_groups[0].scale.value = TEXTURE_SCALE
    return module


def _modules():
    """The modules on the raw image, and MeasureTexture (on the image scaled to [0, 1])."""
    modules = (_module(MeasureObjectSizeShape(), objects_list=OBJECTS, calculate_zernikes=True,
                       calculate_advanced=True),
               _module(MeasureObjectIntensity(), images_list=IMAGE, objects_list=OBJECTS),
               _neighbours(D_ADJACENT), _neighbours(D_WITHIN), _radial(), _texture())
    for number, module in enumerate(modules, start=1):
        module.set_module_num(number)
        module.show_window = False
    return modules[:-1], modules[-1]


def _image_set(image_set_list, number, pixels):
    image_set = image_set_list.get_image_set(number)
    image_set.add(IMAGE, Image(np.asarray(pixels, dtype=np.float64), convert=False))
    return image_set


def measure(labels, intensity, full_scale):
    """{measurement name: per-object values}, object k + 1 at index k."""
    labels = np.asarray(labels)
    present = np.unique(labels[labels != 0])
    if present.size == 0 or not np.array_equal(present, np.arange(1, present.size + 1)):
        raise ValueError("labels must number the objects 1..n with none missing, got "
                         "%d objects up to %d" % (present.size, labels.max(initial=0)))
    image_set_list = ImageSetList()
    raw = _image_set(image_set_list, 0, intensity)
    scaled = _image_set(image_set_list, 1, np.asarray(intensity, np.float64) / full_scale)
    objects = Objects()
    objects.segmented = labels.astype(np.int32)
    object_set = ObjectSet()
    object_set.add_objects(objects, OBJECTS)
    measurements = Measurements(mode="memory")
    pipeline = Pipeline()
    on_raw, texture = _modules()
    for module in on_raw + (texture,):
        pipeline.add_module(module)
    for module, image_set in [(m, raw) for m in on_raw] + [(texture, scaled)]:
        workspace = Workspace(pipeline, module, image_set, object_set, measurements,
                              image_set_list)
        module.run(workspace)
    # What IdentifyPrimaryObjects.run ends with: Location_Center_X/Y of the objects
    IdentifyPrimaryObjects().add_measurements(workspace, OBJECTS)
    names = [name for name in measurements.get_feature_names(OBJECTS)
             if name.split("_")[0] in CATEGORIES]
    table = {name: np.asarray(measurements.get_current_measurement(OBJECTS, name), float)
             for name in sorted(names)}
    for name, values in table.items():
        if values.shape != (present.size,):
            raise RuntimeError("%s has %d values for %d objects" % (name, values.size,
                                                                    present.size))
    return table


def write_csv(table, path):
    names = list(table)
    count = len(next(iter(table.values())))
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["ObjectNumber"] + names)
        for k in range(count):
            writer.writerow([k + 1] + [repr(float(table[name][k])) for name in names])


def main(argv):
    if len(argv) < 3:
        sys.exit(__doc__)
    out = Path(argv[1])
    out.mkdir(parents=True, exist_ok=True)
    for case in map(Path, argv[2:]):
        with np.load(case) as data:
            table = measure(data["labels"], data["intensity"], float(data["full_scale"]))
        write_csv(table, out / (case.stem + ".csv"))


if __name__ == "__main__":
    main(sys.argv)
