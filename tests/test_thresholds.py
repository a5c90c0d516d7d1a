import json

import numpy as np
import pytest
from scipy import ndimage as ndi

from nucleiseg.errors import ConfigError
from nucleiseg.instances import Thresholds, labels_from_maps
from nucleiseg.metrics import dsb_score
from nucleiseg.synthetic import make_nuclei
from nucleiseg.targets import make_targets
from nucleiseg.thresholds import (
    DEFAULT_GRID,
    load_thresholds,
    search_thresholds,
    save_thresholds,
)

SMALL_GRID = {"foreground": (0.3, 0.5, 0.7), "contour": (0.3, 0.5), "min_size": (0, 16)}


def validation_set(n_images: int = 4, shape=(128, 128)):
    """Blurred perfect maps with a known best region.

    The contour map is scaled to peak at 0.45, so a contour threshold of 0.5 or more finds no
    contour and merges the touching pairs; and 3x3 specks of foreground are sprinkled on the
    background, so min_size 0 counts them as nuclei.
    """
    predictions, truths = [], []
    for seed in range(n_images):
        truth = make_nuclei(shape, 15, touching_pairs=4, seed=seed).labels
        maps = ndi.gaussian_filter(make_targets(truth), (1, 1, 0))
        maps[..., 1] *= 0.45 / maps[..., 1].max()
        free = ndi.binary_dilation(truth > 0, iterations=3)
        rng = np.random.default_rng(seed)
        for y, x in rng.integers(2, np.array(shape) - 2, size=(6, 2)):
            if not free[y - 2:y + 3, x - 2:x + 3].any():
                maps[y - 1:y + 2, x - 1:x + 2, 0] = 0.9
        predictions.append(maps.astype(np.float32))
        truths.append(truth)
    return predictions, truths


@pytest.fixture(scope="module")
def validation():
    return validation_set()


def test_search_finds_the_known_best_region(validation):
    predictions, truths = validation
    best, table = search_thresholds(predictions, truths)
    assert len(table) == np.prod([len(v) for v in DEFAULT_GRID.values()])
    assert list(table.columns) == ["foreground", "contour", "min_size", "dsb_score", "ap_50"]
    assert table["dsb_score"].is_monotonic_decreasing
    assert table.iloc[0]["dsb_score"] == table["dsb_score"].max() > table["dsb_score"].min()
    assert best.contour < 0.45 and best.min_size > 0
    top = table.iloc[0]["dsb_score"]
    assert table.loc[table["contour"] >= 0.5, "dsb_score"].max() < top - 0.05  # merged pairs
    assert table.loc[table["min_size"] == 0, "dsb_score"].max() < top - 0.05  # specks
    # The table's score is what labels_from_maps with these thresholds really gets.
    scores = [dsb_score(t, labels_from_maps(p[..., 0], p[..., 1], best))
              for p, t in zip(predictions, truths)]
    assert np.mean(scores) == pytest.approx(table.iloc[0]["dsb_score"], abs=1e-12)
    assert np.mean(scores) > 0.9


def test_every_row_matches_labels_from_maps(validation):
    """The min_size shortcut (one watershed, several filters) changes no score."""
    predictions, truths = validation
    _, table = search_thresholds(predictions, truths, grid=SMALL_GRID)
    for row in table.itertuples():
        t = Thresholds(row.foreground, row.contour, row.min_size)
        scores = [dsb_score(y, labels_from_maps(p[..., 0], p[..., 1], t))
                  for p, y in zip(predictions, truths)]
        assert np.mean(scores) == pytest.approx(row.dsb_score, abs=1e-12)


def test_mask_heads_search_foreground_and_min_size_only(validation):
    predictions, truths = validation
    masks = [p[..., :1] for p in predictions]  # a one-channel model's output
    best, table = search_thresholds(masks, truths, heads="mask")
    assert list(table.columns) == ["foreground", "min_size", "dsb_score", "ap_50"]
    assert len(table) == len(DEFAULT_GRID["foreground"]) * len(DEFAULT_GRID["min_size"])
    assert best.contour == Thresholds().contour  # untouched: nothing to search
    assert table.loc[table["min_size"] == 0, "dsb_score"].max() < table["dsb_score"].max()
    _, contour_table = search_thresholds(predictions, truths)
    assert contour_table["dsb_score"].max() > table["dsb_score"].max()  # the pairs merge


