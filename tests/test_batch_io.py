"""Reading a user's batch: real files written with tifffile and imageio, as Fiji would."""

import logging
import re

import imageio.v3 as iio
import numpy as np
import pytest
import tifffile

from nucleiseg.batch_io import MIN_SIDE, BatchImage, read_batch_image
from nucleiseg.batches import check_unique_ids, find_batch_files, image_id
from nucleiseg.errors import BadInputError, ConfigError


def _ramp(shape, dtype=np.uint16, start=0):
    """Distinct, varying values (no image here is constant unless a test wants it)."""
    return (np.arange(np.prod(shape)).reshape(shape) + start).astype(dtype)


def _tif(path, data, **kwargs):
    tifffile.imwrite(path, data, **kwargs)
    return path


def _axes(path):
    with tifffile.TiffFile(path) as tf:
        return tf.series[0].axes


def _refused(path, problem, hint=None, **kwargs) -> BadInputError:
    """read_batch_image must refuse `path` with a message naming it and the specific problem."""
    with pytest.raises(BadInputError) as caught:
        read_batch_image(path, **kwargs)
    error = caught.value
    assert error.path == path
    assert str(path) in str(error)
    assert problem in error.problem, error.problem
    if hint:
        assert hint in (error.hint or ""), error.hint
    return error


# --- PNG and JPEG ---------------------------------------------------------------------------------


def test_8bit_grayscale_png(tmp_path):
    data = _ramp((20, 30), np.uint8)
    iio.imwrite(tmp_path / "cells.png", data)
    got = read_batch_image(tmp_path / "cells.png")
    assert isinstance(got, BatchImage)
    assert (got.id, got.path, got.height, got.width) == ("cells", tmp_path / "cells.png", 20, 30)
    assert got.image.shape == (20, 30, 1) and got.image.dtype == np.uint8
    np.testing.assert_array_equal(got.intensity, data)
    assert got.intensity.dtype == np.uint8
    assert (got.pixel_size_um, got.pixel_size_source) == (None, "")
    assert got.description == "8-bit grayscale"


def test_rgba_png_with_equal_channels_is_grayscale(tmp_path):
    # DSB2018 stores fluorescence as RGBA PNGs with R = G = B and an opaque alpha.
    gray = _ramp((16, 16), np.uint8)
    rgba = np.stack([gray, gray, gray, np.full_like(gray, 255)], axis=-1)
    iio.imwrite(tmp_path / "dsb.png", rgba)
    got = read_batch_image(tmp_path / "dsb.png")
    assert got.image.shape == (16, 16, 1)
    np.testing.assert_array_equal(got.intensity, gray)
    assert got.description == "8-bit grayscale (stored as RGBA)"


def test_gray_plus_alpha_png_drops_alpha(tmp_path):
    gray = _ramp((16, 16), np.uint8)
    iio.imwrite(tmp_path / "la.png", np.stack([gray, np.full_like(gray, 255)], axis=-1))
    got = read_batch_image(tmp_path / "la.png")
    assert got.image.shape == (16, 16, 1)
    np.testing.assert_array_equal(got.intensity, gray)


def test_colour_jpeg_keeps_three_channels_and_measures_luminance(tmp_path):
    yy, xx = np.mgrid[:32, :32]
    rgb = np.stack([xx * 8, yy * 8, np.full_like(xx, 100)], axis=-1).astype(np.uint8)
    iio.imwrite(tmp_path / "he.jpg", rgb)
    got = read_batch_image(tmp_path / "he.jpg")
    assert got.image.shape == (32, 32, 3) and got.image.dtype == np.uint8
    assert got.description == "8-bit RGB"
    assert got.intensity.dtype == np.float32 and got.intensity.shape == (32, 32)
    stored = got.image.astype(np.float64)
    expected = 0.2125 * stored[..., 0] + 0.7154 * stored[..., 1] + 0.0721 * stored[..., 2]
    np.testing.assert_allclose(got.intensity, expected, rtol=1e-6)
    assert got.pixel_size_um is None


# --- TIFF: bit depths and colour ------------------------------------------------------------------


def test_16bit_tiff_values_are_preserved(tmp_path):
    data = _ramp((16, 24), np.uint16) * 170  # up to 65110: beyond 8 bits
    path = _tif(tmp_path / "dapi.tif", data)
    got = read_batch_image(path)
    assert got.image.dtype == np.uint16 and got.image.shape == (16, 24, 1)
    np.testing.assert_array_equal(got.intensity, data)
    assert got.intensity.dtype == np.uint16
    assert got.description == "16-bit grayscale"


