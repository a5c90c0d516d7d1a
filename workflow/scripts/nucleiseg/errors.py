"""Errors that reach the user: each names what is wrong and says what to do.

Rule scripts let these propagate; Snakemake prints the message and removes the job's outputs.
Anything else escaping the package is a bug, not bad input.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

# What to do with a file that cannot be used: stop the run, or leave it out and say why.
ON_BAD_IMAGE = ("fail", "skip")


class NucleisegError(Exception):
    """An error the user can act on. The message is complete on its own."""


class ConfigError(NucleisegError):
    """A setting is missing, of the wrong type, or contradicts another."""


class DownloadError(NucleisegError):
    """A dataset could not be fetched or unpacked; the message lists the alternatives."""


class BadInputError(NucleisegError):
    """One input file cannot be used. Carries the path so that callers can skip and report it."""

    def __init__(self, path: str | Path, problem: str, hint: str | None = None):
        self.path = Path(path)
        self.problem = problem
        self.hint = hint
        message = f"{self.path}: {problem}"
        if hint:
            message += f". {hint}"
        super().__init__(message)

    def __reduce__(self):  # rebuild from the fields: it crosses process boundaries in pools
        return type(self), (self.path, self.problem, self.hint)


class BadInputsError(NucleisegError):
    """Several input files cannot be used: all of them named at once, one line each."""

    def __init__(self, problems: list[BadInputError], checked: int, remedy: str):
        self.problems, self.checked, self.remedy = list(problems), checked, remedy
        lines = [f"{len(self.problems)} of {checked} files cannot be used:"]
        lines += [f"  {problem}" for problem in self.problems]
        super().__init__("\n".join([*lines, remedy]))

    def __reduce__(self):
        return type(self), (self.problems, self.checked, self.remedy)


def check_on_bad_image(value: str, key: str) -> str:
    """`value` if it is one of ON_BAD_IMAGE, else a ConfigError naming the config key."""
    if value not in ON_BAD_IMAGE:
        raise ConfigError(f"{key} must be one of {', '.join(ON_BAD_IMAGE)}, got {value!r}")
    return value


# The OSError numbers of a write refused for want of space: the file system, or the user's quota.
DISK_FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _mount_point(path: Path) -> Path:
    folder = path.absolute()
    while not os.path.ismount(folder) and folder != folder.parent:
        folder = folder.parent
    return folder


class DiskFullError(NucleisegError):
    """A file could not be written because its file system (or the user's quota on it) is full.

    Not a BadInputError: no input is at fault, so `on_bad_image: skip` must not skip past it.
    """

    def __init__(self, path: str | Path | None, number: int = errno.ENOSPC):
        self.path = Path(path) if path is not None else None
        self.number = number
        quota = number == errno.EDQUOT
        condition = "the disk quota on the file system is used up" if quota else \
            "the file system is full"
        where = "a file" if self.path is None else str(self.path)
        system = "the file system that holds the outputs" if self.path is None else \
            f"the file system mounted at {_mount_point(self.path)}"
        more = " or ask for a larger quota" if quota else ""
        super().__init__(f"cannot write {where}: {condition} ({os.strerror(number)}). "
                         f"Free space on {system}{more}, then rerun the same command")

    def __reduce__(self):  # rebuild from the fields: it crosses process boundaries in pools
        return type(self), (self.path, self.number)


def disk_full_error(exc: BaseException, path: str | Path | None = None) -> DiskFullError | None:
    """A DiskFullError for `exc` if it, or an error it was raised from, is an OSError of a full
    disk (DISK_FULL_ERRNOS), naming `path` or else the OSError's own file; None otherwise."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in DISK_FULL_ERRNOS:
            named = exc.filename if isinstance(exc.filename, (str, os.PathLike)) else None
            return DiskFullError(path if path is not None else named, exc.errno)
        exc = exc.__cause__ or exc.__context__
    return None
