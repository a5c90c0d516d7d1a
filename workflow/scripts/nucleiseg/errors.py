"""Errors that reach the user: each names what is wrong and says what to do.

Rule scripts let these propagate; Snakemake prints the message and removes the job's outputs.
Anything else escaping the package is a bug, not bad input.
"""

from __future__ import annotations

from pathlib import Path


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
