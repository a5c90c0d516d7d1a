"""Reading images with clear errors, and writing files so that none is ever left half-written.

Every writer goes through `atomic_path`/`atomic_dir`: the data goes to a temporary name beside the
target and is renamed into place only once complete, so a crash or a bad input never leaves a file
that looks finished. A write refused for want of space is a DiskFullError naming the target.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import BadInputError, DiskFullError, disk_full_error

# Each image suffix and the type it promises; each type's first bytes (TIFF: both byte orders,
# and BigTIFF), checked before decoding.
_TYPES = {".png": "PNG", ".tif": "TIFF", ".tiff": "TIFF", ".jpg": "JPEG", ".jpeg": "JPEG"}
_SIGNATURES = {"PNG": (b"\x89PNG\r\n\x1a\n",), "JPEG": (b"\xff\xd8\xff",),
               "TIFF": (b"II*\0", b"MM\0*", b"II+\0", b"MM\0+")}
TIFF_SUFFIXES = (".tif", ".tiff")
IMAGE_SUFFIXES = tuple(_TYPES)
CORRUPT_HINT = "The file is corrupt or truncated; replace it or remove it"


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# tempfile creates private files (0600) and folders (0700); outputs get the usual permissions.
_FILE_MODE = 0o666 & ~_current_umask()
_DIR_MODE = 0o777 & ~_current_umask()


def is_image_file(path: str | Path) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def is_hidden(path: str | Path) -> bool:
    """Dot-files (.DS_Store, ._x from macOS) are file-system noise, never data."""
    return Path(path).name.startswith(".")


def read_image(path: str | Path) -> np.ndarray:
    """Read a PNG, TIFF or JPEG as stored (dtype and channels untouched).

    Raises BadInputError naming the file for a missing, empty, unsupported or unreadable file
    (check_image_file, then the decoder's own refusal).
    """
    path = Path(path)
    check_image_file(path)
    suffix = path.suffix.lower()
    try:
        if suffix in TIFF_SUFFIXES:
            import tifffile

            image = tifffile.imread(path)
        else:
            import imageio.v3 as iio

            image = iio.imread(path)
    except Exception as exc:  # decoders raise many types (OSError, ValueError, SyntaxError...)
        raise BadInputError(
            path, f"cannot be decoded as {suffix[1:].upper()} ({type(exc).__name__}: {exc})",
            CORRUPT_HINT,
        ) from exc
    image = np.asarray(image)
    if image.size == 0 or image.ndim < 2:  # tifffile returns an empty array for some garbage
        raise BadInputError(
            path, f"holds no image data (decoded shape {image.shape})", CORRUPT_HINT,
        )
    return image


def check_image_file(path: str | Path) -> None:
    """BadInputError naming the file if it is missing, empty, of no image type, or its first
    bytes are not those of the type its suffix names.

    Checked before decoding: a decoder handed a text file named .png answers with advice about
    its own plugins (imageio suggests installing a video reader), not with what is wrong.
    """
    path = Path(path)
    if not path.is_file():
        raise BadInputError(path, "no such file")
    if path.stat().st_size == 0:
        raise BadInputError(path, "the file is empty (0 bytes)", "Replace it or remove it")
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise BadInputError(
            path,
            f"not a supported image type ({suffix or 'no extension'})",
            f"Images must be one of {', '.join(IMAGE_SUFFIXES)}; move other files elsewhere",
        )
    with open(path, "rb") as stream:
        head = stream.read(8)
    promised = _TYPES[suffix]
    # A file shorter than the signature that starts like it is truncated: the decoder says so.
    if any(head.startswith(s) or s.startswith(head) for s in _SIGNATURES[promised]):
        return
    actual = next((kind for kind, signatures in _SIGNATURES.items()
                   if any(head.startswith(s) for s in signatures)), None)
    raise BadInputError(
        path, f"is not a {promised} file (its first bytes are {head!r})",
        f"It is a {actual} file: give it the suffix {_suffix_of(actual)}" if actual else
        "The file is not an image or has the wrong suffix; replace it or remove it",
    )


def _suffix_of(kind: str) -> str:
    return next(suffix for suffix, named in _TYPES.items() if named == kind)


def _remove_stale_temporaries(path: Path) -> None:
    """Delete what a killed earlier attempt at writing `path` left beside it.

    A process killed outright (SIGKILL, a node failure) runs no cleanup, and its temporary is
    not an output, so Snakemake would never remove it: each kill would leave a hidden copy of
    the data. Only one job writes a given output at a time (Snakemake's lock), so any
    temporary of this name is stale.
    """
    for stale in path.parent.glob(f".{glob.escape(path.name)}.*.part"):
        if stale.is_dir() and not stale.is_symlink():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


# NumPy's tofile (behind tifffile and np.save) reports a short write as "N requested and M
# written", without an errno. A short write on a file system with less than this left is taken
# for a full one; the margin covers space freed meanwhile by other writers' failed temporaries.
_NEARLY_FULL_BYTES = 64 << 20


def _as_disk_full(exc: OSError, path: Path) -> DiskFullError | None:
    """A DiskFullError naming `path` if `exc`, raised while writing it, is a full disk."""
    full = disk_full_error(exc, path)
    if full is None and exc.errno is None:
        try:
            stats = os.statvfs(path.parent)
        except OSError:
            return None
        if stats.f_bavail * stats.f_frsize < _NEARLY_FULL_BYTES:
            full = DiskFullError(path, errno.ENOSPC)
    return full


@contextlib.contextmanager
def _atomic(path: str | Path, folder: bool) -> Iterator[Path]:
    """A temporary file or folder beside `path`, renamed onto it only if the block succeeds.

    The temporary is removed whatever happens; a full disk is a DiskFullError naming `path`.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_temporaries(path)
        if folder:
            tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent))
        else:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
            os.close(fd)
            tmp = Path(name)
        yield tmp
        os.chmod(tmp, _DIR_MODE if folder else _FILE_MODE)
        if folder and path.exists():
            shutil.rmtree(path)
        os.replace(tmp, path)
    except OSError as exc:
        full = _as_disk_full(exc, path)  # before the cleanup: the partial file still holds its space
        if full is None:
            raise
        raise full from exc
    except DiskFullError as exc:  # from a file written into the temporary folder: name its target
        if tmp is None or exc.path is None or tmp not in exc.path.parents:
            raise
        raise DiskFullError(path / exc.path.relative_to(tmp), exc.number) from exc.__cause__
    finally:
        if tmp is not None and folder and tmp.exists():
            shutil.rmtree(tmp)
        elif tmp is not None and not folder:
            tmp.unlink(missing_ok=True)