def test_32bit_float_tiff(tmp_path):
    data = _ramp((16, 16), np.float32) / 7 - 3.5  # negative and fractional values stay
    got = read_batch_image(_tif(tmp_path / "ratio.tif", data))
    assert got.image.dtype == np.float32
    np.testing.assert_array_equal(got.intensity, data)
    assert got.description == "32-bit float grayscale"


def test_rgb_tiff_is_colour_with_luminance_in_stored_units(tmp_path):
    rgb = np.zeros((16, 16, 3), np.uint16)
    rgb[...] = (100, 200, 50)
    rgb[0, 0] = (1000, 0, 0)
    path = _tif(tmp_path / "stain.tif", rgb, photometric="rgb")
    assert _axes(path) == "YXS"
    got = read_batch_image(path)
    assert got.image.shape == (16, 16, 3) and got.image.dtype == np.uint16
    assert got.description == "16-bit RGB"
    assert got.intensity.dtype == np.float32
    assert got.intensity[5, 5] == pytest.approx(0.2125 * 100 + 0.7154 * 200 + 0.0721 * 50)
    assert got.intensity[0, 0] == pytest.approx(212.5)


def test_planar_rgb_tiff_is_colour_too(tmp_path):
    rgb = np.stack([_ramp((16, 16), np.uint8, start=s) for s in (0, 7, 99)])
    path = _tif(tmp_path / "planar.tif", rgb, photometric="rgb", planarconfig="separate")
    assert _axes(path) == "SYX"
    got = read_batch_image(path)
    np.testing.assert_array_equal(got.image, np.moveaxis(rgb, 0, -1))


@pytest.mark.parametrize("dtype, description", [(np.int16, "16-bit signed grayscale"),
                                                (np.uint32, "32-bit grayscale"),
                                                (np.float64, "64-bit float grayscale")])
def test_other_integer_and_float_types_are_kept_as_stored(tmp_path, dtype, description):
    data = _ramp((16, 16), dtype, start=-100 if dtype != np.uint32 else 70000)
    got = read_batch_image(_tif(tmp_path / "x.tif", data))
    assert got.image.dtype == dtype and got.description == description
    np.testing.assert_array_equal(got.intensity, data)


def test_bool_image_becomes_uint8_zero_one(tmp_path):
    mask = np.zeros((16, 16), bool)
    mask[4:9, 4:9] = True
    got = read_batch_image(_tif(tmp_path / "mask.tif", mask))
    assert got.image.dtype == np.uint8
    np.testing.assert_array_equal(got.intensity, mask.astype(np.uint8))
    assert got.description == "1-bit grayscale"


def test_complex_pixels_are_refused(tmp_path):
    path = _tif(tmp_path / "fft.tif", _ramp((16, 16), np.complex64))
    _refused(path, "pixels of type complex64")


# --- TIFF: channels, stacks and layouts -----------------------------------------------------------


def _two_channel_ome(path, **metadata):
    channels = np.stack([_ramp((16, 20)), _ramp((16, 20), start=5000)])
    _tif(path, channels, photometric="minisblack", ome=True,
         metadata={"axes": "CYX", **metadata})
    return channels


def test_ome_tiff_channels_are_picked_and_pixel_size_read(tmp_path):
    path = tmp_path / "well.ome.tif"
    channels = _two_channel_ome(path, PhysicalSizeX=0.65, PhysicalSizeXUnit="µm",
                                PhysicalSizeY=0.65, PhysicalSizeYUnit="µm")
    for picked in (0, 1):
        got = read_batch_image(path, nuclear_channel=picked)
        assert got.id == "well"
        assert got.image.shape == (16, 20, 1) and got.image.dtype == np.uint16
        np.testing.assert_array_equal(got.image[..., 0], channels[picked])
        np.testing.assert_array_equal(got.intensity, channels[picked])
        assert got.pixel_size_um == pytest.approx(0.65)
        assert got.pixel_size_source == "ome"
        assert got.description == f"channel {picked} of channels 0-1 (16-bit)"


@pytest.mark.parametrize("size, unit", [(650, "nm"), (0.00065, "mm"), (6500, "Å"),
                                        (0.65, "μm"), (0.65, "um")])
def test_ome_units_are_converted_to_micrometres(tmp_path, size, unit):
    path = tmp_path / "x.ome.tif"
    _two_channel_ome(path, PhysicalSizeX=size, PhysicalSizeXUnit=unit)
    got = read_batch_image(path)
    assert (got.pixel_size_um, got.pixel_size_source) == (pytest.approx(0.65), "ome")


