"""Errors that reach the user: each names what is wrong and says what to do.

Rule scripts let these propagate; Snakemake prints the message and removes the job's outputs.
Anything else escaping the package is a bug, not bad input.
"""

from __future__ import annotations

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


def check_on_bad_image(value: str, key: str) -> str:
    """`value` if it is one of ON_BAD_IMAGE, else a ConfigError naming the config key."""
    if value not in ON_BAD_IMAGE:
        raise ConfigError(f"{key} must be one of {', '.join(ON_BAD_IMAGE)}, got {value!r}")
    return value
