"""Tiled prediction, with tiny real networks (random weights, CPU, seconds)."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.modelconfig import ModelConfig
from nucleiseg.network import build_unet
from nucleiseg.inference import Tiling
from nucleiseg.padding import reflect_index
from nucleiseg.predict import AxisTiles, predict_tiled, predict_untiled, raised_cosine
from nucleiseg.synthetic import make_nuclei

SMALL = Tiling(tile_size=256, overlap=64, tiles_per_step=4)


def _nuclei(shape: tuple[int, int], seed: int = 0) -> np.ndarray:
    """A prepared grayscale image: synthetic nuclei scaled to [0, 1]."""
    n_nuclei = max(1, shape[0] * shape[1] // 4000)
    sample = make_nuclei(shape, n_nuclei=n_nuclei, radius=(6, 12), seed=seed)
    image = sample.image.astype(np.float32)
    return (image - image.min()) / max(float(image.max() - image.min()), 1.0)


def _spread_outputs(network, image: np.ndarray) -> None:
    """Rescale the sigmoid heads so that outputs span (0, 1) as a trained network's do.

    With random weights every output is 0.5 +- 0.003, so that differences in probability would
    mean nothing; this multiplies each head's logits by a constant and centres them on the
    image's median. Still the real network: one layer's weights changed.
    """
    maps = np.clip(predict_untiled(network, image), 1e-6, 1 - 1e-6)
    logits = np.log(maps / (1 - maps)).reshape(-1, maps.shape[-1])
    scale = 2.0 / logits.std(axis=0)
    centre = np.median(logits, axis=0)
    layer = network.get_layer("maps")
    kernel, bias = layer.get_weights()
    layer.set_weights([kernel * scale, (bias - centre) * scale])


def _network(heads: str):
    import keras

    keras.utils.set_random_seed(0)
    network = build_unet(ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                                     unet_decoder_filters=(64, 48, 32, 16, 16), heads=heads))
    _spread_outputs(network, _nuclei((256, 256), seed=99))
    return network


@pytest.fixture(scope="module")
def contour_net():
    return _network("contour")


@pytest.fixture(scope="module")
def mask_net():
    return _network("mask")


@pytest.fixture(scope="module")
def large(contour_net):
    """A 700 x 900 image, its untiled maps and its maps tiled 256 / 64."""
    image = _nuclei((700, 900), seed=1)
    return image, predict_untiled(contour_net, image), predict_tiled(contour_net, image, SMALL)


# Tiling settings --------------------------------------------------------------------------------


@pytest.mark.parametrize(("changes", "key"), [
    ({"tile_size": 100}, "segment.tile_size"),
    ({"tile_size": 32, "overlap": 0}, "segment.tile_size"),
    ({"tile_size": 256.0}, "segment.tile_size"),
    ({"overlap": -32}, "segment.overlap"),
    ({"overlap": 48}, "segment.overlap"),
    ({"tile_size": 256, "overlap": 160}, "segment.overlap"),
    ({"tiles_per_step": 0}, "segment.tiles_per_step"),
    ({"tiles_per_step": True}, "segment.tiles_per_step"),
])
def test_bad_tiling_settings_name_the_config_key(changes, key):
    section = {"tile_size": 256, "overlap": 64, "tiles_per_step": 2, **changes}
    with pytest.raises(ConfigError, match=key):
        Tiling.from_config(section)


def test_tiling_from_config_reads_the_segment_section():
    assert Tiling.from_config({"tile_size": 384, "overlap": 32, "tiles_per_step": 8}) == Tiling(384, 32, 8)
    assert Tiling.from_config({}) == Tiling()
    with pytest.raises(ConfigError, match="tile_sise"):
        Tiling.from_config({"tile_sise": 256})


# Layout and blending weights (no network) -------------------------------------------------------


@pytest.mark.parametrize("length", [8, 100, 256, 257, 700, 1040, 1388, 5000])
@pytest.mark.parametrize("tiling", [Tiling(256, 64), Tiling(256, 0), Tiling(512, 128), Tiling(64, 32)])
def test_blending_weights_are_positive_and_sum_to_one(length, tiling):
    axis = AxisTiles.layout(length, tiling)
    windows = [axis.window(k) for k in range(len(axis.starts))]
    assert all((w > 0).all() and (w <= 1).all() for w in windows)
    np.testing.assert_allclose(axis.weight_sum(), 1.0, atol=1e-6)  # neighbours' ramps add to 1
    # Tiles are multiples of 32, at most tile_size, on the network's 32-pixel phase, and cover
    # the image (with a reflected margin where there is more than one tile).
    assert axis.tile % 32 == 0 and axis.tile <= tiling.tile_size
    assert all(start % 32 == 0 for start in axis.starts)
    assert axis.starts[0] <= 0 and axis.starts[-1] + axis.tile >= length
    if len(axis.starts) > 1:
        margin = tiling.overlap // 2
        assert axis.starts[0] <= -margin and axis.starts[-1] + axis.tile >= length + margin


def test_normalized_2d_weights_are_the_outer_product_of_1d_sums():
    rows, cols = AxisTiles.layout(300, SMALL), AxisTiles.layout(700, SMALL)
    total = np.zeros((300, 700))
    for ky in range(len(rows.starts)):
        for kx in range(len(cols.starts)):
            (y, y_tile), (x, x_tile) = rows.crop(ky), cols.crop(kx)
            total[y, x] += np.outer(rows.window(ky)[y_tile], cols.window(kx)[x_tile])
    np.testing.assert_allclose(total, np.outer(rows.weight_sum(), cols.weight_sum()), rtol=1e-6)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_raised_cosine_is_smooth_and_symmetric():
    ramp = raised_cosine(64)
    assert 0 < ramp[0] < 0.001 and 0.999 < ramp[-1] < 1
    assert (np.diff(ramp) > 0).all()
    np.testing.assert_allclose(ramp + ramp[::-1], 1.0, atol=1e-6)


@pytest.mark.parametrize("length", [2, 3, 8, 37])
def test_reflect_index_is_numpy_reflect_padding(length):
    values = np.arange(length) * 10
    for before, after in [(0, 0), (0, 24), (5, 40), (31, 31)]:
        positions = np.arange(-before, length + after)
        expected = np.pad(values, (before, after), mode="reflect")
        np.testing.assert_array_equal(values[reflect_index(positions, length)], expected)


# Predictions ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(200, 250), (256, 256), (8, 8), (37, 61)])
def test_image_within_one_tile_is_predicted_as_predict_maps_does(contour_net, shape):
    image = _nuclei((256, 256), seed=2)[: shape[0], : shape[1]]
    np.testing.assert_allclose(predict_tiled(contour_net, image, SMALL),
                               predict_untiled(contour_net, image), atol=1e-5)


@pytest.mark.parametrize("shape", [(37, 1000), (300, 301), (8, 8), (100, 2000), (1000, 40)])
def test_output_has_the_image_shape_for_odd_sizes(mask_net, shape):
    image = np.random.default_rng(0).random(shape, dtype=np.float32)
    maps = predict_tiled(mask_net, image, Tiling(128, 32, 8))
    assert maps.shape == (*shape, 1) and maps.dtype == np.float32
    assert np.isfinite(maps).all() and (maps >= 0).all() and (maps <= 1).all()


def test_grayscale_2d_single_channel_and_repeated_rgb_agree(contour_net):
    image = _nuclei((300, 420), seed=3)
    tiling = Tiling(128, 32, 3)
    flat = predict_tiled(contour_net, image, tiling)
    assert flat.shape == (300, 420, 2)
    np.testing.assert_allclose(predict_tiled(contour_net, image[..., None], tiling), flat, atol=1e-6)
    np.testing.assert_allclose(predict_tiled(contour_net, np.repeat(image[..., None], 3, -1), tiling),
                               flat, atol=1e-6)


@pytest.mark.parametrize("shape", [(40, 40, 4), (40, 40, 2), (2, 40, 40, 3), (40,)])
def test_other_layouts_are_refused(mask_net, shape):
    with pytest.raises(ValueError, match="expected a prepared image"):
        predict_tiled(mask_net, np.zeros(shape, np.float32))


def test_tiles_per_step_does_not_change_the_maps(mask_net):
    image = _nuclei((300, 420), seed=4)
    one = predict_tiled(mask_net, image, Tiling(128, 32, 1))
    np.testing.assert_allclose(predict_tiled(mask_net, image, Tiling(128, 32, 5)), one, atol=1e-5)


def test_large_image_agrees_with_untiled_prediction(large):
    """Tiles sit on the network's 32-pixel phase (an untiled prediction shifted by 32 pixels
    differs by < 1e-6 inside), so what differs is context: the network's receptive field is
    wider than a 256-pixel tile, and a tile's edges change its deep features a little for every
    pixel. The ramps keep each tile's edge pixels out of the blend, which leaves differences of
    about 0.01 at most (mean < 0.001) on this network, far too small to move the 0.5 threshold
    for more than a few pixels in 10,000. Within 32 pixels of the image's edge, tiling adds
    reflected context where untiled prediction has zeros: different there by design."""
    _, untiled, tiled = large
    assert tiled.shape == untiled.shape == (700, 900, 2)
    diff = np.abs(tiled - untiled)
    inner = np.s_[32:-32, 32:-32]
    assert diff[inner].max() < 0.05
    assert diff[inner].mean() < 0.002
    assert np.mean((tiled[inner] > 0.5) != (untiled[inner] > 0.5)) < 5e-4


def _excess_jumps(maps: np.ndarray, untiled: np.ndarray, axis: int) -> np.ndarray:
    """Per position along `axis`: how much more the maps step from one pixel to the next than
    untiled prediction does (max over the other axis, 64 pixels in from the image's edges)."""
    excess = np.abs(np.diff(maps, axis=axis) - np.diff(untiled, axis=axis))
    excess = excess[64:-64] if axis == 1 else excess[:, 64:-64]
    return excess.max(axis=(1 - axis, 2))


def _tile_edges(length: int, tiling: Tiling) -> np.ndarray:
    """Where tiles start or end inside the image (64 pixels in from its edges)."""
    axis = AxisTiles.layout(length, tiling)
    edges = {edge for start in axis.starts for edge in (start, start + axis.tile)}
    return np.array(sorted(e for e in edges if 64 <= e < length - 64))


@pytest.mark.parametrize("content", ["nuclei", "constant"])
def test_no_seams_along_tile_borders(contour_net, large, content):
    """From pixel to pixel, the blended maps change as the untiled ones do: no more at the tile
    borders than elsewhere. Plain tiles (no overlap) fail the same measure by far."""
    image, untiled, tiled = large
    if content == "constant":
        image = np.full(image.shape, 0.3, np.float32)
        untiled, tiled = predict_untiled(contour_net, image), predict_tiled(contour_net, image, SMALL)
    plain = predict_tiled(contour_net, image, Tiling(256, 0, 4))
    for axis, length in enumerate(image.shape):
        edges = _tile_edges(length, SMALL)
        near = np.concatenate([np.arange(e - 8, e + 8) for e in edges])
        elsewhere = np.setdiff1d(np.arange(64, length - 65), near)
        blended = _excess_jumps(tiled, untiled, axis)
        assert blended[edges - 1].max() <= 2 * blended[elsewhere].max() + 1e-4
        seams = _excess_jumps(plain, untiled, axis)[_tile_edges(length, Tiling(256, 0)) - 1]
        assert seams.min() > 10 * blended[64:-64].max()


def test_grayscale_image_is_never_copied_to_three_channels(mask_net):
    """Memory: beyond the accumulator, only a batch of tiles. A 3-channel float32 copy of this
    image alone would be 3 x image.nbytes (19.2 MB); untiled prediction peaks near 60 MB."""
    image = np.random.default_rng(1).random((1000, 1600), dtype=np.float32)
    tracemalloc.start()
    try:
        maps = predict_tiled(mask_net, image, Tiling(256, 64, 2))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert maps.shape == (1000, 1600, 1)
    assert peak < maps.nbytes + 2 * image.nbytes  # measured: accumulator + ~5 MB


def test_network_inputs_are_the_tiles_predict_tiled_uses(contour_net):
    from nucleiseg.predict import network_inputs

    image = np.random.default_rng(3).random((300, 500), dtype=np.float32)
    tiling = Tiling(tile_size=128, overlap=32, tiles_per_step=3)
    batches = list(network_inputs(image, tiling))
    assert all(b.ndim == 4 and b.shape[-1] == 3 and b.shape[0] <= 3 for b in batches)
    calls = []

    class Recorder:
        def predict_on_batch(self, x):
            calls.append(np.array(x))
            return contour_net.predict_on_batch(x)

    predict_tiled(Recorder(), image, tiling)
    assert len(calls) == len(batches)
    assert all(np.array_equal(a, b) for a, b in zip(calls, batches))


@pytest.mark.parametrize("tiling", [Tiling(128, 32, 1), Tiling(128, 64, 3), Tiling(512, 64, 2)])
def test_a_window_gets_the_whole_images_maps(contour_net, tiling):
    """predict_window reads only the region its tiles need and blends the whole image's tiles:
    its maps are the whole image's (to the last bit or so: another grouping of the tiles into
    steps may round the network's sums differently)."""
    from nucleiseg.predict import predict_window

    image = np.random.default_rng(0).random((300, 410)).astype(np.float32)
    whole = predict_tiled(contour_net, image, tiling)
    asked = []

    def read(ys, xs):
        asked.append((ys, xs))
        return image[ys, xs]

    for window in [(slice(0, 300), slice(0, 410)), (slice(50, 170), slice(100, 333)),
                   (slice(290, 300), slice(0, 5))]:
        np.testing.assert_allclose(
            predict_window(contour_net, read, image.shape, window, tiling), whole[window],
            rtol=1e-6, atol=1e-6)
    ys, xs = asked[-1]  # a corner window reads its tiles' pixels, not the whole image
    if tiling.tile_size < min(image.shape):
        assert (ys.stop - ys.start) * (xs.stop - xs.start) < image.size / 4
