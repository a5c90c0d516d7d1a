"""The config is checked at parse time: defaults from the schema, every mistake named."""

from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, run_snakemake
from nucleiseg import errors, inference, modelconfig, normalize
from nucleiseg.config_keys import RENAMED_KEYS, check_renamed_keys
from nucleiseg.errors import ConfigError

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_empty_config_gets_every_default():
    config = {}
    validate(config, SCHEMA)
    assert config["dataset"]["source"] == "kaggle"
    assert config["prepare"]["normalize"] == {"p_low": 1.0, "p_high": 99.8}
    assert config["tiles"] == {"size": 256, "overlap": 64}
    assert config["split"]["fractions"] == {"train": 0.7, "val": 0.15, "test": 0.15}


def test_shipped_config_files_are_valid_and_match_schema_defaults():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(shipped, SCHEMA)
    defaults = {}
    validate(defaults, SCHEMA)
    assert shipped == defaults  # config.yaml documents the defaults, it does not change them
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    validate(demo, SCHEMA)


@pytest.mark.parametrize("config, named", [
    ({"tiles": {"sise": 256}}, "'sise' was unexpected"),
    ({"typo_section": {}}, "'typo_section' was unexpected"),
    ({"tiles": {"size": "big"}}, "['tiles']['size']"),
    ({"tiles": {"size": 100}}, "100 is not a multiple of 32"),
    ({"dataset": {"source": "kagle"}}, "'kagle' is not one of"),
    ({"prepare": {"on_bad_image": "ignore"}}, "['prepare']['on_bad_image']"),
    ({"dataset": {"bbbc038": {"url": "https://example.org/no-slash"}}}, "['dataset']['bbbc038']['url']"),
])
def test_mistakes_are_named(config, named):
    with pytest.raises(WorkflowError) as caught:
        validate(config, SCHEMA)
    assert named in str(caught.value)


@pytest.mark.parametrize("config, named", [
    ({"tiles": {"sise": 256}}, "'sise' was unexpected"),
    ({"dataset": {"source": "local"}}, "dataset.local.path is empty"),
    ({"tiles": {"size": 64, "overlap": 64}}, "tiles.overlap (64) must be smaller"),
    ({"split": {"fractions": {"train": 0.5, "val": 0.1, "test": 0.1}}}, "add up to 1"),
])
def test_workflow_stops_before_any_job(tmp_path: Path, config, named):
    result = run_snakemake(tmp_path, config, "--dry-run", check=False)
    assert result.returncode != 0
    assert named in result.stdout + result.stderr
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def _leaf_keys(schema: dict, prefix: str = "") -> list[str]:
    keys = []
    for name, sub in schema.get("properties", {}).items():
        path = f"{prefix}{name}"
        keys += _leaf_keys(sub, path + ".") if sub.get("type") == "object" else [path]
    return keys


def test_readme_config_table_mirrors_the_schema():
    """Every setting in the schema is in README's table (by full key or `.suffix` shorthand)."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    readme = (REPO / "README.md").read_text()
    table = [line for line in readme.splitlines() if line.startswith("| `")]
    missing = []
    for key in _leaf_keys(schema):
        parent, _, leaf = key.rpartition(".")
        if not any(f"`{key}`" in row or (f"`{parent}." in row and f"`.{leaf}`" in row) or
                   (f"`{parent}.{leaf}`" in row) for row in table):
            missing.append(key)
    assert not missing, f"README's configuration table lacks {missing}"


def _schema_sections() -> dict[str, dict]:
    """Each top-level section's properties, by section name."""
    schema = yaml.safe_load(Path(SCHEMA).read_text())
    return {name: section.get("properties", {}) for name, section in schema["properties"].items()}


def test_schema_enums_are_the_package_constants():
    """The schema is checked at parse time, the package at run time: both must allow the same."""
    properties = _schema_sections()
    assert set(properties["model"]["heads"]["enum"]) == set(modelconfig.HEADS)
    assert tuple(properties["model"]["alpha"]["enum"]) == modelconfig.ALPHAS
    modalities = properties["dataset"]["synthetic"]["properties"]["modalities"]["items"]["enum"]
    assert tuple(modalities) == normalize.MODALITIES
    for section in ("prepare", "segment"):
        assert tuple(properties[section]["on_bad_image"]["enum"]) == errors.ON_BAD_IMAGE, section


def test_schema_holds_the_tiling_keys_and_the_networks_divisor():
    properties = _schema_sections()
    assert set(inference.TILING_KEYS) <= set(properties["segment"])
    for section, key in (("tiles", "size"), ("train", "patch_size"), ("segment", "tile_size"),
                         ("segment", "overlap")):
        assert properties[section][key]["multipleOf"] == modelconfig.DIVISOR, f"{section}.{key}"


@pytest.mark.parametrize("old, new", sorted(RENAMED_KEYS.items()))
def test_renamed_key_is_refused_naming_its_new_name(old, new):
    section, key = old.split(".")
    with pytest.raises(ConfigError) as caught:
        check_renamed_keys({section: {key: 2}})
    assert f"{old} is now {new}" in str(caught.value)


def test_config_without_renamed_keys_passes_and_all_old_ones_are_named():
    config = {}
    validate(config, SCHEMA)
    check_renamed_keys(config)  # every current key, with its default
    check_renamed_keys({"batches": {"batch_size": "/data/plate1"}})  # any name for a batch
    old = {}
    for dotted in RENAMED_KEYS:
        section, key = dotted.split(".")
        old.setdefault(section, {})[key] = 2
    with pytest.raises(ConfigError) as caught:
        check_renamed_keys(old)
    assert all(new in str(caught.value) for new in RENAMED_KEYS.values())


@pytest.mark.parametrize("config, args, named", [
    ({}, ("--config", 'segment={"images_per_job": 2}'),
     "segment.images_per_job is now segment.images_per_chunk"),
    ({"train": {"batch_size": 8}}, (), "train.batch_size is now train.patches_per_step"),
])
def test_dry_run_with_a_renamed_key_stops_with_a_short_message(tmp_path: Path, config, args, named):
    result = run_snakemake(tmp_path, config, "--dry-run", *args, check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert any(named in line for line in output.splitlines()), output
    assert len(output.splitlines()) < 40, output  # the message, not a traceback or a schema dump
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()
