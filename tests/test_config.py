"""The config is checked at parse time: defaults from the schema, every mistake named."""

from pathlib import Path

import pytest
import yaml
from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

from conftest import REPO, run_snakemake
from nucleiseg import batch_io, config_keys, errors, exports, inference, modelconfig, normalize, tta
from nucleiseg.config_keys import RENAMED_KEYS, check_renamed_keys
from nucleiseg.errors import ConfigError

SCHEMA = str(REPO / "workflow" / "schemas" / "config.schema.yaml")


def test_empty_config_gets_every_default():
    config = {}
    validate(config, SCHEMA)
    assert config["dataset"]["source"] == "kaggle"
    assert config["prepare"]["normalize"] == {"p_low": 1.0, "p_high": 99.8}
    assert config["tiles"] == {"size": 256, "overlap": 64, "nucleus_diameter": 0}
    assert config["split"]["fractions"] == {"train": 0.7, "val": 0.15, "test": 0.15}


def test_shipped_config_files_are_valid_and_match_schema_defaults():
    shipped = yaml.safe_load((REPO / "config.yaml").read_text())
    validate(shipped, SCHEMA)
    defaults = {}
    validate(defaults, SCHEMA)
    assert shipped == defaults  # config.yaml documents the defaults, it does not change them
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    validate(demo, SCHEMA)


SCHEMA_MISTAKES = [
    ({"tiles": {"sise": 256}}, "'sise' was unexpected"),
    ({"typo_section": {}}, "'typo_section' was unexpected"),
    ({"tiles": {"size": "big"}}, "['tiles']['size']"),
    ({"tiles": {"size": 100}}, "100 is not a multiple of 32"),
    ({"dataset": {"source": "kagle"}}, "'kagle' is not one of"),
    ({"prepare": {"on_bad_image": "ignore"}}, "['prepare']['on_bad_image']"),
    ({"dataset": {"bbbc038": {"url": "https://example.org/no-slash"}}}, "['dataset']['bbbc038']['url']"),
]


@pytest.mark.parametrize("config, named", SCHEMA_MISTAKES)
def test_mistakes_are_named(config, named):
    with pytest.raises(WorkflowError) as caught:
        validate(config, SCHEMA)
    assert named in str(caught.value)


