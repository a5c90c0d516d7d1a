"""How a model is run on images: the settings of inference, shared by every stage that predicts.

Segmentation, threshold choice and evaluation run the model the same way, so that what is
evaluated is what users get; these settings are the config's `segment` keys that say how. The
Snakefile reads them at parse time, so this module uses the standard library only.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from numbers import Integral, Real

from .errors import ConfigError
from .modelconfig import DIVISOR


@dataclass(frozen=True)
class Tiling:
    """How an image is cut into overlapping tiles for the network (predict.predict_tiled)."""

    # Chosen with benchmarks/tiling.py on DSB2018 val images (2 CPU cores): most fit one 768
    # tile, so they are predicted exactly as untiled, and on larger images 768 tiles cost about
    # what 1024 tiles do (~1.2x untiled CPU time; 512: 1.3x, 256: 1.8x) for ~450 MB of
    # activations at 2 tiles per step instead of ~1.6 GB untiled on 2048 x 2048. Overlap 64:
    # tiled maps differ from untiled by 0.0006 on average at 512 tiles, far below the network's
    # own variability (mirroring the image: 0.004); more overlap bought little.
    tile_size: int = 768
    overlap: int = 64  # pixels shared by neighbouring tiles: the blending ramp's length
    tiles_per_step: int = 2  # tiles per network call; a GPU may want more

    def __post_init__(self):
        for key in TILING_KEYS:
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, Integral):
                raise ConfigError(f"segment.{key} must be a whole number, got {value!r}")
            object.__setattr__(self, key, int(value))
        if self.tile_size < 2 * DIVISOR or self.tile_size % DIVISOR:
            raise ConfigError(
                f"segment.tile_size must be a multiple of {DIVISOR} and at least {2 * DIVISOR} "
                f"(the network halves it five times), got {self.tile_size}"
            )
        # Whole multiples of 32 keep the tiles on the network's stride-2 phase; at most half a
        # tile so that a tile's two ramps (one per neighbour) do not overlap each other.
        if not 0 <= self.overlap <= self.tile_size // 2 or self.overlap % DIVISOR:
            raise ConfigError(
                f"segment.overlap must be a multiple of {DIVISOR} from 0 to half of "
                f"segment.tile_size ({self.tile_size // 2}), got {self.overlap}"
            )
        if self.tiles_per_step < 1:
            raise ConfigError(f"segment.tiles_per_step must be at least 1, got "
                              f"{self.tiles_per_step}")

    @classmethod
    def from_config(cls, section: dict) -> Tiling:
        """From the TILING_KEYS of the config's `segment` section (the rules pass just those)."""
        if not isinstance(section, dict):
            raise ConfigError(f"segment must be a mapping, got {type(section).__name__}")
        unknown = sorted(set(section) - set(TILING_KEYS))
        if unknown:
            raise ConfigError(f"segment: unknown tiling key(s) {unknown}; the keys are "
                              f"{list(TILING_KEYS)}")
        return cls(**section)

    @classmethod
    def single(cls, height: int, width: int) -> Tiling:
        """One tile covering a height x width image: untiled prediction."""
        side = max(height, width, 2 * DIVISOR)
        return cls(tile_size=side + (-side % DIVISOR), overlap=0, tiles_per_step=1)


# The config's `segment` keys that make a Tiling: the rules pass these on to every stage.
TILING_KEYS = tuple(f.name for f in fields(Tiling))

RESCALE_MODES = ("off", "auto", "search", "factor")
# The factors rescaling may use: past these, an estimate is more likely wrong than the image.
FACTOR_RANGE = (0.25, 4.0)


@dataclass(frozen=True)
class Rescaling:
    """How images are resized before the network: `off`, `auto` (nuclei into the training's
    middle half of diameters), `search` (each of scale.SEARCH_FACTORS tried, the pass whose
    nuclei the network is surest of kept) or `factor` (every image by `factor`; 2 doubles
    height and width)."""

    mode: str = "off"
    factor: float = 1.0

    def __post_init__(self):
        if self.mode not in RESCALE_MODES:
            raise ConfigError(f"segment.rescale must be one of {', '.join(RESCALE_MODES)}, got "
                              f"{self.mode!r}")
        if isinstance(self.factor, bool) or not isinstance(self.factor, Real) \
                or not FACTOR_RANGE[0] <= self.factor <= FACTOR_RANGE[1]:
            raise ConfigError(f"segment.rescale_factor must be a number from {FACTOR_RANGE[0]} "
                              f"to {FACTOR_RANGE[1]}, got {self.factor!r}")
        object.__setattr__(self, "factor", float(self.factor))

    @classmethod
    def from_config(cls, section: dict) -> Rescaling:
        """From the config's segment.rescale and segment.rescale_factor."""
        return cls(section.get("rescale", "off"), section.get("rescale_factor", 1.0))

    def __str__(self) -> str:
        return f"rescale {self.mode}" + (f" x{self.factor:g}" if self.mode == "factor" else "")


# The config's `segment` keys that make a Rescaling.
RESCALE_KEYS = ("rescale", "rescale_factor")


BACKENDS = ("auto", "tensorflow", "openvino")
PRECISIONS = ("auto", "float32", "bf16")


@dataclass(frozen=True)
class BackendChoice:
    """Which engine runs the network (backends.py) and in what arithmetic.

    backend auto: OpenVINO on a CPU, TensorFlow where TensorFlow sees a GPU; precision auto:
    bf16 where OpenVINO runs on a CPU that has it (benchmarks/backends.py), else float32.
    """

    backend: str = "auto"
    precision: str = "auto"

    def __post_init__(self):
        for key, allowed in (("backend", BACKENDS), ("precision", PRECISIONS)):
            if getattr(self, key) not in allowed:
                raise ConfigError(f"segment.{key} must be one of {', '.join(allowed)}, got "
                                  f"{getattr(self, key)!r}")

    @classmethod
    def from_config(cls, section: dict) -> BackendChoice:
        """From the config's segment.backend and segment.precision."""
        return cls(section.get("backend", "auto"), section.get("precision", "auto"))


# The config's `segment` keys that make a BackendChoice.
BACKEND_KEYS = ("backend", "precision")
