"""The model's configuration: one flat record of every setting, saved as `config.json`.

Like StarDist's Config2D: `unet_*` for the network, `train_*` for training, `norm_*` and
`input_*` for what is done to pixels before the network. A model folder's config.json is enough to
rebuild the network and to prepare new images exactly as the training images were. Unknown keys
are an error, so a config.json from an incompatible version is refused, not half-read.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

from . import __version__
from .errors import ConfigError

ALPHAS = (0.35, 0.5, 0.75, 1.0, 1.3)
# The output maps of each head setting, in channel order: foreground, then nucleus contours.
HEAD_MAPS = {"mask": ("foreground",), "contour": ("foreground", "contour")}
HEADS = tuple(HEAD_MAPS)
DIVISOR = 32  # the encoder's five stride-2 steps: network inputs are multiples of this
DECAY_FLOOR = 0.01  # where train_decay_epochs' cosine ends, as a share of the fine-tuning rate
FORMAT_VERSION = 1  # bumped when config.json or the folder layout changes incompatibly
# config.json fields renamed since they were first written: read under their new names.
_RENAMED_FIELDS = {"train_batch_size": "train_patches_per_step"}
# Workflow config keys that say where training runs, not what it trains: no retrain.
_PLACEMENT_KEYS = {"train": ("gpus",)}


@dataclass(frozen=True)
class ModelConfig:
    # Network: MobileNetV2 encoder, U-Net decoder (filters per upsampling step, 1/16 .. 1/1).
    unet_alpha: float = 1.0
    unet_encoder_weights: str = "imagenet"  # imagenet | none | path to a no-top .h5 file
    unet_decoder_filters: tuple[int, ...] = (256, 128, 64, 32, 16)
    heads: str = "contour"  # mask: foreground only; contour: foreground + nucleus contours
    contour_width: int = 2
    # Pixels: percentile normalization (outside the network), then [0, 1] -> [-1, 1] inside it,
    # the range ImageNet MobileNetV2 was trained on; grayscale is repeated to three channels.
    norm_p_low: float = 1.0
    norm_p_high: float = 99.8
    input_channels: int = 3
    input_scale: float = 2.0
    input_offset: float = -1.0
    # Training.
    train_patch_size: int = 256
    train_patches_per_step: int = 8
    train_epochs_frozen: int = 2
    train_epochs: int = 40
    train_steps_per_epoch: int = 0  # 0: one pass over the training tiles
    train_learning_rate: float = 1e-3
    train_finetune_learning_rate: float = 3e-4
    train_reduce_lr_patience: int = 3
    train_decay_epochs: int = 0  # 0: constant fine-tuning rate, halved on plateaus; N: cosine decay
    train_average_epochs: int = 0  # 0: the best epoch's weights; N: the mean of the last N epochs'
    train_early_stopping_patience: int = 8
    train_max_minutes: float = 0.0  # 0: no time budget
    train_augment_flips: bool = True
    train_augment_intensity: bool = True
    train_augment_colour: bool = True
    train_augment_scale: tuple[float, float] = (1.0, 1.0)  # zoom range, log-uniform; (1, 1): off
    train_augment_stain: bool = False  # H&E stain jitter of stained tiles (in HED space)
    train_augment_grayscale: float = 0.0  # chance that a stained tile is shown in grayscale
    train_augment_dim: float = 0.0  # chance that a tile is dimmed to 10-50% of its range
    train_augment_lowres: float = 0.0  # chance that a tile is shrunk and enlarged back (blurred)
    # Extra weight of the contour loss on the band where two nuclei touch (targets.touch_map):
    # 0: every pixel alike; w: those pixels count 1 + w times.
    train_touch_weight: float = 0.0
    train_seed: int = 0
    # Provenance, filled in by training.
    train_device: str = ""
    train_mixed_precision: bool = False
    # The training tiles' median nucleus diameters (equivalent, px): lower quartile, median,
    # upper quartile (scale.training_diameters); segment.rescale auto brings images into that
    # range. Zeros: unknown (a model from before they were kept).
    train_nucleus_diameters: tuple[float, float, float] = (0.0, 0.0, 0.0)
    split_sha256: str = ""
    nucleiseg_version: str = __version__
    format_version: int = FORMAT_VERSION

    def __post_init__(self):
        if self.unet_alpha not in ALPHAS:
            raise ConfigError(f"model.alpha must be one of {ALPHAS}, got {self.unet_alpha}")
        check_heads(self.heads)
        if self.train_patch_size % DIVISOR:
            raise ConfigError(f"train.patch_size must be a multiple of {DIVISOR}, got "
                              f"{self.train_patch_size}")
        low, high = self.train_augment_scale
        if not 0 < low <= high:
            raise ConfigError(f"train.augment.scale must be [low, high] with 0 < low <= high, got {low, high}")
        if self.train_touch_weight < 0 or (self.train_touch_weight and self.heads != "contour"):
            raise ConfigError("train.touch_weight must be 0 or more, and weighs the contour head: "
                              f"it needs model.heads: contour (got {self.train_touch_weight} "
                              f"with heads {self.heads})")
        for name in ("grayscale", "dim", "lowres"):
            chance = getattr(self, f"train_augment_{name}")
            if not 0 <= chance <= 1:
                raise ConfigError(f"train.augment.{name} must be a chance from 0 to 1, got {chance}")

    @property
    def n_outputs(self) -> int:
        return n_maps(self.heads)

    def replace(self, **changes) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    def save(self, path: str | Path) -> None:
        from .io import write_json  # here, not at the top: the Snakefile reads configs at parse time

        write_json(self.to_dict(), path)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ModelConfig":
        """The config a config.json holds; any problem is a ConfigError naming `source`."""
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: a model config must be a JSON object, got "
                              f"{type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)} | set(_RENAMED_FIELDS)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"{source}: unknown model settings {unknown}; was it written by a newer nucleiseg?")
        both = [f"{old} and {new}" for old, new in _RENAMED_FIELDS.items()
                if old in data and new in data]
        if both:
            raise ConfigError(f"{source}: holds {', '.join(both)}, one setting under its old "
                              "and new name; keep the new one")
        version = data.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise ConfigError(
                f"{source}: model format version {version}, this nucleiseg reads version "
                f"{FORMAT_VERSION}; retrain the model or use a matching nucleiseg release"
            )
        data = {_RENAMED_FIELDS.get(key, key): value for key, value in data.items()}
        try:
            for key in ("unet_decoder_filters", "train_augment_scale", "train_nucleus_diameters"):
                if key in data:
                    data[key] = tuple(data[key])
            return cls(**data)
        except (ConfigError, TypeError, ValueError) as exc:
            raise ConfigError(f"{source}: {exc}") from None

    @classmethod
    def load(cls, path: str | Path) -> "ModelConfig":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{path}: cannot read the model's config.json ({exc})") from exc
        return cls.from_dict(data, source=str(path))

    @classmethod
    def from_workflow_config(cls, config: dict) -> "ModelConfig":
        """Map the workflow config's model/train/prepare sections onto the flat record."""
        model, train, norm = config["model"], config["train"], config["prepare"]["normalize"]
        augment = train["augment"]
        return cls(
            unet_alpha=float(model["alpha"]),
            unet_encoder_weights=str(model["encoder_weights"]),
            unet_decoder_filters=tuple(model["decoder_filters"]),
            heads=model["heads"],
            contour_width=int(model["contour_width"]),
            norm_p_low=float(norm["p_low"]),
            norm_p_high=float(norm["p_high"]),
            train_patch_size=int(train["patch_size"]),
            train_patches_per_step=int(train["patches_per_step"]),
            train_epochs_frozen=int(train["epochs_frozen"]),
            train_epochs=int(train["epochs"]),
            train_steps_per_epoch=int(train["steps_per_epoch"]),
            train_learning_rate=float(train["learning_rate"]),
            train_finetune_learning_rate=float(train["finetune_learning_rate"]),
            train_reduce_lr_patience=int(train["reduce_lr_patience"]),
            train_decay_epochs=int(train["decay_epochs"]),
            train_average_epochs=int(train["average_epochs"]),
            train_early_stopping_patience=int(train["early_stopping_patience"]),
            train_max_minutes=float(train["max_minutes"]),
            train_augment_flips=bool(augment["flips"]),
            train_augment_intensity=bool(augment["intensity"]),
            train_augment_colour=bool(augment["colour"]),
            train_augment_scale=tuple(float(v) for v in augment["scale"]),
            train_augment_stain=bool(augment["stain"]),
            train_augment_grayscale=float(augment["grayscale"]),
            train_augment_dim=float(augment["dim"]),
            train_augment_lowres=float(augment["lowres"]),
            train_touch_weight=float(train["touch_weight"]),
            train_seed=int(train["seed"]),
        )


def n_maps(heads: str) -> int:
    """How many probability maps the network outputs for a head setting."""
    check_heads(heads)
    return len(HEAD_MAPS[heads])


def check_heads(heads: str) -> None:
    if heads not in HEADS:
        raise ConfigError(f"model.heads must be one of {HEADS}, got {heads!r}")


def training_settings(config: dict) -> dict:
    """The workflow config's sections that decide the model: a change elsewhere does not retrain."""
    train = {k: v for k, v in config["train"].items() if k not in _PLACEMENT_KEYS["train"]}
    return {"model": config["model"], "train": train,
            "prepare": {"normalize": config["prepare"]["normalize"]}}
