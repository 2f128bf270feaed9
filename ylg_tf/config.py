"""Typed, frozen experiment configuration and the named presets (one per paper row, plus small local ones).

A config is written to a work directory as JSON (`to_dict` / `from_dict`), so every tool can rebuild the
models from the work directory alone.
"""

import dataclasses
import json
from typing import Optional, Tuple

ATTENTION_KINDS = ("sagan", "sagan_8heads", "ylg", "ylg_no_esa", "ylg_strided", "none")
ATTENTION_GEOMETRIES = ("original", "aligned")
ATTENTION_IMPLEMENTATIONS = ("dense", "block_sparse")
IMAGE_SIZES = (32, 64, 128)
ATTENTION_BLOCKS = ("attention", "residual")
# Keras mixed-precision policies the networks can compute in; variables are float32 in all of them.
PRECISIONS = ("float32", "mixed_bfloat16", "mixed_float16")
NETWORKS = ("generator", "discriminator")
# Where the original puts its one attention layer: the feature-map side at its input, per image size.
DEFAULT_ATTENTION_RESOLUTIONS = {
    "generator": {128: 32, 64: 32, 32: 16},
    "discriminator": {128: 32, 64: 32, 32: 8},
}
# The decay of the original generator's batch-norm moving averages (TF-GAN's tpu.batch_norm).
ORIGINAL_BATCH_NORM_DECAY = 0.999
# The evaluation protocols' names; ylg_tf.evaluation.protocols defines them (and checks it has these).
EVALUATION_PROTOCOLS = ("standard", "ylg")
# ModelConfig fields that change how the networks compute, not what: a work directory may switch them.
COMPUTATION_FIELDS = ("attention_implementation", "precision")


def model_differences(first, second):
    """(field name, first's value, second's value) for each ModelConfig field where the two models differ,
    the computation fields aside (they change how the networks compute, not what)."""
    return [
        (field.name, getattr(first, field.name), getattr(second, field.name))
        for field in dataclasses.fields(first)
        if field.name not in COMPUTATION_FIELDS and getattr(first, field.name) != getattr(second, field.name)
    ]


