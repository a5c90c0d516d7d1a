import pandas as pd
import pytest

from nucleiseg.errors import ConfigError
from nucleiseg.split import split_dataset, stratified_split

FRACTIONS = {"train": 0.7, "val": 0.15, "test": 0.15}


def _table():
    rows = []
    for modality, size, count in [
        ("fluorescence", (256, 256), 60), ("fluorescence", (520, 696), 20),
        ("stained", (256, 320), 20), ("brightfield", (1024, 1024), 4),
        ("fluorescence", (1040, 1388), 1),
    ] + [("fluorescence", (260 + k, 347), 1) for k in range(6)]:  # six one-image strata
        rows += [{"id": f"{modality}_{size[0]}_{i:03d}", "modality": modality,
                  "height": size[0], "width": size[1]} for i in range(count)]
    return pd.DataFrame(rows)


def test_same_seed_same_split_whatever_the_row_order():
    table = _table()
    first = stratified_split(table, FRACTIONS, seed=0)
    shuffled = stratified_split(table.sample(frac=1, random_state=3), FRACTIONS, seed=0)
    pd.testing.assert_frame_equal(first, shuffled)
    other = stratified_split(table, FRACTIONS, seed=1)
    assert not first["split"].equals(other["split"])


def test_every_large_stratum_is_split_in_proportion():
    split = stratified_split(_table(), FRACTIONS, seed=0)
    for stratum, group in split.groupby("stratum"):
        if len(group) >= 20:
            shares = group["split"].value_counts(normalize=True)
            for name, fraction in FRACTIONS.items():
                assert shares.get(name, 0) == pytest.approx(fraction, abs=0.06), (stratum, name)


def test_overall_fractions_hold_even_with_many_tiny_strata():
    split = stratified_split(_table(), FRACTIONS, seed=0)
    counts = split["split"].value_counts()
    total = len(split)
    for name, fraction in FRACTIONS.items():
        assert abs(counts.get(name, 0) - fraction * total) <= 1.0, name
    # The six one-image strata are not all sent to train.
    tiny = split[split["stratum"].str.contains("x347")]
    assert set(tiny["split"]) != {"train"}


def test_fractions_must_add_up_to_one():
    with pytest.raises(ConfigError, match="add up to 1"):
        stratified_split(_table(), {"train": 0.8, "val": 0.15, "test": 0.15}, seed=0)


def test_split_file_is_reused_and_checked(tmp_path):
    table = _table()
    fresh = stratified_split(table, FRACTIONS, seed=0)
    given = fresh[["id", "split"]].copy()
    given["split"] = "test"  # a split nobody would compute: proves the file is what is used
    path = tmp_path / "split.csv"
    given.to_csv(path, index=False)
    reused = split_dataset(table, {"fractions": FRACTIONS, "seed": 0, "file": str(path)})
    assert (reused["split"] == "test").all()
    given.iloc[1:].to_csv(path, index=False)
    with pytest.raises(ConfigError, match="no split for 1 prepared images"):
        split_dataset(table, {"fractions": FRACTIONS, "seed": 0, "file": str(path)})
    with pytest.raises(ConfigError, match="does not exist"):
        split_dataset(table, {"fractions": FRACTIONS, "seed": 0, "file": str(tmp_path / "nope.csv")})
