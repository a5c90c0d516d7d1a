"""Where `segment.model` comes from: a model folder on this machine, or a zip archive of one by
address (an http(s):// or file:// URL, or the path of a local .zip) with its SHA-256.

An archive is fetched once, by the rule fetch_model (`model_fetch.fetch_model`), and unpacked
to `resources/models/<sha256>/`, the folder segment_images then reads: named by its content,
so the same archive from another address fetches nothing again. The Snakefile calls this at
parse time, so it uses the standard library only and reads nothing from disk or network.
"""

from __future__ import annotations

import re
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from .errors import ConfigError

MODELS_FOLDER = "resources/models"
URL_SCHEMES = ("http", "https", "file")
ARCHIVE_SUFFIX = ".zip"
HOW_TO_HASH = "`sha256sum model.zip` (macOS: `shasum -a 256 model.zip`)"
_SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class ModelArchive:
    """A model folder shared as a zip archive: where to get it, and its SHA-256 (lower case)."""

    address: str
    sha256: str

    @property
    def folder(self) -> str:
        """Where the rule fetch_model unpacks it (relative to the working folder)."""
        return f"{MODELS_FOLDER}/{self.sha256}"

    def local_path(self) -> Path | None:
        """The archive's path when it is on this machine (a file:// URL or a path), else None."""
        parts = urllib.parse.urlsplit(self.address)
        if parts.scheme.lower() == "file":
            return Path(urllib.request.url2pathname(parts.path))
        return None if is_url(self.address) else Path(self.address).expanduser()


def is_url(value: str) -> bool:
    return urllib.parse.urlsplit(value).scheme.lower() in URL_SCHEMES and "://" in value


def is_archive(value: str) -> bool:
    """An address to fetch (a URL, or a local .zip), not a model folder."""
    return is_url(value) or value.lower().endswith(ARCHIVE_SUFFIX)


def model_archive(model: str, sha256: str) -> ModelArchive | None:
    """The archive that `segment.model` and `segment.model_sha256` name; None for a model folder
    (or an empty `segment.model`). A ConfigError, one line naming the keys, for an archive
    without its checksum, a malformed checksum, a checksum beside a folder, or an address that
    cannot be fetched."""
    sha256 = sha256.strip().lower()
    scheme = urllib.parse.urlsplit(model).scheme
    if scheme and "://" in model and not is_url(model):
        raise ConfigError(
            f"segment.model: {model} is an address of a kind that cannot be fetched ({scheme}://);"
            " give an http://, https:// or file:// URL, or download the archive and give its path"
        )
    if not is_archive(model):
        if sha256:
            raise ConfigError(
                f"segment.model_sha256 is set, but segment.model ({model or 'empty'}) is not an "
                "archive: a checksum names a zip archive (a URL or a .zip); remove it, or point "
                "segment.model at the archive"
            )
        return None
    if not sha256:
        raise ConfigError(
            f"segment.model: {model} is an archive, so segment.model_sha256 must say which one: "
            f"set it to the archive's SHA-256, as {HOW_TO_HASH} prints it where the archive "
            "was made (or ask whoever shared it)"
        )
    if not _SHA256.fullmatch(sha256):
        raise ConfigError(
            f"segment.model_sha256 must be 64 hexadecimal digits, as {HOW_TO_HASH} prints "
            f"them, got {sha256!r}"
        )
    return ModelArchive(model, sha256)