def feature_map_sizes(image_size, network):
    """The feature-map sides where `network` can take an attention (or residual) block, smallest first.

    The generator's blocks double a 4x4 map up to the image size (8, 16, ..., image_size); the
    discriminator's halve the image down to 4x4 (image_size / 2, ..., 4).
    """
    sizes = []
    size = 8 if network == "generator" else 4
    limit = image_size if network == "generator" else image_size // 2
    while size <= limit:
        sizes.append(size)
        size *= 2
    return tuple(sizes)


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """The generator and discriminator.

    attention: "sagan" (1 head), "sagan_8heads" (G: 8 unmasked heads, D: 1 head, as the YLG train branch),
      "ylg" / "ylg_no_esa" / "ylg_strided" (8 masked heads in G and D), or "none".
    attention_geometry: how queries map onto the pooled key grid ("original" folding or "aligned").
    attention_implementation: how YLG attention is computed; both give the same outputs and gradients and
      load the same weights. "block_sparse" (default) scores only the keys each query may see, O(N sqrt N);
      "dense" builds the original's masked [heads, Nq, Nk] score matrix (the reference).
    generator_attention_resolutions / discriminator_attention_resolutions: the feature-map sides (e.g.
      (32,) or (16, 64)) after which each network gets one block, as SAGAN's Table 1 ("feat32" = the 32x32
      maps). None (default) is the original's one place: 32x32 at image sizes 64 and 128; G 16x16 and D 8x8
      at 32. `feature_map_sizes` lists the sides each network has.
    attention_block: what sits at those places: "attention" (a layer of the `attention` kind) or
      "residual" (a residual block of the same width, SAGAN's Table 1 comparison; needs attention="none").
    generator_spectral_norm: False trains G without spectral norm (SAGAN's "SN on D only" baseline).
    batch_norm_decay: the decay of G's batch-norm moving averages, which G uses in inference mode (samples,
      evaluation, export). 0.999 (the original's) averages over the last ~1000 steps and, starting from mean 0
      and variance 1 without debiasing, is 63% of the way to the real statistics at step 1000: right for
      runs of 1M steps, blurry for runs of a thousand. Short runs use less (the demo 0.9).
    precision: the Keras mixed-precision policy of G and D. "float32" (default, the reference and every
      preset's); "mixed_bfloat16" (TPUs; convolutions and matmuls in bfloat16); "mixed_float16" (GPUs, with
      dynamic loss scaling). Variables stay float32, and so do the spectral-norm power iteration, the
      attention softmax with its mask bias, batch normalisation and the losses. A work directory may switch it.
    """

    image_size: int = 128
    num_classes: int = 1000
    z_dim: int = 128
    generator_channels: int = 64
    discriminator_channels: int = 64
    attention: str = "ylg"
    attention_geometry: str = "original"
    attention_implementation: str = "block_sparse"
    generator_attention_resolutions: Optional[Tuple[int, ...]] = None
    discriminator_attention_resolutions: Optional[Tuple[int, ...]] = None
    attention_block: str = "attention"
    generator_spectral_norm: bool = True
    batch_norm_decay: float = ORIGINAL_BATCH_NORM_DECAY
    precision: str = "float32"

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
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision={self.precision!r} is not one of {PRECISIONS}")
        for name in ("num_classes", "z_dim", "generator_channels", "discriminator_channels"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if self.attention_block not in ATTENTION_BLOCKS:
            raise ValueError(f"attention_block={self.attention_block!r} is not one of {ATTENTION_BLOCKS}")
        if self.attention_block == "residual" and self.attention != "none":
            raise ValueError(
                f"attention_block='residual' puts residual blocks where the attention layers would be; "
                f"it needs attention='none', got attention={self.attention!r}"
            )
        if not isinstance(self.batch_norm_decay, (int, float)) or not 0.0 <= self.batch_norm_decay < 1.0:
            raise ValueError(f"batch_norm_decay={self.batch_norm_decay!r} must be in [0, 1)")
        if not isinstance(self.generator_spectral_norm, bool):
            raise ValueError(f"generator_spectral_norm={self.generator_spectral_norm!r} must be true or false")
        for network in NETWORKS:
            name = f"{network}_attention_resolutions"
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, list):  # as read back from config.json
                value = tuple(value)
                object.__setattr__(self, name, value)
            allowed = feature_map_sizes(self.image_size, network)
            if not isinstance(value, tuple) or not value:
                raise ValueError(
                    f"{name}={value!r} must name one or more feature-map sizes of the {network} at "
                    f"image_size={self.image_size}: {allowed}"
                )
            bad = [size for size in value if size not in allowed]
            if bad:
                raise ValueError(
                    f"{name}={value!r}: the {network} at image_size={self.image_size} has no "
                    f"{bad[0]}x{bad[0]} feature map; choose from {allowed}"
                )
            if len(set(value)) != len(value):
                raise ValueError(f"{name}={value!r} names a feature-map size twice")

    def attention_resolutions(self, network):
        """The feature-map sides of `network`'s attention (or residual) blocks, in network order."""
        value = getattr(self, f"{network}_attention_resolutions")
        if value is None:
            return (DEFAULT_ATTENTION_RESOLUTIONS[network][self.image_size],)
        # The generator's maps grow and the discriminator's shrink along the network.
        return tuple(sorted(value, reverse=network == "discriminator"))

    def has_attention_blocks(self):
        """Whether the networks get anything at the attention places (a layer or a residual block)."""
        return self.attention != "none" or self.attention_block == "residual"