def atomic_path(path: str | Path):
    """Yield a temporary path beside `path`; rename it into place only if the block succeeds."""
    return _atomic(path, folder=False)


def atomic_dir(path: str | Path):
    """Yield an empty temporary folder beside `path`; it replaces `path` only on success."""
    return _atomic(path, folder=True)


def write_tiff(path: str | Path, array: np.ndarray, **kwargs) -> None:
    """Write one array as an uncompressed TIFF (opens in Fiji and napari), atomically."""
    import tifffile

    array = np.asarray(array)
    if array.ndim == 3 and array.shape[-1] in (3, 4) and "photometric" not in kwargs:
        kwargs["photometric"] = "rgb"
    kwargs.setdefault("photometric", "minisblack")
    with atomic_path(path) as tmp:
        tifffile.imwrite(tmp, array, **kwargs)


def write_csv(frame, path: str | Path) -> None:
    """Write a pandas DataFrame as CSV without its index, atomically."""
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)


def new_figure(rows: int, columns: int, size: tuple[float, float]):
    """A matplotlib figure drawn off-screen (Agg: clusters and CI have no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(rows, columns, figsize=size, squeeze=False)


def save_figure(figure, path: str | Path) -> None:
    """Write a figure as PNG, atomically, and free its memory."""
    import matplotlib.pyplot as plt

    figure.tight_layout()
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=100, bbox_inches="tight", pad_inches=0.2)
    plt.close(figure)


def write_json(data, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_json(path: str | Path):
    return json.loads(Path(path).read_text())


def file_sha256(path: str | Path) -> str:
    import hashlib

    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
