"""Source `kaggle`: the competition's zip through the official `kaggle` client (v2.x).

The client is awkward to drive from a program, so this module checks and translates around it:

- `import kaggle` authenticates at import time and prints an 18-line help text to stdout when it
  finds no credentials; `KaggleApi.authenticate()` then calls `exit(1)` (SystemExit, which
  `except Exception` does not catch). Credentials are therefore checked here first, mirroring the
  client's own lookup (`find_kaggle_credentials`), and the client is imported only when a
  download is really needed, with its stdout captured and logged at DEBUG level.
- Every failure (no/invalid credentials, HTTP 401/403/404, no network) becomes one DownloadError
  that says what to do, built by the pure function `explain_kaggle_failure`.
- The client writes straight to its output file; here it writes into a staging folder, and the
  zip is moved to `downloads/<competition>.zip` only after its integrity check passes.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import os
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import ConfigError, DownloadError
from .archive import Layout, install_kaggle_outer, zip_problem

log = logging.getLogger(__name__)

DEFAULT_COMPETITION = "data-science-bowl-2018"
TOKEN_PAGE = "https://www.kaggle.com/settings/api"

ALTERNATIVES = (
    "Or use a source that needs no Kaggle account: set `dataset.source: bbbc038` to download "
    "the same images from the Broad Institute's public copy (BBBC038, no credentials needed), "
    "or download the data by hand and set `dataset.source: local` with `dataset.local.path` "
    "pointing at Kaggle's data-science-bowl-2018.zip, at stage1_train.zip, or at an extracted "
    "Kaggle-layout folder."
)


def rules_url(competition: str) -> str:
    return f"https://www.kaggle.com/competitions/{competition}/rules"


# --- credentials -----------------------------------------------------------------------------


@dataclass(frozen=True)
class KaggleCredentials:
    """Where the client will find credentials, and environment it needs to find them."""

    source: str
    env: dict[str, str] = field(default_factory=dict)


def kaggle_config_dir() -> Path:
    """The folder the client reads kaggle.json from (KaggleApi.config_dir, computed the same way).

    KAGGLE_CONFIG_DIR if set; else ~/.kaggle if it exists; else, on Linux, the XDG folder
    $XDG_CONFIG_HOME/kaggle (default ~/.config/kaggle).
    """
    configured = os.environ.get("KAGGLE_CONFIG_DIR")
    if configured:
        return Path(configured).expanduser()
    legacy = Path(os.path.expanduser("~")) / ".kaggle"
    if sys.platform.startswith("linux") and not legacy.exists():
        xdg = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
        return Path(xdg) / "kaggle"
    return legacy


def _read_text(path: Path) -> str:
    try:
        return path.read_text().strip() if path.is_file() else ""
    except OSError:
        return ""


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text()) if path.is_file() else {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def find_kaggle_credentials() -> KaggleCredentials | None:
    """Credentials the kaggle client would use, in its own order; None when there are none.

    1. an access token: the KAGGLE_API_TOKEN variable (the token, or a file holding it), or the
       file ~/.kaggle/access_token (or access_token.txt). The client reads that file from
       ~/.kaggle even when KAGGLE_CONFIG_DIR is set; here $KAGGLE_CONFIG_DIR/access_token is
       accepted too and handed to the client through KAGGLE_API_TOKEN.
    2. a legacy API key: username and key, each from KAGGLE_USERNAME/KAGGLE_KEY or from
       kaggle.json in the config folder (`kaggle_config_dir`); the variables win.
    3. an OAuth login (`kaggle auth login`): ~/.kaggle/credentials.json with a refresh token.
    Only presence is checked here; the client finds out whether Kaggle accepts them.
    """
    if os.environ.get("KAGGLE_API_TOKEN", "").strip():
        return KaggleCredentials("the KAGGLE_API_TOKEN environment variable")
    home_kaggle = Path(os.path.expanduser("~")) / ".kaggle"
    for name in ("access_token", "access_token.txt"):
        if _read_text(home_kaggle / name):
            return KaggleCredentials(f"the token file {home_kaggle / name}")
    config_dir = kaggle_config_dir()
    if config_dir != home_kaggle and _read_text(config_dir / "access_token"):
        token_file = config_dir / "access_token"
        return KaggleCredentials(
            f"the token file {token_file}", {"KAGGLE_API_TOKEN": str(token_file)}
        )
    values = {k: str(v) for k, v in _read_json(config_dir / "kaggle.json").items()}
    for key in ("username", "key"):
        if os.environ.get(f"KAGGLE_{key.upper()}"):
            values[key] = os.environ[f"KAGGLE_{key.upper()}"]
    if values.get("username", "").strip() and values.get("key", "").strip():
        return KaggleCredentials(
            f"username and key from KAGGLE_USERNAME/KAGGLE_KEY or {config_dir / 'kaggle.json'}"
        )
    if _read_json(home_kaggle / "credentials.json").get("refresh_token"):
        return KaggleCredentials(f"the OAuth login in {home_kaggle / 'credentials.json'}")
    return None


def _how_to_authenticate(competition: str) -> str:
    config_dir = kaggle_config_dir()
    return (
        f"Create an API token at {TOKEN_PAGE} and give it to the workflow in one of these ways: "
        "(a) environment variables KAGGLE_USERNAME and KAGGLE_KEY (your user name and the "
        "legacy key); (b) environment variable KAGGLE_API_TOKEN (the token); "
        f"(c) the file {config_dir / 'kaggle.json'} holding "
        '{"username": "...", "key": "..."} (chmod 600; the folder is $KAGGLE_CONFIG_DIR if '
        "set, else ~/.kaggle if it exists, else ~/.config/kaggle); (d) the file "
        "~/.kaggle/access_token holding the token; or (e) run "
        "`kaggle auth login` once. Your account must also have accepted the competition's rules "
        f"at {rules_url(competition)} (once, in a browser)."
    )


def missing_credentials_error(competition: str = DEFAULT_COMPETITION) -> DownloadError:
    return DownloadError(
        f"dataset.source is kaggle, but no Kaggle API credentials were found, so competition "
        f"'{competition}' cannot be downloaded. {_how_to_authenticate(competition)} "
        f"{ALTERNATIVES}"
    )


# --- failures --------------------------------------------------------------------------------


def _is_connection_error(exc: BaseException) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    try:
        import requests
        import urllib3.exceptions
    except ImportError:  # pragma: no cover - both come with the kaggle client
        return False
    return isinstance(
        exc,
        (
            requests.exceptions.ConnectionError,
            requests.exceptions.Timeout,
            urllib3.exceptions.MaxRetryError,
            urllib3.exceptions.NewConnectionError,
            urllib3.exceptions.ProtocolError,
            urllib3.exceptions.TimeoutError,
        ),
    )


def explain_kaggle_failure(
    exc: BaseException, competition: str = DEFAULT_COMPETITION
) -> DownloadError:
    """Turn whatever the kaggle client raised into one DownloadError that says what to do."""
    what = f"Kaggle download of competition '{competition}' failed"
    if isinstance(exc, SystemExit):
        return DownloadError(
            f"{what}: the kaggle client found no credentials it could use and gave up (it "
            "calls exit() when authentication fails; an expired or revoked access token is "
            f"ignored silently and ends the same way). {_how_to_authenticate(competition)} "
            f"{ALTERNATIVES}"
        )
    if isinstance(exc, ImportError):
        return DownloadError(
            f"{what}: the kaggle client cannot be imported ({exc}). Install the pinned "
            f"requirements (`make venv`, or `pip install -r requirements.txt`). {ALTERNATIVES}"
        )
    status = getattr(getattr(exc, "response", None), "status_code", None)
    if status == 401:
        return DownloadError(
            f"{what}: Kaggle rejected the credentials (HTTP 401 Unauthorized): the user name, "
            f"key or token is wrong, expired or revoked. Create a new token at {TOKEN_PAGE} "
            "and update KAGGLE_USERNAME/KAGGLE_KEY, KAGGLE_API_TOKEN, kaggle.json or "
            f"~/.kaggle/access_token, whichever you use. {ALTERNATIVES}"
        )
    if status == 403:
        return DownloadError(
            f"{what}: Kaggle refused the download (HTTP 403 Forbidden). This almost always means "
            "your Kaggle account has not accepted the competition's rules. Open "
            f"{rules_url(competition)} in a browser while logged in, click 'I Understand and "
            "Accept' (the API cannot accept them for you), then rerun. "
            f"{ALTERNATIVES}"
        )
    if status == 404:
        return DownloadError(
            f"{what}: Kaggle knows no competition '{competition}' (HTTP 404). Check "
            f"`dataset.kaggle.competition` (DSB2018 is '{DEFAULT_COMPETITION}'). {ALTERNATIVES}"
        )
    if status == 429:
        return DownloadError(
            f"{what}: Kaggle is rate-limiting this account (HTTP 429). Wait a few minutes and "
            f"rerun. {ALTERNATIVES}"
        )
    if status is not None:
        return DownloadError(
            f"{what}: Kaggle answered HTTP {status} ({exc}). Rerun later; if it persists, check "
            f"https://www.kaggle.com/competitions/{competition}/data. {ALTERNATIVES}"
        )
    if _is_connection_error(exc):
        return DownloadError(
            f"{what}: could not reach Kaggle (api.kaggle.com): {type(exc).__name__}: {exc}. "
            "This machine seems to have no internet access, or a proxy/firewall blocks it. "
            "Check the connection (set HTTPS_PROXY if you need a proxy) and rerun, or download "
            "data-science-bowl-2018.zip on a machine with internet access and copy it here. "
            f"{ALTERNATIVES}"
        )
    return DownloadError(f"{what}: {type(exc).__name__}: {exc}. {ALTERNATIVES}")


# --- download --------------------------------------------------------------------------------


@contextlib.contextmanager
def _environ(extra: dict[str, str]) -> Iterator[None]:
    saved = {key: os.environ.get(key) for key in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def download_competition(competition: str, downloads: Path, credentials: KaggleCredentials) -> Path:
    """Download the competition's zip to `downloads/<competition>.zip`; verified before renamed.

    The client writes into `downloads/.<competition>.kaggle-partial/`, which is kept after a
    failure so that the client can resume an interrupted download on the next run.
    """
    archive = downloads / f"{competition}.zip"
    staging = downloads / f".{competition}.kaggle-partial"
    staging.mkdir(parents=True, exist_ok=True)
    log.info(
        "downloading Kaggle competition %s (credentials: %s) -> %s",
        competition,
        credentials.source,
        archive,
    )
    noise = io.StringIO()
    try:
        with contextlib.redirect_stdout(noise), _environ(credentials.env):
            # Importing the package authenticates and prints help when that fails: capture it.
            from kaggle.api.kaggle_api_extended import KaggleApi

            api = KaggleApi()
            # The class computes its config folder once, at import; use today's environment.
            config_dir = kaggle_config_dir()
            api.config_dir, api.config = str(config_dir), str(config_dir / "kaggle.json")
            api.authenticate()
            api.competition_download_files(competition, path=str(staging), quiet=True)
    except (Exception, SystemExit) as exc:
        with contextlib.suppress(OSError):
            staging.rmdir()  # only if empty: a partial download stays for the client to resume
        raise explain_kaggle_failure(exc, competition) from exc
    finally:
        if noise.getvalue().strip():
            log.debug("kaggle client output:\n%s", noise.getvalue().rstrip())
    got = staging / archive.name
    if not got.is_file():
        found = sorted(p.name for p in staging.iterdir())
        raise DownloadError(
            f"Kaggle download of '{competition}' finished but {got} is missing (found: "
            f"{', '.join(found) or 'nothing'}). Expected Kaggle's {archive.name}. {ALTERNATIVES}"
        )
    problem = zip_problem(got)
    if problem:
        got.unlink()
        raise DownloadError(
            f"Kaggle download of '{competition}' is damaged ({problem}); it was deleted. Rerun "
            f"to download it again. {ALTERNATIVES}"
        )
    os.replace(got, archive)
    shutil.rmtree(staging, ignore_errors=True)
    log.info("verified %s", archive)
    return archive


def fetch_kaggle(settings: dict, dest: Path) -> Layout:
    """Kaggle's competition zip (downloaded once, reused while intact), unpacked into `dest`."""
    section = settings.get("kaggle") or {}
    if not isinstance(section, dict):
        raise ConfigError(
            "dataset.kaggle must be a mapping like {competition: data-science-bowl-2018}"
        )
    competition = section.get("competition") or DEFAULT_COMPETITION
    if not isinstance(competition, str):
        raise ConfigError(f"dataset.kaggle.competition must be a name, got {competition!r}")
    downloads = dest / "downloads"
    archive = downloads / f"{competition}.zip"
    if archive.is_file():
        problem = zip_problem(archive)
        if problem is None:
            log.info("reusing %s (already downloaded and verified)", archive)
            return install_kaggle_outer(archive, dest, origin=competition)
        log.warning("%s is damaged (%s); deleting it and downloading again", archive, problem)
        archive.unlink()
    credentials = find_kaggle_credentials()
    if credentials is None:
        raise missing_credentials_error(competition)
    download_competition(competition, downloads, credentials)
    return install_kaggle_outer(archive, dest, origin=competition)
