"""Typed, frozen experiment configuration and the named presets (one per paper row, plus small local ones).

A config is written to a work directory as JSON (`to_dict` / `from_dict`), so every tool can rebuild the
models from the work directory alone.
"""

import dataclasses
import json

ATTENTION_KINDS = ("sagan", "sagan_8heads", "ylg", "ylg_no_esa", "ylg_strided", "none")
ATTENTION_GEOMETRIES = ("original", "aligned")
ATTENTION_IMPLEMENTATIONS = ("dense", "block_sparse")
IMAGE_SIZES = (32, 64, 128)
# ModelConfig fields that change how the networks compute, not what: a work directory may switch them.
COMPUTATION_FIELDS = ("attention_implementation",)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The generator and discriminator.

    attention: "sagan" (1 head), "sagan_8heads" (G: 8 unmasked heads, D: 1 head, as the YLG train branch),
      "ylg" / "ylg_no_esa" / "ylg_strided" (8 masked heads in G and D), or "none".
    attention_geometry: how queries map onto the pooled key grid ("original" folding or "aligned").
    attention_implementation: how YLG attention is computed; both give the same outputs and gradients and
      load the same weights. "block_sparse" (default) scores only the keys each query may see, O(N sqrt N);
      "dense" builds the original's masked [heads, Nq, Nk] score matrix (the reference).
    """

    image_size: int = 128
    num_classes: int = 1000
    z_dim: int = 128
    generator_channels: int = 64
    discriminator_channels: int = 64
    attention: str = "ylg"
    attention_geometry: str = "original"
    attention_implementation: str = "block_sparse"

    def __post_init__(self):
        if self.image_size not in IMAGE_SIZES:
            raise ValueError(f"image_size={self.image_size!r} is not supported; choose one of {IMAGE_SIZES}")
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(f"attention={self.attention!r} is not one of {ATTENTION_KINDS}")
        if self.attention_geometry not in ATTENTION_GEOMETRIES:
            raise ValueError(
                f"attention_geometry={self.attention_geometry!r} is not one of {ATTENTION_GEOMETRIES}"
            )
        if self.attention_implementation not in ATTENTION_IMPLEMENTATIONS:
            raise ValueError(
                f"attention_implementation={self.attention_implementation!r} is not one of "
                f"{ATTENTION_IMPLEMENTATIONS}"
            )
        for name in ("num_classes", "z_dim", "generator_channels", "discriminator_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The optimisation recipe (paper: hinge loss, Adam(0, 0.999, 1e-8), TTUR 1e-4 / 4e-4, batch 256)."""

    batch_size: int = 256
    train_steps: int = 1_000_000
    generator_learning_rate: float = 1e-4
    discriminator_learning_rate: float = 4e-4
    beta_1: float = 0.0
    beta_2: float = 0.999
    epsilon: float = 1e-8
    steps_per_loop: int = 100
    checkpoint_every: int = 1000
    eval_every: int = 0
    eval_num_samples: int = 10_000
    generator_ema_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "train_steps", "steps_per_loop", "checkpoint_every"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
            if value >= 2**62:  # the step counter is an int64
                raise ValueError(f"{name}={value!r} is too large; it must be below 2**62")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer below 2**62")
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be 0 (off) or positive")
        if not 0.0 <= self.generator_ema_decay < 1.0:
            raise ValueError(f"generator_ema_decay={self.generator_ema_decay!r} must be in [0, 1)")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from (see `ylg_tf.datasets`)."""

    dataset: str = "imagenet2012"
    split: str = "train"
    eval_split: str = "validation"
    data_dir: str = ""


@dataclasses.dataclass(frozen=True)
class ExperimentConfig:
    model: ModelConfig = ModelConfig()
    training: TrainingConfig = TrainingConfig()
    data: DataConfig = DataConfig()

    def to_dict(self):
        return dataclasses.asdict(self)

    def to_json(self):
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values):
        known = {"model": ModelConfig, "training": TrainingConfig, "data": DataConfig}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(f"unknown config sections {unknown}; expected {sorted(known)}")
        return cls(**{name: section(**values.get(name, {})) for name, section in known.items()})

    def replace(self, **sections):
        """Returns a copy with fields replaced per section, e.g. replace(training={"batch_size": 8})."""
        updated = {}
        for section_name, changes in sections.items():
            section = getattr(self, section_name)
            updated[section_name] = dataclasses.replace(section, **changes)
        return dataclasses.replace(self, **updated)


def _paper(attention):
    """A row of YLG's Table 1: ImageNet 128x128, batch 256, 1M steps on a TPU v3-8."""
    return ExperimentConfig(model=ModelConfig(attention=attention))


def _cifar(attention):
    return ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=10, attention=attention),
        training=TrainingConfig(batch_size=64, train_steps=100_000),
        data=DataConfig(dataset="cifar10", split="train", eval_split="test"),
    )


PRESETS = {
    # Launch: python experiments/train.py --preset=sagan --tpu=NAME (reproduces SAGAN, FID 18.65 / IS 52.52).
    "sagan": _paper("sagan"),
    "sagan_8heads": _paper("sagan_8heads"),
    # Launch: python experiments/train.py --preset=ylg --tpu=NAME (reproduces YLG, FID 15.94 / IS 57.22).
    "ylg": _paper("ylg"),
    "ylg_no_esa": _paper("ylg_no_esa"),
    "ylg_strided": _paper("ylg_strided"),
    "sagan_cifar": _cifar("sagan"),
    "ylg_cifar": _cifar("ylg"),
    # The first run: built-in shapes dataset, 32x32, YLG attention, 1000 CPU steps in about four minutes.
    "demo": ExperimentConfig(
        model=ModelConfig(
            image_size=32, num_classes=10, generator_channels=32, discriminator_channels=32, attention="ylg"
        ),
        # Equal learning rates learn the shapes faster than the paper's 1:4 on a short CPU run.
        training=TrainingConfig(
            batch_size=16,
            train_steps=1000,
            generator_learning_rate=4e-4,
            discriminator_learning_rate=4e-4,
            steps_per_loop=100,
            checkpoint_every=500,
        ),
        data=DataConfig(dataset="builtin", split="train", eval_split="train"),
    ),
    # Tiny, for tests.
    "test": ExperimentConfig(
        model=ModelConfig(
            image_size=32, num_classes=10, generator_channels=32, discriminator_channels=32, attention="ylg"
        ),
        training=TrainingConfig(batch_size=4, train_steps=4, steps_per_loop=2, checkpoint_every=2),
        data=DataConfig(dataset="builtin", split="train", eval_split="train"),
    ),
}


def get_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
