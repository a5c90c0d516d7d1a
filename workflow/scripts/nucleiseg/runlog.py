"""How rule scripts log: everything to the rule's log file, the one clear error also on screen."""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path
from typing import Iterator

from .errors import NucleisegError

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def rule_log(log_path: str | Path) -> Iterator[logging.Logger]:
    """Send stderr and logging to `log_path` for the duration of a rule script.

    A NucleisegError (bad input, config, download) is logged and printed as one line to the
    terminal, and the script exits with status 1, so Snakemake fails the job and removes its
    outputs. Any other exception is a bug: its traceback goes to the log as usual.
    """
    screen = sys.stderr
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "w", buffering=1) as handle:
        sys.stderr = handle
        logging.basicConfig(stream=handle, level=logging.INFO, format=_FORMAT, force=True)
        logger = logging.getLogger("nucleiseg")
        try:
            yield logger
        except NucleisegError as exc:
            logger.error("%s", exc)
            print(f"nucleiseg error: {exc}", file=screen, flush=True)
            raise SystemExit(1) from None
        finally:
            sys.stderr = screen
