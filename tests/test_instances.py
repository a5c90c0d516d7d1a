import numpy as np
import pytest
from scipy import ndimage as ndi

from nucleiseg import instances
from nucleiseg.errors import ConfigError
from nucleiseg.instances import Thresholds, confidence, labels_from_maps
from nucleiseg.metrics import dsb_score, match
from nucleiseg.synthetic import make_nuclei
from nucleiseg.targets import make_targets


def same_objects(a: np.ndarray, b: np.ndarray) -> bool:
    """Equal up to renumbering: the labels map one to one."""
    pairs = np.unique(np.stack([a.ravel(), b.ravel()]), axis=1)
    return (len(np.unique(pairs[0])) == pairs.shape[1] == len(np.unique(pairs[1]))
            and ((pairs[0] == 0) == (pairs[1] == 0)).all())


def majority(pred: np.ndarray, where: np.ndarray) -> int:
    return int(np.bincount(pred[where]).argmax())


def from_targets(labels: np.ndarray, heads: str = "contour", **thresholds) -> np.ndarray:
    maps = make_targets(labels, heads=heads)
    contour = maps[..., 1] if heads == "contour" else None
    return labels_from_maps(maps[..., 0], contour, Thresholds(**thresholds))


def degrade(maps: np.ndarray, sigma: float, noise: float, seed: int) -> np.ndarray:
    """What a decent network might give: blurred maps with smooth noise, clipped to [0, 1]."""
    rng = np.random.default_rng(seed)
    blurred = ndi.gaussian_filter(maps, (sigma, sigma, 0))
    speckle = ndi.gaussian_filter(rng.standard_normal(maps.shape), (1, 1, 0))
    return np.clip(blurred + noise * speckle / speckle.std(), 0, 1)


# ---------------------------------------------------------------------------------------------
# Perfect maps give back the labels
# ---------------------------------------------------------------------------------------------


def test_perfect_maps_of_separate_nuclei_give_back_the_labels():
    for seed in range(3):
        truth = make_nuclei((128, 160), 20, seed=seed).labels
        for heads in ("contour", "mask"):
            pred = from_targets(truth, heads, min_size=0)
            assert pred.dtype == np.uint16
            assert same_objects(truth, pred)
            assert dsb_score(truth, pred) == 1.0


def test_touching_pairs_come_apart_with_the_contour_head_only():
    sample = make_nuclei((256, 256), 30, touching_pairs=5, seed=3)
    truth = sample.labels
    assert len(sample.pairs) == 5

    split = from_targets(truth, "contour")
    assert split.max() == sample.n_nuclei
    assert dsb_score(truth, split) == 1.0
    for a, b in sample.pairs:  # two objects each
        assert majority(split, truth == a) != majority(split, truth == b)
    # Exact up to the shared border: inside the contour band both sides look alike (foreground
    # and contour are 1), so the maps cannot say where the border runs to the pixel.
    wrong = sum(int(((truth == t) & (split != majority(split, truth == t)) & (truth > 0)).sum())
                for t in range(1, sample.n_nuclei + 1))
    assert wrong <= len(sample.pairs)

    merged = from_targets(truth, "mask")
    assert merged.max() == sample.n_nuclei - 5
    for a, b in sample.pairs:  # one object each
        assert len(np.unique(merged[(truth == a) | (truth == b)])) == 1
    assert match(truth, merged).fn >= 5  # at best the blob still matches the larger one
    assert dsb_score(truth, merged) < 0.9


def test_blurred_noisy_maps_still_score_well():
    scores = []
    for seed in range(4):
        truth = make_nuclei((256, 256), 30, touching_pairs=5, seed=seed).labels
        maps = degrade(make_targets(truth), sigma=1.5, noise=0.05, seed=seed)
        pred = labels_from_maps(maps[..., 0], maps[..., 1], Thresholds(contour=0.3))
        scores.append(dsb_score(truth, pred))
    assert min(scores) > 0.8, scores


def test_chosen_elevation_beats_contour_alone(monkeypatch):
    """The measurement behind instances._elevation: 1 - foreground + contour vs contour."""
    cases = []
    for seed in range(8):
        truth = make_nuclei((192, 192), 25, touching_pairs=5, seed=seed).labels
        cases.append((truth, degrade(make_targets(truth), sigma=2.0, noise=0.1, seed=seed)))

    def mean_score():
        return np.mean([dsb_score(t, labels_from_maps(m[..., 0], m[..., 1], Thresholds(contour=0.3)))
                        for t, m in cases])

    chosen = mean_score()
    monkeypatch.setattr(instances, "_elevation", lambda foreground, contour: contour)
    alone = mean_score()
    assert chosen > alone


# ---------------------------------------------------------------------------------------------
# Seeds, orphans, small objects
# ---------------------------------------------------------------------------------------------


def test_blob_without_a_seed_is_still_a_nucleus():
    foreground = np.zeros((12, 12))
    foreground[2:5, 2:5] = 1.0
    foreground[6:11, 6:11] = 1.0
    contour = foreground.copy()  # all contour: no seed anywhere
    pred = labels_from_maps(foreground, contour, Thresholds(min_size=0))
    assert pred.max() == 2
    assert same_objects(pred, ndi.label(foreground > 0)[0])