def test_ome_without_unit_means_micrometres(tmp_path):
    path = tmp_path / "x.ome.tif"
    _two_channel_ome(path, PhysicalSizeX=0.5)
    assert read_batch_image(path).pixel_size_um == pytest.approx(0.5)


@pytest.mark.parametrize("size", [0, -1.0])
def test_nonsense_ome_pixel_size_is_none(tmp_path, size):
    path = tmp_path / "x.ome.tif"
    _two_channel_ome(path, PhysicalSizeX=size)
    got = read_batch_image(path)
    assert (got.pixel_size_um, got.pixel_size_source) == (None, "")


def test_non_square_pixels_warn_and_use_x(tmp_path, caplog):
    path = tmp_path / "x.ome.tif"
    _two_channel_ome(path, PhysicalSizeX=0.5, PhysicalSizeY=0.6)
    with caplog.at_level(logging.WARNING, logger="nucleiseg.batch_io"):
        got = read_batch_image(path)
    assert got.pixel_size_um == pytest.approx(0.5)
    assert "not square" in caplog.text and str(path) in caplog.text


def test_ome_stack_with_one_plane_is_2d(tmp_path):
    data = _ramp((2, 1, 16, 16))
    path = _tif(tmp_path / "one.ome.tif", data, photometric="minisblack", ome=True,
                metadata={"axes": "CZYX"})
    got = read_batch_image(path, nuclear_channel=1)
    np.testing.assert_array_equal(got.intensity, data[1, 0])


def test_ome_z_stack_is_refused(tmp_path):
    path = _tif(tmp_path / "stack.ome.tif", _ramp((5, 16, 16)), photometric="minisblack",
                ome=True, metadata={"axes": "ZYX"})
    _refused(path, "is a 3D stack (Z=5 planes)", "Z Project")


def test_imagej_time_series_is_refused(tmp_path):
    path = _tif(tmp_path / "movie.tif", _ramp((3, 2, 16, 16)), imagej=True,
                metadata={"axes": "TCYX"})
    _refused(path, "is a time series (T=3 frames)", "2D images")


def test_imagej_hyperstack_channels_and_micron_resolution(tmp_path):
    data = _ramp((3, 16, 16))
    path = _tif(tmp_path / "fiji.tif", data, imagej=True, resolution=(1 / 0.325, 1 / 0.325),
                metadata={"axes": "CYX", "unit": "micron"})
    got = read_batch_image(path, nuclear_channel=2)
    np.testing.assert_array_equal(got.intensity, data[2])
    assert got.description == "channel 2 of channels 0-2 (16-bit)"
    assert got.pixel_size_um == pytest.approx(0.325, rel=1e-6)
    assert got.pixel_size_source == "imagej"


def test_imagej_nm_unit_and_pixel_unit(tmp_path):
    data = _ramp((16, 16))
    nm = _tif(tmp_path / "nm.tif", data, imagej=True, resolution=(1 / 100, 1 / 100),
              metadata={"unit": "nm"})
    assert read_batch_image(nm).pixel_size_um == pytest.approx(0.1)
    pixel = _tif(tmp_path / "pixel.tif", data, imagej=True, resolution=(0.5, 0.5),
                 metadata={"unit": "pixel"})
    got = read_batch_image(pixel)
    assert (got.pixel_size_um, got.pixel_size_source) == (None, "")


def test_plain_tiff_centimetre_resolution_is_a_pixel_size(tmp_path):
    path = _tif(tmp_path / "cm.tif", _ramp((16, 16)), resolution=(1e4 / 0.5, 1e4 / 0.5),
                resolutionunit="CENTIMETER")
    got = read_batch_image(path)
    assert got.pixel_size_um == pytest.approx(0.5)
    assert got.pixel_size_source == "tiff"


def test_plain_tiff_inch_resolution_is_ignored(tmp_path):
    # 72 dpi is what image programs write by default, not a physical pixel size.
    path = _tif(tmp_path / "inch.tif", _ramp((16, 16)), resolution=(72, 72),
                resolutionunit="INCH")
    got = read_batch_image(path)
    assert (got.pixel_size_um, got.pixel_size_source) == (None, "")


def _pages(path, metadata=None, n=10):
    """Pages without OME or ImageJ axes: `tifffile.imwrite(path, array)`, as many scripts write."""
    data = np.stack([_ramp((256, 256), start=1000 * k) for k in range(n)])
    kwargs = {} if metadata == {} else {"metadata": metadata}
    tifffile.imwrite(path, data, **kwargs)
    return data