@dataclasses.dataclass(frozen=True)
class TrainingConfig:
    """The optimisation recipe (paper: hinge loss, Adam(0, 0.999, 1e-8), TTUR 1e-4 / 4e-4, batch 256).

    discriminator_steps: D updates per G update (one training step), each on its own real batch.
    steps_per_loop, checkpoint_every, eval_every: the intervals of a run's schedule
    (`ylg_tf.training.schedule`; each also acts at train_steps).
    eval_num_samples: images scored by each periodic evaluation.
    eval_protocol: how periodic evaluation measures (`ylg_tf.evaluation.protocols`: the real images' split
      and the resize to 299; a sample count other than the protocol's is recorded as not comparable).
    learning_rate_decay_steps: over the run's last this many steps both learning rates fall linearly towards
      zero (`ylg_tf.training.learning_rates`); 0 keeps them constant (the paper's).
    """

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
    eval_protocol: str = "standard"
    generator_ema_decay: float = 0.0
    discriminator_steps: int = 1
    learning_rate_decay_steps: int = 0
    seed: int = 0

    def __post_init__(self):
        for name in ("batch_size", "train_steps", "steps_per_loop", "checkpoint_every", "discriminator_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
            if value >= 2**62:  # the step counter is an int64
                raise ValueError(f"{name}={value!r} is too large; it must be below 2**62")
        if not isinstance(self.seed, int) or not 0 <= self.seed < 2**62:
            raise ValueError(f"seed={self.seed!r} must be a non-negative integer below 2**62")
        if self.eval_every < 0:
            raise ValueError(f"eval_every={self.eval_every!r} must be 0 (off) or positive")
        if self.eval_protocol not in EVALUATION_PROTOCOLS:
            raise ValueError(f"eval_protocol={self.eval_protocol!r} is not one of {EVALUATION_PROTOCOLS}")
        if not 0.0 <= self.generator_ema_decay < 1.0:
            raise ValueError(f"generator_ema_decay={self.generator_ema_decay!r} must be in [0, 1)")
        decay_steps = self.learning_rate_decay_steps
        if not isinstance(decay_steps, int) or not 0 <= decay_steps <= self.train_steps:
            raise ValueError(
                f"learning_rate_decay_steps={decay_steps!r} must be an integer from 0 (constant rates) to "
                f"train_steps={self.train_steps}")


@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Where training images come from (see `ylg_tf.data.datasets`)."""

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


# YLG's rows are scored as the YLG code scored them: 32,768 samples, the legacy resize (protocol "ylg"),
# every 1000 steps (the YLG code's cadence; on a TPU v3-8 an evaluation costs about as much as ~100 steps).
YLG_EVAL_EVERY = 1000
_YLG_TRAINING = TrainingConfig(eval_every=YLG_EVAL_EVERY, eval_protocol="ylg", eval_num_samples=32_768)


def _paper(attention):
    """A row of YLG's Table 1: ImageNet 128x128, batch 256, 1M steps on a TPU v3-8, evaluated every
    YLG_EVAL_EVERY steps with the YLG code's protocol (the best checkpoint by FID kept)."""
    return ExperimentConfig(model=ModelConfig(attention=attention), training=_YLG_TRAINING)


def _cifar(attention):
    return ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=10, attention=attention),
        training=TrainingConfig(batch_size=64, train_steps=100_000),
        data=DataConfig(dataset="cifar10", split="train", eval_split="test"),
    )


# SAGAN's own experiments (Zhang et al., arXiv 1805.08318). Its Section 5 recipe: ImageNet 128x128, hinge
# loss, Adam beta1 0 and beta2 0.9, TTUR (G 1e-4, D 4e-4), one D update per G update, batch 256. (The YLG
# code, which the sagan/ylg presets follow, uses beta2 0.999.) SAGAN scores 50k samples (protocol
# "standard"); its presets do so every SAGAN_EVAL_EVERY steps, 200 points over the 1M steps.
SAGAN_EVAL_EVERY = 5000
_SAGAN_PAPER_TRAINING = TrainingConfig(
    beta_2=0.9, eval_every=SAGAN_EVAL_EVERY, eval_protocol="standard", eval_num_samples=50_000)


