"""Synthetic nuclei images with exact ground truth, for the tests and the offline demo.

Real DSB2018 masks are hand-drawn and imperfect. A generator that draws the nuclei itself knows
every pixel's true label, so tests can check segmentation and measurements against exact answers,
and the demo workflow runs with no download and no credentials.

Nuclei are filled ellipses (`skimage.draw.ellipse`), placed apart or in touching pairs
(`placement.py`): exactly the case an instance segmentation has to learn to split. The image is
rendered from the labels (`render.py`: texture, blur, illumination, noise); the labels themselves
are never blurred or noised, so they stay exact. `nuclei.py` makes one image and its truth,
`writers.py` writes a dataset in Kaggle's layout (`make_synthetic_dataset`) and the demo's batch
(`make_synthetic_batch`).
"""

from .nuclei import BIT_DEPTHS, TRUTH_COLUMNS, SyntheticImage, dataset_sample, make_nuclei
from .writers import SYNTHETIC_BATCH_PIXEL_SIZE_UM, make_synthetic_batch, make_synthetic_dataset

__all__ = [
    "BIT_DEPTHS",
    "SYNTHETIC_BATCH_PIXEL_SIZE_UM",
    "TRUTH_COLUMNS",
    "SyntheticImage",
    "dataset_sample",
    "make_nuclei",
    "make_synthetic_batch",
    "make_synthetic_dataset",
]