@pytest.mark.parametrize("metadata, axes", [({}, "QYX"), (None, "IYX")])
def test_pages_without_axes_metadata_are_refused_naming_the_setting(tmp_path, metadata, axes):
    # Channels, Z planes or time points? The file does not say, so nothing is guessed.
    path = tmp_path / "pages.tif"
    _pages(path, metadata)
    assert _axes(path) == axes
    error = _refused(path, "has 10 pages and no axis metadata", "segment.pages: channels")
    assert "channels, Z planes or time points" in error.problem
    assert "Z Project" in error.hint and "segment.nuclear_channel" in error.hint


@pytest.mark.parametrize("metadata", [{}, None])
def test_pages_are_channels_with_pages_channels(tmp_path, metadata):
    path = tmp_path / "pages.tif"
    data = _pages(path, metadata)
    for picked in (0, 7):
        got = read_batch_image(path, nuclear_channel=picked, pages="channels")
        np.testing.assert_array_equal(got.intensity, data[picked])
        assert got.description == f"channel {picked} of channels 0-9 (16-bit)"
    error = _refused(path, "has 10 channels", nuclear_channel=10, pages="channels")
    assert "segment.nuclear_channel" in error.problem


@pytest.mark.parametrize("kwargs", [{"imagej": True, "metadata": {"axes": "CYX"}},
                                    {"ome": True, "metadata": {"axes": "CYX"}},
                                    {"metadata": {"axes": "CYX"}}])
def test_channels_named_by_metadata_need_no_pages_setting(tmp_path, kwargs):
    data = np.stack([_ramp((16, 16), start=100 * k) for k in range(3)])
    path = _tif(tmp_path / "named.tif", data, photometric="minisblack", **kwargs)
    assert _axes(path) == "CYX"
    got = read_batch_image(path, nuclear_channel=1, pages="refuse")
    np.testing.assert_array_equal(got.intensity, data[1])
    assert got.description == "channel 1 of channels 0-2 (16-bit)"  # 0-based, as the setting


def test_unknown_pages_setting_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="segment.pages must be one of refuse, channels"):
        read_batch_image(_tif(tmp_path / "gray.tif", _ramp((16, 16))), pages="planes")


def test_channel_out_of_range_names_the_count_and_the_setting(tmp_path):
    path = tmp_path / "two.ome.tif"
    _two_channel_ome(path)
    error = _refused(path, "has 2 channels", nuclear_channel=2)
    assert "segment.nuclear_channel" in str(error)


def test_single_channel_image_ignores_the_nuclear_channel(tmp_path):
    data = _ramp((16, 16))
    got = read_batch_image(_tif(tmp_path / "gray.tif", data), nuclear_channel=1)
    np.testing.assert_array_equal(got.intensity, data)


def test_negative_nuclear_channel_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="segment.nuclear_channel"):
        read_batch_image(_tif(tmp_path / "gray.tif", _ramp((16, 16))), nuclear_channel=-1)


def test_channels_of_colour_images_are_refused_with_axes(tmp_path):
    path = _tif(tmp_path / "rgbs.tif", _ramp((2, 16, 16, 3), np.uint8), photometric="rgb")
    assert _axes(path) == "QYXS"
    for pages in ("refuse", "channels"):
        _refused(path, "unsupported layout (axes QYXS", pages=pages)


# --- Content checks -------------------------------------------------------------------------------


def test_one_pixel_wide_image_is_too_small(tmp_path):
    path = _tif(tmp_path / "line.tif", _ramp((512, 1)))
    _refused(path, "is 1 x 512 pixels: too small to hold a nucleus "
                   f"(at least {MIN_SIDE} x {MIN_SIDE})")


def test_constant_image_has_nothing_to_segment(tmp_path):
    path = _tif(tmp_path / "blank.tif", np.zeros((16, 16), np.uint16))
    _refused(path, "every pixel is 0: there is nothing to segment", "blank or saturated")
    path = _tif(tmp_path / "flat.tif", np.full((16, 16), 1.5, np.float32))
    _refused(path, "every pixel is 1.5")
    # Varying pixels without any nucleus are not an error: segmentation finds none.
    background = np.full((16, 16), 100, np.uint16)
    background[3, 4] = 101
    assert read_batch_image(_tif(tmp_path / "empty_field.tif", background)).height == 16


def test_nan_and_infinite_pixels_are_counted(tmp_path):
    data = _ramp((16, 16), np.float32)
    data[1, 1] = np.nan
    data[2, 2] = np.inf
    _refused(_tif(tmp_path / "nan.tif", data), "has 2 NaN/infinite pixels")


# --- Unreadable files -----------------------------------------------------------------------------