def test_a_speck_of_low_contour_does_not_split_a_nucleus():
    foreground = np.zeros((24, 24))
    foreground[2:22, 2:22] = 1.0
    contour = foreground.copy()
    contour[7:17, 7:17] = 0.0  # the real interior
    contour[4, 4] = 0.0  # a one-pixel dip in the contour band
    pred = labels_from_maps(foreground, contour, Thresholds(min_size=0))
    assert pred.max() == 1
    # ...while a real second interior does split it.
    contour[3:6, 3:6] = 0.0
    assert labels_from_maps(foreground, contour, Thresholds(min_size=0)).max() == 2


def test_min_size_removes_specks_and_renumbers():
    truth = make_nuclei((96, 96), 6, radius=(6, 8), seed=1).labels
    maps = make_targets(truth)
    foreground, contour = maps[..., 0].copy(), maps[..., 1].copy()
    speck_pixels = [(0, 0), (0, 1), (95, 95)]  # corners are always free of nuclei
    for y, x in speck_pixels:
        foreground[y, x] = 1.0
    assert labels_from_maps(foreground, contour, Thresholds(min_size=0)).max() == truth.max() + 2
    pred = labels_from_maps(foreground, contour, Thresholds(min_size=3))
    assert same_objects(truth, pred)
    assert set(np.unique(pred)) == set(range(truth.max() + 1))  # sequential 0..N
    assert labels_from_maps(foreground, None, Thresholds(min_size=3)).max() == truth.max()
    assert labels_from_maps(foreground, contour, Thresholds(min_size=10_000)).max() == 0


def test_foreground_threshold_is_strict():
    foreground = np.full((4, 4), 0.5)
    assert labels_from_maps(foreground, None, Thresholds(min_size=0)).max() == 0
    assert labels_from_maps(foreground, None, Thresholds(foreground=0.4, min_size=0)).max() == 1


# ---------------------------------------------------------------------------------------------
# Shapes and types
# ---------------------------------------------------------------------------------------------


def test_one_row_and_empty_inputs():
    row = np.array([[0, 1, 1, 0, 1, 1, 1, 0, 1]], float)
    for contour in (None, np.zeros_like(row)):
        pred = labels_from_maps(row, contour, Thresholds(min_size=0))
        assert pred.shape == (1, 9) and pred.dtype == np.uint16
        np.testing.assert_array_equal(pred, [[0, 1, 1, 0, 2, 2, 2, 0, 3]])
    for shape in ((1, 1), (7, 5)):
        zeros = np.zeros(shape, np.float32)
        for contour in (None, zeros):
            pred = labels_from_maps(zeros, contour)
            assert pred.shape == shape and pred.dtype == np.uint16 and not pred.any()


def test_more_than_65535_objects_use_uint32():
    row = np.zeros((1, 2 * 70_000))
    row[0, ::2] = 1.0
    pred = labels_from_maps(row, None, Thresholds(min_size=0))
    assert pred.dtype == np.uint32 and pred.max() == 70_000


def test_bad_maps_are_rejected():
    with pytest.raises(ValueError, match="2-D"):
        labels_from_maps(np.zeros((2, 3, 3)))
    with pytest.raises(ValueError, match="shape"):
        labels_from_maps(np.zeros((3, 3)), np.zeros((3, 4)))


# ---------------------------------------------------------------------------------------------
# Confidence
# ---------------------------------------------------------------------------------------------


def test_confidence_is_the_mean_foreground_per_label():
    foreground = np.array([[0.9, 0.7, 0.1],
                           [0.2, 0.6, 0.4],
                           [0.0, 0.0, 0.8]])
    labels = np.array([[1, 1, 0],
                       [0, 3, 3],
                       [0, 0, 3]], np.uint16)
    conf = confidence(foreground, labels)
    assert conf.shape == (3,)
    np.testing.assert_allclose(conf[[0, 2]], [0.8, 0.6])
    assert np.isnan(conf[1])  # label 2 is absent
    assert confidence(foreground, np.zeros_like(labels)).shape == (0,)


# ---------------------------------------------------------------------------------------------
# Thresholds
# ---------------------------------------------------------------------------------------------


def test_thresholds_round_trip_and_validate():
    t = Thresholds(foreground=0.4, contour=0.3, min_size=16)
    assert t.to_dict() == {"foreground": 0.4, "contour": 0.3, "min_size": 16}
    assert Thresholds.from_dict(t.to_dict()) == t
    assert Thresholds.from_dict({"min_size": 8}) == Thresholds(min_size=8)
    with pytest.raises(ConfigError, match="unknown threshold key.*'prob'"):
        Thresholds.from_dict({"prob": 0.5, "min_size": 8})
    with pytest.raises(ConfigError, match="foreground"):
        Thresholds(foreground=1.5)
    with pytest.raises(ConfigError, match="min_size"):
        Thresholds(min_size=-1)
    with pytest.raises(ConfigError, match="min_size"):
        Thresholds(min_size=2.5)


# ---------------------------------------------------------------------------------------------
# Real DSB2018 masks
# ---------------------------------------------------------------------------------------------


def test_perfect_maps_of_real_masks_give_back_nearly_all_nuclei(dsb_meta):
    """Hand-drawn masks have odd shapes and tiny nuclei; the round trip must still hold up."""
    from conftest import SHARED_DSB, pick_ids

    from nucleiseg.io import read_image
    from nucleiseg.labels import masks_to_labels

    for sample_id in pick_ids(dsb_meta, {"fluorescence_gray": 2, "color_stained": 1}):
        paths = sorted((SHARED_DSB / "stage1_train" / sample_id / "masks").glob("*.png"))
        truth, _ = masks_to_labels([read_image(p) > 0 for p in paths])
        pred = from_targets(truth, "contour", min_size=0)
        assert dsb_score(truth, pred) > 0.9, sample_id
