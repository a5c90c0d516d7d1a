"""How rule scripts log: everything to the rule's log file, the one clear error also on screen."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Iterator

from .errors import NucleisegError, disk_full_error

_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextlib.contextmanager
def rule_log(log_path: str | Path) -> Iterator[logging.Logger]:
    """Send stderr and logging to `log_path` for the duration of a rule script.

    A NucleisegError (bad input, config, download, full disk) is logged and printed as one line
    to the terminal, and the script exits with status 1, so Snakemake fails the job and removes
    its outputs. A full disk met outside the package's writers (an OSError ENOSPC or EDQUOT from
    any library) is one too. Any other exception is a bug: its traceback goes to the log and to
    the terminal.
    Output written straight to file descriptor 2 (TensorFlow's C++ logging) goes to the log.
    """
    Path(log_path).parent.mkdir(parents=True, exist_ok=True)
    sys.stderr.flush()
    saved = os.dup(2)
    screen = os.fdopen(os.dup(2), "w")
    with open(log_path, "w", buffering=1) as handle:
        # At the descriptor too: TensorFlow's C++ logging writes to fd 2, not to sys.stderr.
        os.dup2(handle.fileno(), 2)
        previous = sys.stderr
        sys.stderr = handle
        logging.basicConfig(stream=handle, level=logging.INFO, format=_FORMAT, force=True)
        logger = logging.getLogger("nucleiseg")
        try:
            yield logger
        except Exception as exc:
            error = exc if isinstance(exc, NucleisegError) else disk_full_error(exc)
            if error is None:
                logger.exception("unexpected error (a bug: please report it with this log)")
                raise
            logger.error("%s", error)
            print(f"nucleiseg error: {error}", file=screen, flush=True)
            raise SystemExit(1) from None
        finally:
            sys.stderr = previous
            os.dup2(saved, 2)
            os.close(saved)
            screen.close()