def test_corrupt_tiff(tmp_path):
    path = tmp_path / "garbage.tif"
    path.write_bytes(b"II*\0" + bytes(range(256)) * 4)
    _refused(path, "holds no image data", "corrupt or truncated")


def test_truncated_tiff(tmp_path):
    whole = _tif(tmp_path / "whole.tif", _ramp((64, 64))).read_bytes()
    path = tmp_path / "cut.tif"
    path.write_bytes(whole[: len(whole) // 2])
    _refused(path, "cannot be decoded as TIFF", "corrupt or truncated")


def test_truncated_png(tmp_path):
    iio.imwrite(tmp_path / "whole.png", _ramp((64, 64), np.uint8))
    path = tmp_path / "cut.png"
    path.write_bytes((tmp_path / "whole.png").read_bytes()[:60])
    _refused(path, "cannot be decoded as PNG")


@pytest.mark.parametrize("name, content, problem, hint", [
    ("x.png", b"Hello, I am notes", "is not a PNG file (its first bytes are b'Hello, I')",
     "not an image or has the wrong suffix"),
    ("x.tif", b"<html><body>404", "is not a TIFF file (its first bytes are b'<html><b')",
     "not an image or has the wrong suffix"),
    ("x.jpg", b"\x89PNG\r\n\x1a\n" + bytes(64), "is not a JPEG file",
     "It is a PNG file: give it the suffix .png"),
])
def test_bytes_that_are_not_what_the_suffix_says(tmp_path, name, content, problem, hint):
    (tmp_path / name).write_bytes(content)
    error = _refused(tmp_path / name, problem, hint)
    assert "pyav" not in str(error) and "decoded" not in str(error)


def test_empty_missing_and_unsupported_files(tmp_path):
    (tmp_path / "empty.tif").write_bytes(b"")
    _refused(tmp_path / "empty.tif", "the file is empty (0 bytes)")
    _refused(tmp_path / "absent.png", "no such file")
    (tmp_path / "notes.txt").write_text("hello")
    _refused(tmp_path / "notes.txt", "not a supported image type (.txt)")


# --- Listing a batch ------------------------------------------------------------------------------


def test_find_batch_files_in_a_folder(tmp_path):
    for name in ["b.png", "a.tif", "notes.txt", ".DS_Store", "._a.tif", "sub/c.tif"]:
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert find_batch_files(tmp_path) == [tmp_path / n for n in ["a.tif", "b.png", "notes.txt"]]
    assert find_batch_files(str(tmp_path)) == find_batch_files(tmp_path)


def test_find_batch_files_with_a_glob(tmp_path):
    for name in ["x/1.tif", "x/y/2.tif", "x/y/3.png", "x/y/.4.tif", "x/.h/5.tif"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert find_batch_files(tmp_path / "x" / "**" / "*.tif") == [
        tmp_path / "x" / "1.tif", tmp_path / "x" / "y" / "2.tif"]
    assert find_batch_files(f"{tmp_path}/x/y/*") == [tmp_path / "x" / "y" / "2.tif",
                                                     tmp_path / "x" / "y" / "3.png"]


def test_find_batch_files_missing_folder_or_empty_glob(tmp_path):
    for spec, problem in [(tmp_path / "nope", "does not exist"),
                          (f"{tmp_path}/*.tif", "matches no files")]:
        with pytest.raises(ConfigError) as caught:
            find_batch_files(spec)
        message = str(caught.value)
        assert str(spec) in message and problem in message
        assert "`batches`" in message and "resources/batches/<name>/" in message
    (tmp_path / ".DS_Store").write_bytes(b"x")
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path} holds no files")):
        find_batch_files(tmp_path)


def test_image_id(tmp_path):
    assert image_id(tmp_path / "x.ome.tif") == "x"
    assert image_id(tmp_path / "x.OME.TIFF") == "x"
    assert image_id(tmp_path / "plate1.a01.png") == "plate1.a01"
    assert image_id(tmp_path / "cells.jpeg") == "cells"
    assert image_id(tmp_path / "README") == "README"


def test_check_unique_ids(tmp_path):
    check_unique_ids([tmp_path / "a.png", tmp_path / "b.tif", tmp_path / "c.ome.tif"])
    for clash in (["a.png", "b.png", "a.tif"], ["x.ome.tif", "x.png"], ["A.png", "a.tif"]):
        paths = [tmp_path / name for name in clash]
        with pytest.raises(ConfigError) as caught:
            check_unique_ids(paths)
        named = [p for p in paths if str(p) in str(caught.value)]
        assert len(named) == 2, str(caught.value)
