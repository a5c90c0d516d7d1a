"""Source `bbbc038`: the Broad Institute's public copy of DSB2018 (BBBC038), no credentials.

Files fetched from the configured base URL: stage1_train.zip (required), stage1_test.zip and
stage1_solution.csv (kept when the server has them). Each goes to a `.part` file in
`dest/downloads/` and gets its final name only after its integrity check passes; a file already
there that passes the check is reused, so a rerun downloads nothing.
"""

from __future__ import annotations

import http.client
import logging
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path

from ..errors import ConfigError, DownloadError
from ..io import atomic_path
from .archive import (
    SOLUTION,
    TEST_ZIP,
    TRAIN_ZIP,
    Layout,
    check_solution_csv,
    install_stage_files,
    verify_zip,
    zip_problem,
)

log = logging.getLogger(__name__)

DEFAULT_URL = "https://data.broadinstitute.org/bbbc/BBBC038/"
TIMEOUT_S = 60
_CHUNK = 1 << 20


class NotOnServer(DownloadError):
    """The server answered that the file does not exist (HTTP 404, or no such local file)."""


def _what_to_do(url: str) -> str:
    return (
        "Rerun to try again. If this machine cannot reach the server, download the file by "
        f"hand on a machine with internet access ({url}), copy it here and set "
        "`dataset.source: local` with `dataset.local.path` pointing at it (stage1_train.zip, "
        "or a folder holding stage1_train.zip, stage1_test.zip and stage1_solution.csv)."
    )


def _csv_problem(path: Path) -> str | None:
    try:
        check_solution_csv(path)
    except (DownloadError, OSError) as exc:
        return str(exc)
    return None


def download(url: str, target: Path, check: Callable[[Path], None],
             remedy: str | None = None) -> Path:
    """Fetch `url` to `target` through a `.part` file that is renamed only once `check` passes.

    Raises NotOnServer when the server has no such file, DownloadError for any other failure,
    ending with `remedy` (what to do; by default, this source's); either way no file named
    `target` is left behind.
    """
    what_to_do = remedy or _what_to_do(url)
    log.info("downloading %s -> %s", url, target)
    with atomic_path(target) as part:
        try:
            with (
                urllib.request.urlopen(url, timeout=TIMEOUT_S) as response,
                open(part, "wb") as out,
            ):
                expected = response.headers.get("Content-Length")
                shutil.copyfileobj(response, out, _CHUNK)
                size = out.tell()
        except urllib.error.HTTPError as exc:
            if exc.code == 404:
                raise NotOnServer(f"{url}: not found on the server (HTTP 404)") from exc
            raise DownloadError(
                f"Download of {url} failed: the server answered HTTP {exc.code} {exc.reason}. "
                f"{what_to_do}"
            ) from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, FileNotFoundError):
                raise NotOnServer(f"{url}: no such file") from exc
            raise DownloadError(
                f"Download of {url} failed: {exc.reason}. This machine may have no internet "
                f"access, or a proxy/firewall blocks it. {what_to_do}"
            ) from exc
        except (OSError, http.client.HTTPException) as exc:  # reset, timeout, short read
            raise DownloadError(
                f"Download of {url} failed part-way ({type(exc).__name__}: {exc}). "
                f"{what_to_do}"
            ) from exc
        if expected is not None and expected.isdigit() and int(expected) != size:
            raise DownloadError(
                f"Download of {url} is incomplete: got {size} of {expected} bytes. "
                f"{what_to_do}"
            )
        try:
            check(part)
        except DownloadError as exc:
            raise DownloadError(
                f"Download of {url} is not usable ({exc}); it was not kept. {what_to_do}"
            ) from exc
    log.info("verified %s (%d bytes)", target, size)
    return target


def fetch_file(base_url: str, name: str, downloads: Path, required: bool) -> Path | None:
    """`downloads/<name>`: reused when intact, else downloaded from `<base_url><name>`."""
    target = downloads / name
    is_zip = name.endswith(".zip")
    if target.is_file():
        problem = zip_problem(target) if is_zip else _csv_problem(target)
        if problem is None:
            log.info("reusing %s (already downloaded and verified)", target)
            return target
        log.warning("%s is damaged (%s); downloading it again", target, problem)
        target.unlink()
    url = base_url + name
    check = (lambda p: verify_zip(p, name)) if is_zip else (lambda p: check_solution_csv(p, name))
    try:
        return download(url, target, check)
    except NotOnServer as exc:
        if required:
            raise DownloadError(
                f"{exc}. Check `dataset.bbbc038.url` (the BBBC038 files live at {DEFAULT_URL}). "
                f"{_what_to_do(url)}"
            ) from exc
        log.warning("%s; continuing without it", exc)
        return None


def fetch_bbbc038(settings: dict, dest: Path) -> Layout:
    section = settings.get("bbbc038") or {}
    if not isinstance(section, dict):
        raise ConfigError(f"dataset.bbbc038 must be a mapping like {{url: {DEFAULT_URL!r}}}")
    base_url = section.get("url") or DEFAULT_URL
    if not isinstance(base_url, str):
        raise ConfigError(f"dataset.bbbc038.url must be a URL, got {base_url!r}")
    if not base_url.endswith("/"):
        base_url += "/"
    downloads = dest / "downloads"
    train = fetch_file(base_url, TRAIN_ZIP, downloads, required=True)
    test = fetch_file(base_url, TEST_ZIP, downloads, required=False)
    solution = fetch_file(base_url, SOLUTION, downloads, required=False)
    return install_stage_files(
        dest, base_url, train_zip=train, test_zip=test, solution_csv=solution
    )
