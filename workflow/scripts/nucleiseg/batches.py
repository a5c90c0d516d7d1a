"""Which batches there are, which files each holds, and their image ids (chunks.py cuts a
batch into chunks).

The Snakefile calls this at parse time to build the jobs, so it uses the standard library only:
on a cluster, Snakemake itself may run in an environment without NumPy (`--sdm conda` gives
the rules their own). Reading the files is batch_io's job, inside the rules.

A batch is a folder (its files, not recursive) or a glob pattern, declared in the config
(`batches: {name: folder or glob}`) or dropped into resources/batches/<name>/. Every file a
batch holds is listed, images or not (hidden files aside), so that a stray file is reported
with the reason rather than silently left out. An OME-Zarr image is a folder whose name ends
in .zarr (`is_zarr_folder`): it is listed as one image, and what lies inside it never is.
"""

from __future__ import annotations

import glob
import re
from pathlib import Path

from .errors import ConfigError

SYNTHETIC = "synthetic"  # the batch spec that means "the generated demo batch"
SYNTHETIC_FOLDER = "resources/synthetic_batch"
# Fixed names, so that the workflow knows the demo batch's files before they are generated.
SYNTHETIC_BATCH_FILES = (
    "two_channel_16bit.ome.tif",
    "fluorescence_8bit.png",
    "stained_rgb.png",
    "no_nuclei.tif",
)
DROP_FOLDER = "resources/batches"
ZARR_SUFFIX = ".zarr"  # an OME-Zarr image: a folder (name.ome.zarr), listed as one image
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
_GLOB_CHARS = set("*?[")


def declared_batches(configured: dict[str, str], root: str | Path = ".") -> dict[str, str]:
    """name -> spec: the config's batches, plus every folder in resources/batches/ (by name).

    A folder name that the config also declares for another place is an error: which one was
    meant cannot be guessed.
    """
    batches = dict(configured)
    drop = Path(root) / DROP_FOLDER
    if drop.is_dir():
        for folder in sorted(p for p in drop.iterdir() if p.is_dir() and not _hidden(p)):
            spec = str(Path(DROP_FOLDER) / folder.name)
            if not NAME_PATTERN.match(folder.name):
                raise ConfigError(
                    f"{folder}: a batch name may hold letters, digits, '_', '.' and '-' only; "
                    "rename the folder"
                )
            declared = batches.get(folder.name)
            if declared is not None and _resolved(declared, root) != _resolved(spec, root):
                raise ConfigError(
                    f"batch {folder.name!r} is both {folder} and, in the config, {declared}; "
                    "rename one of them"
                )
            batches.setdefault(folder.name, spec)
    return batches


def _resolved(spec: str, root: str | Path) -> Path:
    return (Path(root) / Path(spec).expanduser()).resolve()


def _hidden(path: Path) -> bool:
    return path.name.startswith(".")  # .DS_Store, ._x from macOS: file-system noise, not data


def is_zarr_folder(path: str | Path) -> bool:
    """Whether `path` is a folder named *.zarr: one OME-Zarr image, not a folder of images."""
    path = Path(path)
    return path.suffix.lower() == ZARR_SUFFIX and path.is_dir()


def find_batch_files(spec: str | Path, root: str | Path = ".") -> list[Path]:
    """The files of one batch, sorted; a relative spec starts at `root` and stays relative.

    `spec` is a folder (its files and .zarr folders, not recursive), a glob pattern (may use
    **; nothing inside a .zarr folder it matches), one file or .zarr folder (a batch of one) or
    `synthetic`. Raises ConfigError naming the spec when the folder does not exist, or the
    folder or pattern holds no file.
    """
    if str(spec) == SYNTHETIC:
        return [Path(SYNTHETIC_FOLDER) / name for name in SYNTHETIC_BATCH_FILES]
    text = str(Path(spec).expanduser()) if not _GLOB_CHARS & set(str(spec)) else str(spec)
    base = Path(root)
    target = Path(text) if Path(text).is_absolute() else base / text
    if is_zarr_folder(target):
        found = [target]
    elif target.is_dir():
        found = list(target.iterdir())
    elif _GLOB_CHARS & set(text):
        found = [Path(p) for p in glob.glob(str(target.expanduser()), recursive=True)]
        found = [p for p in found if not _inside_zarr(p, _fixed_part(target.expanduser()))]
    elif target.is_file():
        found = [target]
    else:
        raise ConfigError(
            f"batch folder {spec} does not exist (relative paths start at {base.resolve()}). "
            f"Set `batches` in the config to a folder of images or a glob pattern (e.g. "
            f"data/*.tif), or put the images in {DROP_FOLDER}/<name>/"
        )
    files = sorted(p for p in found if (p.is_file() or is_zarr_folder(p)) and not _hidden(p))
    if not files:
        what = "folder {} holds" if target.is_dir() else "pattern {} matches"
        raise ConfigError(
            f"batch {what.format(spec)} no files. Put the batch's images there, or set "
            f"`batches` in the config to a folder or glob that holds them, or use "
            f"{DROP_FOLDER}/<name>/"
        )
    if base != Path("."):
        files = [_relative_if_under(p, base) for p in files]
    return files


def _fixed_part(pattern: Path) -> Path:
    """A glob pattern's leading folders without wildcards: where its matches start."""
    parts = pattern.parts
    fixed = next((i for i, part in enumerate(parts) if _GLOB_CHARS & set(part)), len(parts))
    return Path(*parts[:fixed]) if fixed else Path()


def _inside_zarr(path: Path, start: Path) -> bool:
    """Whether a glob match lies inside a .zarr folder below `start`: a chunk of an image."""
    try:
        folders = path.relative_to(start).parts[:-1]
    except ValueError:
        folders = path.parts[:-1]
    return any(folder.lower().endswith(ZARR_SUFFIX) for folder in folders)


def _relative_if_under(path: Path, base: Path) -> Path:
    try:
        return path.relative_to(base)
    except ValueError:
        return path


def image_id(path: str | Path) -> str:
    """An image's id in the tables: its file (or .zarr folder) name without the suffix (and
    without .ome): a.ome.tif and a.ome.zarr are both `a`."""
    stem = Path(path).stem
    return stem[: -len(".ome")] if stem.lower().endswith(".ome") else stem


def check_unique_ids(paths: list[Path]) -> None:
    """ConfigError naming each pair of files that give one id (a.png and a.tif).

    Outputs are named by id, and ids are compared ignoring case: macOS and Windows file
    systems would put A.tif and a.tif in one file.
    """
    seen: dict[str, Path] = {}
    clashes = []
    for path in paths:
        key = image_id(path).casefold()
        if key in seen:
            clashes.append(f"{seen[key]} and {path} (id '{image_id(path)}')")
        else:
            seen[key] = path
    if clashes:
        raise ConfigError(
            "two files of the batch give the same image id (the file name without its "
            "suffix): " + "; ".join(clashes) + ". Rename or remove one of each pair so that "
            "their results can be told apart"
        )
