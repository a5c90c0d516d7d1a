"""Rule scripts' logging: the log file gets everything, the terminal one clear line."""

from __future__ import annotations

import subprocess
import sys

from conftest import REPO

SCRIPT = """
import os, sys
sys.path.insert(0, {scripts!r})
from nucleiseg.errors import BadInputError
from nucleiseg.runlog import rule_log
with rule_log({log!r}) as log:
    log.info("python logging line")
    os.write(2, b"C-level stderr line\\n")
    print("sys.stderr line", file=sys.stderr)
    {fail}
print("after the block", file=sys.stderr)
"""


def _run(tmp_path, fail: str):
    log = tmp_path / "logs" / "rule.log"
    code = SCRIPT.format(scripts=str(REPO / "workflow" / "scripts"), log=str(log), fail=fail)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    return result, log.read_text()


def test_everything_goes_to_the_log_and_stderr_comes_back(tmp_path):
    result, log = _run(tmp_path, "pass")
    assert result.returncode == 0
    for line in ("python logging line", "C-level stderr line", "sys.stderr line"):
        assert line in log and line not in result.stderr
    assert result.stderr == "after the block\n"


def test_a_user_error_is_one_line_on_screen_and_exit_1(tmp_path):
    result, log = _run(tmp_path, "raise BadInputError('img.tif', 'is broken', 'Replace it')")
    assert result.returncode == 1
    assert result.stderr == "nucleiseg error: img.tif: is broken. Replace it\n"
    assert "img.tif: is broken" in log and "C-level stderr line" in log


def test_a_bug_keeps_its_traceback_in_the_log_and_on_screen(tmp_path):
    result, log = _run(tmp_path, "raise KeyError('oops')")
    assert result.returncode == 1
    assert "KeyError: 'oops'" in log and "KeyError: 'oops'" in result.stderr


def test_a_full_disk_anywhere_is_one_line_naming_the_file_and_exit_1(tmp_path):
    # As a library outside the package's writers raises it (Keras saving, a log): a bare OSError.
    result, log = _run(tmp_path, "raise OSError(28, 'No space left on device', 'results/a.tif')")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr + log
    assert result.stderr.startswith("nucleiseg error: cannot write results/a.tif: the file system "
                                    "is full (No space left on device). Free space on the file "
                                    "system mounted at /")
    assert result.stderr.endswith(", then rerun the same command\n")
    assert "cannot write results/a.tif" in log


def test_a_used_up_quota_is_one_line_too_even_without_a_file_name(tmp_path):
    raised = "raise RuntimeError('saving failed') from OSError(122, 'Disk quota exceeded')"
    result, _ = _run(tmp_path, raised)
    assert result.returncode == 1
    assert result.stderr == (
        "nucleiseg error: cannot write a file: the disk quota on the file system is used up "
        "(Disk quota exceeded). Free space on the file system that holds the outputs or ask for "
        "a larger quota, then rerun the same command\n")
