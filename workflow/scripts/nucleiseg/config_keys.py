"""Workflow config keys renamed since earlier releases: a config that still uses one is refused
with a message that names the new key, before the schema sees it.

The Snakefile calls this at parse time, so it uses the standard library only.
"""

from __future__ import annotations

from .errors import ConfigError

# old dotted key -> new dotted key (same meaning, same values)
RENAMED_KEYS = {
    "train.batch_size": "train.patches_per_step",
    "segment.batch_size": "segment.tiles_per_step",
    "segment.images_per_job": "segment.images_per_chunk",
}


def check_renamed_keys(config: dict) -> None:
    """A ConfigError naming every renamed key that `config` still uses, and its new name."""
    found = []
    for old, new in RENAMED_KEYS.items():
        section, key = old.split(".")
        if isinstance(config.get(section), dict) and key in config[section]:
            found.append(f"{old} is now {new}")
    if found:
        raise ConfigError("renamed config key(s): " + "; ".join(found) + ". Rename them in "
                          "your config file (or --config); the values mean the same")