@pytest.mark.parametrize("config, named", [
    ({"tiles": {"sise": 256}}, "tiles.sise: unknown key; did you mean tiles.size?"),
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
    assert tuple(properties["segment"]["exports"]["items"]["enum"]) == exports.EXPORTS
    assert tuple(properties["segment"]["tta"]["enum"]) == tta.TTA_MODES
    assert tuple(properties["segment"]["pages"]["enum"]) == batch_io.PAGES


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


def _schema() -> dict:
    return yaml.safe_load(Path(SCHEMA).read_text())


def _keywords(schema: dict) -> set[str]:
    found = set(schema)
    for sub in schema.get("properties", {}).values():
        found |= _keywords(sub)
    for word in ("items", "additionalProperties", "propertyNames"):
        if isinstance(schema.get(word), dict):
            found |= _keywords(schema[word])
    return found


def test_the_one_line_check_knows_every_keyword_the_schema_uses():
    """A keyword it ignored would leave that mistake to validate's long message."""
    known = config_keys.CHECKED_KEYWORDS | config_keys.ANNOTATIONS
    assert sorted(_keywords(_schema()) - known) == []


@pytest.mark.parametrize("config, named", SCHEMA_MISTAKES)
def test_the_one_line_check_finds_what_validate_finds(config, named):
    assert config_keys.config_problems(config, _schema())


def test_every_default_passes_the_one_line_check():
    config = {}
    validate(config, SCHEMA)
    assert config_keys.config_problems(config, _schema()) == []
    config_keys.check_config(yaml.safe_load((REPO / "config" / "demo.yaml").read_text()), _schema())


def test_every_mistake_gets_its_own_line_at_once():
    config = {"segment": {"tile_sise": 512, "threads": 0}, "model": {"decoder_filters": [8, 0]},
              "train": {"mixed_precision": True}, "batches": {"two words": "/data"}}
    assert config_keys.config_problems(config, _schema()) == [
        "segment.tile_sise: unknown key; did you mean segment.tile_size? (segment's keys: "
        + ", ".join(_schema()["properties"]["segment"]["properties"]) + ")",
        "segment.threads: must be at least 1, got 0",
        "model.decoder_filters: must hold 5 items, got 2",
        "model.decoder_filters[1]: must be at least 1, got 0",
        "train.mixed_precision: must be text, got true; quote it in YAML: 'true'",
        "batches.two words: the name 'two words' must match the pattern ^[A-Za-z0-9][A-Za-z0-9_.-]*$",
    ]


def test_command_line_text_becomes_the_type_the_schema_wants():
    # What `--config segment='{...}' model='{...}'` gives: YAML's BaseLoader keeps text.
    given = {"segment": {"images_per_chunk": "1", "save_probabilities": "true", "model": "7"},
             "model": {"decoder_filters": ["16", "8", "8", "8", "8"]},
             "train": {"learning_rate": "1e-3", "epochs": "many"}}
    config = {"segment": {**given["segment"], "threads": "2"}, "model": dict(given["model"]),
              "train": dict(given["train"])}
    config_keys.type_command_line_values(config, given, _schema())
    assert config == {
        "segment": {"images_per_chunk": 1, "save_probabilities": True, "model": "7",
                    "threads": "2"},  # threads came from a config file: left to the check
        "model": {"decoder_filters": [16, 8, 8, 8, 8]},
        "train": {"learning_rate": 0.001, "epochs": "many"},
    }


def _short_failure(result, named: str) -> str:
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert any(named in line for line in output.splitlines()), output
    assert len(output.splitlines()) < 15, output  # the message, not the schema and the config
    return output


@pytest.mark.parametrize("config, named", [
    ({"segmnet": {}}, "segmnet: unknown top-level key; did you mean segment? (the sections: "),
    ({"segment": {"tile_sise": 512}},
     "segment.tile_sise: unknown key; did you mean segment.tile_size? (segment's keys: model, "),
    ({"train": {"epochs": "many"}}, "train.epochs: must be a whole number, got 'many'"),
    ({"segment": {"images_per_chunk": 0}}, "segment.images_per_chunk: must be at least 1, got 0"),
])
def test_dry_run_names_each_mistake_in_one_line(tmp_path: Path, config, named):
    result = run_snakemake(tmp_path, config, "--dry-run", check=False)
    output = _short_failure(result, named)
    assert config_keys.WHERE_TO_LOOK in output
    assert not (tmp_path / "results").exists() and not (tmp_path / "resources").exists()


def test_empty_model_folder_is_one_line_at_parse_time(tmp_path: Path):
    (tmp_path / "model_from_elsewhere").mkdir()
    (tmp_path / "plate").mkdir()
    (tmp_path / "plate" / "a.tif").write_bytes(b"not read in a dry run")
    config = {"segment": {"model": str(tmp_path / "model_from_elsewhere")},
              "batches": {"plate": str(tmp_path / "plate")}}
    result = run_snakemake(tmp_path, config, "--dry-run", check=False)
    output = _short_failure(result, "segment.model: model folder")
    line = next(line for line in output.splitlines() if "segment.model: model folder" in line)
    assert all(name in line for name in ("config.json", "model.keras", "thresholds.json")), line
    assert "Traceback" not in output and "InputFunctionException" not in output, output


def test_dry_run_takes_a_mapping_given_with_config(tmp_path: Path):
    result = run_snakemake(tmp_path, {}, "--dry-run", "--config",
                           'segment={"images_per_chunk": 1, "save_probabilities": true}',
                           "train={learning_rate: 1e-3, augment: {scale: [0.8, 1.25]}}")
    assert "Error" not in result.stdout + result.stderr
    result = run_snakemake(tmp_path, {}, "--dry-run", "--config", "segment={images_per_chunk: 0}",
                           check=False)
    _short_failure(result, "segment.images_per_chunk: must be at least 1, got 0")


def test_dry_run_says_how_to_give_a_mapping_with_config(tmp_path: Path):
    result = run_snakemake(tmp_path, {}, "--dry-run", "--config", "segment=images_per_chunk:1",
                           check=False)
    _short_failure(result, "segment: must be a mapping of keys to values, got "
                           "'images_per_chunk:1'; on the command line write --config segment='{")
