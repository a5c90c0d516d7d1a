"""The model's config.json: saved and loaded unchanged, checked on the way in, and mapped from the
workflow config (whose schema holds the defaults)."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from snakemake.utils import validate

from conftest import REPO
from nucleiseg.errors import ConfigError
from nucleiseg.modelconfig import (DIVISOR, FORMAT_VERSION, HEAD_MAPS, HEADS, ModelConfig, n_maps,
                                   training_settings)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
# Not the model's settings: where and how training runs, and how much validation it sees.
NOT_IN_MODEL = {"train.max_val_tiles", "train.threads", "train.require_gpu", "train.gpus",
                "train.mixed_precision"}
# Workflow key -> (ModelConfig field, a value other than the default, what the field then holds).
MAPPED = {
    "model.alpha": ("unet_alpha", 0.5, 0.5),
    "model.encoder_weights": ("unet_encoder_weights", "none", "none"),
    "model.decoder_filters": ("unet_decoder_filters", [32, 32, 16, 16, 8], (32, 32, 16, 16, 8)),
    "model.heads": ("heads", "mask", "mask"),
    "model.contour_width": ("contour_width", 3, 3),
    "prepare.normalize.p_low": ("norm_p_low", 2.5, 2.5),
    "prepare.normalize.p_high": ("norm_p_high", 99.0, 99.0),
    "train.patch_size": ("train_patch_size", 128, 128),
    "train.patches_per_step": ("train_patches_per_step", 4, 4),
    "train.epochs_frozen": ("train_epochs_frozen", 0, 0),
    "train.epochs": ("train_epochs", 5, 5),
    "train.steps_per_epoch": ("train_steps_per_epoch", 10, 10),
    "train.learning_rate": ("train_learning_rate", 0.01, 0.01),
    "train.finetune_learning_rate": ("train_finetune_learning_rate", 1e-4, 1e-4),
    "train.reduce_lr_patience": ("train_reduce_lr_patience", 2, 2),
    "train.decay_epochs": ("train_decay_epochs", 6, 6),
    "train.average_epochs": ("train_average_epochs", 5, 5),
    "train.touch_weight": ("train_touch_weight", 4, 4.0),
    "train.early_stopping_patience": ("train_early_stopping_patience", 4, 4),
    "train.max_minutes": ("train_max_minutes", 30, 30.0),
    "train.augment.flips": ("train_augment_flips", False, False),
    "train.augment.intensity": ("train_augment_intensity", False, False),
    "train.augment.colour": ("train_augment_colour", False, False),
    "train.augment.scale": ("train_augment_scale", [0.8, 1.25], (0.8, 1.25)),
    "train.augment.stain": ("train_augment_stain", True, True),
    "train.augment.grayscale": ("train_augment_grayscale", 0.2, 0.2),
    "train.augment.dim": ("train_augment_dim", 0.3, 0.3),
    "train.augment.lowres": ("train_augment_lowres", 0.25, 0.25),
    "train.seed": ("train_seed", 7, 7),
}


def workflow_defaults() -> dict:
    """The workflow config an empty config file gives: every default filled in by the schema."""
    config = {}
    validate(config, str(SCHEMA))
    return config


def with_key(config: dict, dotted: str, value) -> dict:
    """A copy of `config` with the dotted key set to `value`."""
    changed = copy.deepcopy(config)
    *sections, key = dotted.split(".")
    section = changed
    for name in sections:
        section = section[name]
    section[key] = value
    return changed


def dotted_keys(config: dict, prefix: str = "") -> set[str]:
    """Every setting of a workflow config, as dotted keys (train.augment.scale)."""
    keys = set()
    for name, value in config.items():
        path = prefix + name
        keys |= dotted_keys(value, path + ".") if isinstance(value, dict) else {path}
    return keys


def _write(path: Path, data: dict) -> Path:
    path.write_text(json.dumps(data))
    return path


@pytest.fixture
def saved(tmp_path) -> tuple[ModelConfig, Path]:
    """A config with a non-default value in every kind of field, saved as config.json."""
    config = ModelConfig(unet_alpha=0.35, unet_encoder_weights="none",
                         unet_decoder_filters=(16, 16, 8, 8, 8), heads="mask", norm_p_high=99.5,
                         train_patch_size=64, train_augment_flips=False,
                         train_augment_scale=(0.8, 1.25), train_max_minutes=12.5,
                         train_device="GPU", train_mixed_precision=True, split_sha256="ab" * 32)
    path = tmp_path / "config.json"
    config.save(path)
    return config, path


def test_saved_config_loads_equal(saved):
    config, path = saved
    loaded = ModelConfig.load(path)
    assert loaded == config  # tuples come back as tuples: (16, ...) != [16, ...]
    assert json.loads(path.read_text())["format_version"] == FORMAT_VERSION


def test_unknown_key_is_refused_naming_the_file_and_key(saved):
    config, path = saved
    _write(path, {**config.to_dict(), "unet_depth": 5})
    with pytest.raises(ConfigError) as caught:
        ModelConfig.load(path)
    assert str(path) in str(caught.value) and "unet_depth" in str(caught.value)


def test_other_format_version_is_refused_naming_the_file(saved):
    config, path = saved
    _write(path, {**config.to_dict(), "format_version": FORMAT_VERSION + 1})
    with pytest.raises(ConfigError) as caught:
        ModelConfig.load(path)
    assert str(path) in str(caught.value) and f"version {FORMAT_VERSION + 1}" in str(caught.value)


@pytest.mark.parametrize("text", ["", "{not json", "[1, 2"])
def test_unreadable_config_json_is_refused_naming_the_file(tmp_path, text):
    path = tmp_path / "config.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match="cannot read") as caught:
        ModelConfig.load(path)
    assert str(path) in str(caught.value)


def test_older_config_with_train_batch_size_loads_as_patches_per_step(saved):
    config, path = saved
    old = config.to_dict()
    del old["train_patches_per_step"]
    _write(path, {**old, "train_batch_size": 16})
    assert ModelConfig.load(path) == config.replace(train_patches_per_step=16)


@pytest.mark.parametrize("changes, key", [
    ({"unet_alpha": 0.6}, "model.alpha"),
    ({"heads": "both"}, "model.heads"),
    ({"train_patch_size": DIVISOR * 3 + 16}, "train.patch_size"),
    ({"train_augment_scale": (1.25, 0.8)}, "train.augment.scale"),
    ({"train_augment_scale": (0.0, 1.0)}, "train.augment.scale"),
    ({"train_augment_dim": 1.5}, "train.augment.dim"),
    ({"train_augment_lowres": -0.1}, "train.augment.lowres"),
])
def test_bad_values_are_refused_naming_the_config_key(saved, changes, key):
    config, path = saved
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        config.replace(**changes)
    _write(path, {**config.to_dict(), **changes})  # and from a file, which goes the same way
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        ModelConfig.load(path)


def test_patch_sizes_that_are_multiples_of_the_divisor_are_accepted():
    assert ModelConfig(train_patch_size=DIVISOR).train_patch_size == DIVISOR
    assert ModelConfig(train_patch_size=DIVISOR * 7).train_patch_size == DIVISOR * 7


def test_heads_and_their_maps_agree():
    assert HEADS == tuple(HEAD_MAPS)
    for heads in HEADS:
        assert n_maps(heads) == len(HEAD_MAPS[heads]) == ModelConfig(heads=heads).n_outputs
        assert HEAD_MAPS[heads][0] == "foreground"  # channel 0 is foreground for every head
    assert HEAD_MAPS["contour"] == ("foreground", "contour")
    with pytest.raises(ConfigError, match="model.heads"):
        n_maps("both")


def test_schema_defaults_give_the_default_model_config():
    assert ModelConfig.from_workflow_config(workflow_defaults()) == ModelConfig()


def test_every_model_key_of_the_schema_is_mapped_or_named_as_not_the_models():
    keys = {key for key in dotted_keys(workflow_defaults())
            if key.startswith(("model.", "train.", "prepare.normalize."))}
    assert keys == set(MAPPED) | NOT_IN_MODEL


@pytest.mark.parametrize("key", sorted(MAPPED))
def test_each_workflow_key_sets_its_field_only(key):
    field, value, expected = MAPPED[key]
    defaults = workflow_defaults()
    changed = with_key(defaults, key, value)
    validate(copy.deepcopy(changed), str(SCHEMA))  # a value the workflow accepts
    base = ModelConfig.from_workflow_config(defaults)
    assert getattr(base, field) != expected
    assert ModelConfig.from_workflow_config(changed) == base.replace(**{field: expected})


def test_training_settings_hold_the_model_sections_without_gpus():
    config = workflow_defaults()
    settings = training_settings(config)
    assert set(settings) == {"model", "train", "prepare"}
    assert settings["model"] == config["model"]
    assert settings["prepare"] == {"normalize": config["prepare"]["normalize"]}
    assert set(settings["train"]) == set(config["train"]) - {"gpus"}


@pytest.mark.parametrize("key, value, retrains", [
    ("train.gpus", 4, False),
    ("segment.tile_size", 512, False),
    ("prepare.threads", 1, False),
    ("model.alpha", 0.35, True),
    ("train.epochs", 3, True),
    ("train.augment.scale", [0.8, 1.25], True),
    ("prepare.normalize.p_high", 99.0, True),
])
def test_only_model_settings_change_training_settings(key, value, retrains):
    config = workflow_defaults()
    changed = with_key(config, key, value)
    assert (training_settings(changed) != training_settings(config)) == retrains