def _sagan_paper(attention="sagan", block="attention", resolution=None, image_size=128, **model):
    """A row of SAGAN's Table 1: one block at the `resolution`x`resolution` maps of G and of D."""
    resolutions = None if resolution is None else (resolution,)
    model = ModelConfig(
        image_size=image_size,
        attention=attention,
        attention_block=block,
        generator_attention_resolutions=resolutions,
        discriminator_attention_resolutions=resolutions,
        **model,
    )
    if image_size == 128:
        return ExperimentConfig(model=model, training=_SAGAN_PAPER_TRAINING)
    cifar = _cifar(attention)
    return dataclasses.replace(
        cifar,
        model=dataclasses.replace(model, num_classes=10),
        training=dataclasses.replace(cifar.training, beta_2=0.9),
    )


def _sagan_stabilisation(generator_spectral_norm, discriminator_learning_rate, image_size=128):
    """A model of SAGAN's Figure 3 (Section 5.1): the SN-GAN projection baseline without attention, 1:1 updates."""
    config = _sagan_paper(attention="none", image_size=image_size, generator_spectral_norm=generator_spectral_norm)
    return config.replace(
        training={"generator_learning_rate": 1e-4, "discriminator_learning_rate": discriminator_learning_rate}
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
    # SAGAN's Table 1: self-attention at the 8x8 ... 64x64 maps of G and D (SAGAN reports feat32/feat64 best).
    "sagan_feat8": _sagan_paper(resolution=8),
    "sagan_feat16": _sagan_paper(resolution=16),
    "sagan_feat32": _sagan_paper(resolution=32),
    "sagan_feat64": _sagan_paper(resolution=64),
    # SAGAN's Table 1: a residual block of the same width in place of the attention (SAGAN: attention wins).
    "residual_feat8": _sagan_paper(attention="none", block="residual", resolution=8),
    "residual_feat16": _sagan_paper(attention="none", block="residual", resolution=16),
    "residual_feat32": _sagan_paper(attention="none", block="residual", resolution=32),
    "residual_feat64": _sagan_paper(attention="none", block="residual", resolution=64),
    # SAGAN's Figure 3: SN on D only (SN-GAN projection), SN on G and D, SN on G and D + TTUR.
    "sngan_baseline": _sagan_stabilisation(generator_spectral_norm=False, discriminator_learning_rate=1e-4),
    "sagan_sn_gd": _sagan_stabilisation(generator_spectral_norm=True, discriminator_learning_rate=1e-4),
    "sagan_sn_gd_ttur": _sagan_stabilisation(generator_spectral_norm=True, discriminator_learning_rate=4e-4),
    # YLG's attention on G's 64x64 maps (4096 queries x 1024 keys per head, practical only block-sparse);
    # D keeps the original's 32x32 place, so the model also runs at half width (D's 64x64 maps have df
    # channels, too few for 8 heads below df=64). The YLG recipe otherwise; no published result.
    "ylg_feat64": ExperimentConfig(
        model=ModelConfig(attention="ylg", generator_attention_resolutions=(64,)), training=_YLG_TRAINING
    ),
    # The same rows at 32x32 on CIFAR-10, where the maps exist in both networks (G 8..32, D 4..16).
    "sagan_cifar_feat8": _sagan_paper(resolution=8, image_size=32),
    "sagan_cifar_feat16": _sagan_paper(resolution=16, image_size=32),
    "residual_cifar_feat8": _sagan_paper(attention="none", block="residual", resolution=8, image_size=32),
    "residual_cifar_feat16": _sagan_paper(attention="none", block="residual", resolution=16, image_size=32),
    "sngan_baseline_cifar": _sagan_stabilisation(False, 1e-4, image_size=32),
    # The first run: built-in shapes dataset, 32x32, YLG attention, 1000 CPU steps in 4 to 5 minutes.
    # Tuned for a short CPU run (benchmarks/demo_quality.py): equal learning rates (the paper's 1:4 learns the
    # shapes more slowly) and G's batch norm averaging over ~10 steps instead of ~1000, so that the samples
    # (G in inference mode) follow the last steps.
    "demo": ExperimentConfig(
        model=ModelConfig(
            image_size=32, num_classes=10, generator_channels=32, discriminator_channels=32, attention="ylg",
            batch_norm_decay=0.9,
        ),
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


# One line per preset, for `python experiments/train.py --list_presets`.
PRESET_DESCRIPTIONS = {
    "sagan": "YLG Table 1 'SAGAN': ImageNet 128x128, one attention head at the 32x32 maps, batch 256, 1M steps",
    "sagan_8heads": "the YLG code's 8-head SAGAN: G 8 unmasked heads, D 1 head; otherwise as sagan",
    "ylg": "YLG Table 1 'YLG': 8 heads, local sparse masks over the ESA order, ImageNet 128x128, 1M steps",
    "ylg_no_esa": "YLG ablation: the masks over the pixels in raster order instead of ESA",
    "ylg_strided": "YLG ablation: strided masks instead of the local sparse ones",
    "sagan_cifar": "sagan at 32x32 on CIFAR-10, batch 64, 100k steps",
    "ylg_cifar": "ylg at 32x32 on CIFAR-10, batch 64, 100k steps",
    "sagan_feat8": "SAGAN Table 1: self-attention at the 8x8 maps of G and D (beta2 0.9)",
    "sagan_feat16": "SAGAN Table 1: self-attention at the 16x16 maps of G and D (beta2 0.9)",
    "sagan_feat32": "SAGAN Table 1: self-attention at the 32x32 maps of G and D (beta2 0.9)",
    "sagan_feat64": "SAGAN Table 1: self-attention at the 64x64 maps of G and D (beta2 0.9)",
    "residual_feat8": "SAGAN Table 1: a residual block instead of the attention at the 8x8 maps",
    "residual_feat16": "SAGAN Table 1: a residual block instead of the attention at the 16x16 maps",
    "residual_feat32": "SAGAN Table 1: a residual block instead of the attention at the 32x32 maps",
    "residual_feat64": "SAGAN Table 1: a residual block instead of the attention at the 64x64 maps",
    "sngan_baseline": "SAGAN Figure 3 'SN on D': no attention, spectral norm in D only, 1e-4 / 1e-4",
    "sagan_sn_gd": "SAGAN Figure 3 'SN on G/D': no attention, spectral norm in G and D, 1e-4 / 1e-4",
    "sagan_sn_gd_ttur": "SAGAN Figure 3 'SN on G/D + TTUR': as sagan_sn_gd with 1e-4 / 4e-4",
    "ylg_feat64": "YLG attention on G's 64x64 maps (block-sparse), D at 32x32; no published result",
    "sagan_cifar_feat8": "sagan_feat8 at 32x32 on CIFAR-10",
    "sagan_cifar_feat16": "sagan_feat16 at 32x32 on CIFAR-10",
    "residual_cifar_feat8": "residual_feat8 at 32x32 on CIFAR-10",
    "residual_cifar_feat16": "residual_feat16 at 32x32 on CIFAR-10",
    "sngan_baseline_cifar": "sngan_baseline at 32x32 on CIFAR-10",
    "demo": "the first run (the default): built-in shapes, 32x32 YLG, 1000 CPU steps in 4 to 5 minutes, offline",
    "test": "tiny, for tests: built-in shapes, 32x32 YLG, batch 4, 4 steps",
}
if set(PRESET_DESCRIPTIONS) != set(PRESETS):  # a preset without its line, or a line without its preset
    raise AssertionError(f"PRESET_DESCRIPTIONS and PRESETS differ: {set(PRESET_DESCRIPTIONS) ^ set(PRESETS)}")


def get_preset(name):
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}")
    return PRESETS[name]