def test_custom_grid_is_respected(validation):
    predictions, truths = validation
    grid = {"foreground": [0.45, 0.55], "min_size": [4]}
    best, table = search_thresholds(predictions, truths, grid=grid)
    assert len(table) == 2 * len(DEFAULT_GRID["contour"])
    assert set(table["foreground"]) == {0.45, 0.55}
    assert set(table["contour"]) == set(DEFAULT_GRID["contour"])
    assert set(table["min_size"]) == {4}
    assert best.foreground in (0.45, 0.55) and best.min_size == 4
    with pytest.raises(ValueError, match="unknown threshold grid key"):
        search_thresholds(predictions, truths, grid={"prob": [0.5]})
    with pytest.raises(ValueError, match="empty"):
        search_thresholds(predictions, truths, grid={"min_size": []})
    with pytest.raises(ConfigError, match="foreground"):
        search_thresholds(predictions, truths, grid={"foreground": [1.5]})


def test_ties_go_to_the_middle_of_the_grid_then_the_first():
    """Maps with no contour and no specks: every contour and min_size ties."""
    truth = make_nuclei((64, 64), 4, seed=0).labels
    maps = make_targets(truth)
    maps[..., 1] = 0.0
    grid = {"foreground": (0.5,), "contour": (0.2, 0.3, 0.4, 0.5, 0.6), "min_size": (0, 8)}
    best, table = search_thresholds([maps], [truth], grid=grid)
    assert (table["dsb_score"] == 1.0).all()
    assert (best.contour, best.min_size) == (0.4, 0)
    assert table[["contour", "min_size"]].iloc[:2].values.tolist() == [[0.4, 0], [0.4, 8]]


def test_search_is_deterministic(validation):
    predictions, truths = validation
    first = search_thresholds(predictions, truths, grid=SMALL_GRID)
    second = search_thresholds(predictions[::-1], truths[::-1], grid=SMALL_GRID)
    assert first[0] == second[0]
    # Image order changes only the summation order of the means.
    np.testing.assert_allclose(first[1]["dsb_score"], second[1]["dsb_score"], atol=1e-12)
    assert first[1][["foreground", "contour", "min_size"]].equals(
        second[1][["foreground", "contour", "min_size"]])


def test_bad_inputs_are_rejected(validation):
    predictions, truths = validation
    with pytest.raises(ValueError, match="pair up"):
        search_thresholds(predictions, truths[:-1])
    with pytest.raises(ValueError, match="at least one"):
        search_thresholds([], [])
    with pytest.raises(ConfigError, match="heads"):
        search_thresholds(predictions, truths, heads="edges")
    with pytest.raises(ValueError, match=r"\(H, W, 2\)"):
        search_thresholds([p[..., :1] for p in predictions], truths)
    with pytest.raises(ValueError, match="truth"):
        search_thresholds(predictions, [t[1:] for t in truths])


def test_json_round_trip(tmp_path):
    path = tmp_path / "model" / "thresholds.json"
    thresholds = Thresholds(foreground=0.4, contour=0.3, min_size=16)
    save_thresholds(thresholds, path)
    assert json.loads(path.read_text()) == {"contour": 0.3, "foreground": 0.4, "min_size": 16}
    assert load_thresholds(path) == thresholds
    assert not list(path.parent.glob("*.part"))  # written atomically, nothing left behind


def test_loading_rejects_unknown_keys(tmp_path):
    path = tmp_path / "thresholds.json"
    path.write_text(json.dumps({"foreground": 0.5, "contour": 0.5, "min_size": 8, "nms": 0.3}))
    with pytest.raises(ConfigError, match=r"thresholds\.json.*'nms'"):
        load_thresholds(path)
