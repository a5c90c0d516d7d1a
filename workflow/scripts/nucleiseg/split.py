"""Deterministic train/val/test split, stratified by modality and image size.

Within a stratum, images are ordered by a seeded hash of their id, so the split depends on the
ids and the seed only, never on the order in which files were listed. Counts are
allocated with running totals over the strata (largest-remainder style), so that many small
strata (DSB2018 has sizes with 1-6 images) do not all fall into `train`, and the overall
fractions stay within one image of the requested ones.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd

from .errors import ConfigError

SPLITS = ("train", "val", "test")


def stratum_of(row) -> str:
    return f"{row['modality']}_{row['height']}x{row['width']}"


def _hash_key(sample_id: str, seed: int) -> str:
    return hashlib.sha256(f"{seed}:{sample_id}".encode()).hexdigest()


def check_fractions(fractions: dict) -> dict:
    missing = [s for s in SPLITS if s not in fractions]
    if missing:
        raise ConfigError(f"split.fractions lacks {missing}; give train, val and test")
    total = sum(float(fractions[s]) for s in SPLITS)
    if abs(total - 1.0) > 1e-6:
        raise ConfigError(f"split.fractions must add up to 1, they add up to {total:g}")
    return {s: float(fractions[s]) for s in SPLITS}


def stratified_split(table: pd.DataFrame, fractions: dict, seed: int) -> pd.DataFrame:
    """Assign each image (columns id, modality, height, width) to train, val or test."""
    fractions = check_fractions(fractions)
    frame = table[["id", "modality", "height", "width"]].copy()
    frame["stratum"] = frame.apply(stratum_of, axis=1)
    frame["key"] = [_hash_key(i, seed) for i in frame["id"]]
    frame = frame.sort_values(["stratum", "key"], ignore_index=True)

    seen = 0
    given = {s: 0 for s in SPLITS}
    split = []
    for _, group in frame.groupby("stratum", sort=True):
        seen += len(group)
        counts = {}
        for name in ("test", "val"):  # held-out splits first; train takes the remainder
            target = round(fractions[name] * seen)
            counts[name] = max(0, min(target - given[name], len(group) - sum(counts.values())))
        counts["train"] = len(group) - counts["test"] - counts["val"]
        for name in SPLITS:
            given[name] += counts[name]
        # Within the stratum's hash order: train first, then val, then test.
        split += ["train"] * counts["train"] + ["val"] * counts["val"] + ["test"] * counts["test"]
    frame["split"] = split
    return frame[["id", "modality", "height", "width", "stratum", "split"]].sort_values(
        "id", ignore_index=True
    )


def read_split_file(path: str | Path, ids: pd.Series) -> pd.DataFrame:
    """A split written earlier (id, split), checked against the prepared images."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"split.file {path} does not exist; remove the setting to make a new split")
    given = pd.read_csv(path, dtype={"id": str})
    if not {"id", "split"} <= set(given.columns):
        raise ConfigError(f"split.file {path} needs the columns id and split")
    bad = sorted(set(given["split"]) - set(SPLITS))
    if bad:
        raise ConfigError(f"split.file {path}: unknown split names {bad}; use {SPLITS}")
    missing = sorted(set(ids) - set(given["id"]))
    if missing:
        raise ConfigError(
            f"split.file {path} has no split for {len(missing)} prepared images "
            f"(first: {missing[0]}); extend the file or remove split.file"
        )
    return given[["id", "split"]]


def split_dataset(table: pd.DataFrame, settings: dict) -> pd.DataFrame:
    """The split for the prepared images: from split.file if set, else a new stratified one."""
    fresh = stratified_split(table, settings["fractions"], int(settings["seed"]))
    if settings.get("file"):
        given = read_split_file(settings["file"], table["id"])
        fresh = fresh.drop(columns="split").merge(given, on="id", how="left")
    return fresh
