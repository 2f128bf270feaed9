"""The class-conditional SAGAN/YLG generator and projection discriminator (spec section 1).

Layer names follow the original variable scopes (g_block1/snconv1, d_ops/sn_conv_theta, ...) so that the
original checkpoint maps onto them one to one (`ylg_tf.storage.original_checkpoint`).

At 128x128 the networks are exactly the original's. The 64x64 and 32x32 variants have fewer blocks:
  G 128: 4x4 -> blocks to 16,8,4,2,1 x gf (8..128), attention at 32x32 (after block 3)
  G  64: 4x4 -> blocks to 8,4,2,1 x gf (8..64), attention at 32x32 (after block 3)
  G  32: 4x4 -> blocks to 4,2,1 x gf (8..32), attention at 16x16 (after block 2)
  D 128: optimized block df (64), blocks 2,4,8,16 x df (32..4), flat block 16df; attention at 32x32
  D  64: optimized block df (32), blocks 2,4,8 x df (16..4), flat block 8df; attention at 32x32
  D  32: optimized block df (16), blocks 2,4 x df (8, 4), flat block 4df; attention at 8x8 (2df)
Those are the default places (`ModelConfig.*_attention_resolutions` = None). Any other feature-map sides
put one block after the network block whose output has that side (SAGAN's Table 1 "feat8" ... "feat64"):
an attention layer of the config's kind or, with attention_block="residual", a residual block of the same
width. The layer at the default place keeps the original's name (g_ops, d_ops); others are named by their
side (g_ops_64, d_residual_16, ...).
The discriminator's "features" (h1_, used by inversion) are the input of its (chosen) attention layer.

Every layer takes the network's dtype policy (`ModelConfig.precision`, through `dtype=`); the outputs (images,
logits, features) are float32 in every precision.
"""

import dataclasses

import tensorflow as tf
import tf_keras

from ylg_tf.attention.layers import LocalSparseAttention, SelfAttention
from ylg_tf.normalization.batch import ConditionalBatchNormalization
from ylg_tf.attention.block_sparse import BlockSparseLocalAttention
from ylg_tf.config import DEFAULT_ATTENTION_RESOLUTIONS, ORIGINAL_BATCH_NORM_DECAY, ModelConfig
from ylg_tf.normalization.spectral import SpectralConv2D, SpectralDense, SpectralEmbedding


@dataclasses.dataclass(frozen=True)
class Architecture:
    generator_initial_multiplier: int
    generator_multipliers: tuple  # output channels of each G block, in units of gf
    discriminator_multipliers: tuple  # optimized block, then downsampling blocks, in units of df


ARCHITECTURES = {
    128: Architecture(16, (16, 8, 4, 2, 1), (1, 2, 4, 8, 16)),
    64: Architecture(16, (8, 4, 2, 1), (1, 2, 4, 8)),
    32: Architecture(4, (4, 2, 1), (1, 2, 4)),
}


@dataclasses.dataclass(frozen=True)
class Placement:
    """One attention (or residual) block: after network block `after` (1-based), on `resolution` maps."""

    network: str
    resolution: int
    after: int
    multiplier: int  # its channels, in units of gf or df
    name: str


def placements(model_config, network):
    """The attention (or residual) blocks of `network` for the config, in network order; [] for none."""
    if not model_config.has_attention_blocks():
        return []
    architecture = ARCHITECTURES[model_config.image_size]
    result = []
    for resolution in model_config.attention_resolutions(network):
        if network == "generator":
            after = (resolution // 4).bit_length() - 1  # block i outputs 4 * 2^i
            multiplier = architecture.generator_multipliers[after - 1]
        else:
            after = (model_config.image_size // resolution).bit_length() - 1  # block i outputs S / 2^i
            multiplier = architecture.discriminator_multipliers[after - 1]
        prefix = "g" if network == "generator" else "d"
        if model_config.attention_block == "residual":
            name = f"{prefix}_residual_{resolution}"
        elif resolution == DEFAULT_ATTENTION_RESOLUTIONS[network][model_config.image_size]:
            name = f"{prefix}_ops"
        else:
            name = f"{prefix}_ops_{resolution}"
        result.append(Placement(network, resolution, after, multiplier, name))
    return result


def attention_heads(model_config, network):
    """Heads of `network`'s ("generator" or "discriminator") attention layer; 0 without attention."""
    kind = model_config.attention
    if kind == "none":
        return 0
    if kind == "sagan" or (kind == "sagan_8heads" and network == "discriminator"):
        return 1
    return 8


def check_attention_channels(model_config):
    """Fails early, naming the channel setting, when heads do not divide an attention layer's channels."""
    for network in ("generator", "discriminator"):
        heads = attention_heads(model_config, network)
        name = f"{network}_channels"
        value = getattr(model_config, name)
        for placement in placements(model_config, network):
            channels = placement.multiplier * value
            # Queries/keys have C/8 channels and values C/2, each split over the heads.
            if heads and channels % (8 * heads):
                raise ValueError(
                    f"{name}={value}: attention={model_config.attention!r} needs the {network}'s attention "
                    f"channels at {placement.resolution}x{placement.resolution} ({placement.multiplier} x "
                    f"{name} = {channels}) to be a multiple of {8 * heads}"
                )


def make_attention(model_config, network, u_update, name, spectral_normalization=True, dtype=None):
    """An attention layer of `network` ("generator" or "discriminator") for the config, or None; `dtype` is
    its Keras dtype policy (default the config's precision)."""
    dtype = model_config.precision if dtype is None else dtype
    heads = attention_heads(model_config, network)
    if not heads:
        return None
    if model_config.attention in ("sagan", "sagan_8heads"):
        return SelfAttention(
            num_heads=heads, u_update=u_update, spectral_normalization=spectral_normalization, name=name,
            dtype=dtype,
        )
    pattern = model_config.attention  # "ylg", "ylg_no_esa", "ylg_strided"
    layer_class = (
        BlockSparseLocalAttention if model_config.attention_implementation == "block_sparse" else LocalSparseAttention
    )
    return layer_class(
        pattern=pattern,
        geometry=model_config.attention_geometry,
        u_update=u_update,
        spectral_normalization=spectral_normalization,
        name=name,
        dtype=dtype,
    )


def upsample_nearest_2x(tensor):
    return tf.repeat(tf.repeat(tensor, 2, axis=1), 2, axis=2)


def downsample_average_2x(tensor):
    return tf.nn.avg_pool2d(tensor, ksize=2, strides=2, padding="VALID")


class GeneratorBlock(tf_keras.layers.Layer):
    """relu(CBN) -> up2 -> conv3x3 -> relu(CBN) -> conv3x3, plus conv1x1(up2(x)) shortcut.

    upsample=False is the residual block SAGAN compares attention with: the same without up2, and an
    identity shortcut (it keeps the input's width, `filters`). spectral_normalization=False leaves the
    kernels unnormalised.
    """

    def __init__(self, filters, num_classes, upsample=True, spectral_normalization=True,
                 batch_norm_decay=ORIGINAL_BATCH_NORM_DECAY, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_classes = num_classes
        self.upsample = bool(upsample)
        self.spectral_normalization = bool(spectral_normalization)
        self.batch_norm_decay = float(batch_norm_decay)
        convolution = dict(normalize=self.spectral_normalization, dtype=self.dtype_policy)
        normalization = dict(decay=self.batch_norm_decay, dtype=self.dtype_policy)
        self.cbn_0 = ConditionalBatchNormalization(num_classes, name="cbn_0", **normalization)
        self.cbn_1 = ConditionalBatchNormalization(num_classes, name="cbn_1", **normalization)
        self.snconv1 = SpectralConv2D(filters, 3, name="snconv1", **convolution)
        self.snconv2 = SpectralConv2D(filters, 3, name="snconv2", **convolution)
        self.snconv3 = SpectralConv2D(filters, 1, name="snconv3", **convolution) if self.upsample else None

    def build(self, input_shape):
        if not self.upsample and int(input_shape[-1]) != self.filters:
            raise ValueError(
                f"{self.name}: a block without upsampling keeps its width; input has {input_shape[-1]} "
                f"channels, filters={self.filters}"
            )
        super().build(input_shape)

    def call(self, inputs, labels, training=None):
        resize = upsample_nearest_2x if self.upsample else tf.identity
        hidden = tf.nn.relu(self.cbn_0(inputs, labels, training=training))
        hidden = self.snconv1(resize(hidden), training=training)
        hidden = tf.nn.relu(self.cbn_1(hidden, labels, training=training))
        hidden = self.snconv2(hidden, training=training)
        shortcut = self.snconv3(resize(inputs), training=training) if self.upsample else inputs
        return shortcut + hidden

    def get_config(self):
        config = super().get_config()
        config.update(
            filters=self.filters,
            num_classes=self.num_classes,
            upsample=self.upsample,
            spectral_normalization=self.spectral_normalization,
            batch_norm_decay=self.batch_norm_decay,
        )
        return config


class DiscriminatorBlock(tf_keras.layers.Layer):
    """Pre-activation block: relu, conv3x3, relu, conv3x3, [avgpool2]; conv1x1 [+ avgpool2] shortcut.

    optimized=True is the first block: no leading relu, and its shortcut pools before the 1x1 conv.
    The shortcut conv exists only when downsampling or changing the channel count.
    """

    def __init__(self, filters, downsample=True, optimized=False, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.downsample = downsample
        self.optimized = optimized
        # The original discriminator never receives a training flag: its u vectors update on every call.
        self.sn_conv1 = SpectralConv2D(filters, 3, u_update="always", name="sn_conv1", dtype=self.dtype_policy)
        self.sn_conv2 = SpectralConv2D(filters, 3, u_update="always", name="sn_conv2", dtype=self.dtype_policy)
        self.sn_conv3 = None

    def build(self, input_shape):
        if self.optimized or self.downsample or int(input_shape[-1]) != self.filters:
            self.sn_conv3 = SpectralConv2D(
                self.filters, 1, u_update="always", name="sn_conv3", dtype=self.dtype_policy)
        super().build(input_shape)

    def call(self, inputs):
        hidden = inputs if self.optimized else tf.nn.relu(inputs)
        hidden = self.sn_conv2(tf.nn.relu(self.sn_conv1(hidden)))
        if self.downsample:
            hidden = downsample_average_2x(hidden)
        shortcut = inputs
        if self.optimized:
            shortcut = self.sn_conv3(downsample_average_2x(inputs))
        elif self.sn_conv3 is not None:
            shortcut = self.sn_conv3(inputs)
            if self.downsample:
                shortcut = downsample_average_2x(shortcut)
        return shortcut + hidden

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, downsample=self.downsample, optimized=self.optimized)
        return config


class ConfiguredNetwork(tf_keras.Model):
    """A network built from a ModelConfig, serialisable through it, with blocks at its attention places."""

    network = None  # "generator" or "discriminator"

    def __init__(self, model_config: ModelConfig, **kwargs):
        kwargs.setdefault("name", self.network)
        kwargs.setdefault("dtype", model_config.precision)
        super().__init__(**kwargs)
        check_attention_channels(model_config)
        self.model_config = model_config

    def get_config(self):
        return {"model_config": dataclasses.asdict(self.model_config), "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ModelConfig(**config.pop("model_config")), **config)

    @property
    def placements(self):
        """The attention (or residual) blocks' `Placement`s, in network order."""
        return placements(self.model_config, self.network)

    @property
    def attention_layers(self):
        """{feature-map side: attention layer}, in network order ({} without attention layers)."""
        return {
            placement.resolution: getattr(self, placement.name)
            for placement in self.placements
            if self.model_config.attention_block == "attention"
        }

    def attention_resolution(self, resolution=None):
        """The side of the attention layer to read: `resolution` checked, or the default place's, or the first.

        Raises ValueError when the network has no attention layer or none on `resolution` maps.
        """
        layers = self.attention_layers
        if not layers:
            raise ValueError(
                f"the {self.network} has no attention layer (attention={self.model_config.attention!r}, "
                f"attention_block={self.model_config.attention_block!r})"
            )
        if resolution is None:
            default = DEFAULT_ATTENTION_RESOLUTIONS[self.network][self.model_config.image_size]
            return default if default in layers else next(iter(layers))
        if resolution not in layers:
            raise ValueError(
                f"the {self.network} has no attention layer on {resolution}x{resolution} maps; its attention "
                f"layers are on {', '.join(f'{side}x{side}' for side in layers)}"
            )
        return resolution

    def _place_blocks(self, make_block):
        """Creates the block of each placement as an attribute named like the block (g_ops, d_ops_64, ...)."""
        default_name = "g_ops" if self.network == "generator" else "d_ops"
        setattr(self, default_name, None)  # kept for the default place; None elsewhere
        for placement in self.placements:
            setattr(self, placement.name, make_block(placement))

    def _placed_after(self, block_index):
        """(placement, block) pairs that follow network block `block_index` (1-based)."""
        return [
            (placement, getattr(self, placement.name))
            for placement in self.placements
            if placement.after == block_index
        ]

    def _reading_resolution(self, attention_resolution):
        """The side at which features / attention are read; the default place for a model without attention."""
        if self.attention_layers or attention_resolution is not None:
            return self.attention_resolution(attention_resolution)
        return DEFAULT_ATTENTION_RESOLUTIONS[self.network][self.model_config.image_size]


class Generator(ConfiguredNetwork):
    """G(z, labels): `call((z [B, z_dim], labels [B]), training=None, return_attention=False)`.

    Returns images [B, S, S, 3] in [-1, 1], or (images, attention probabilities [B, heads, Nq, Nk]) when
    return_attention is True (None when the config has no attention). With several attention layers,
    `attention_resolution` (a feature-map side) picks the one returned; default the default place's.
    """

    network = "generator"

    def __init__(self, model_config: ModelConfig, **kwargs):
        super().__init__(model_config, **kwargs)
        architecture = ARCHITECTURES[model_config.image_size]
        gf = model_config.generator_channels
        normalize = model_config.generator_spectral_norm
        self.initial_channels = architecture.generator_initial_multiplier * gf
        policy = self.dtype_policy
        self.g_snh0 = SpectralDense(4 * 4 * self.initial_channels, normalize=normalize, name="g_snh0", dtype=policy)
        self.blocks = [
            GeneratorBlock(
                multiplier * gf, model_config.num_classes, spectral_normalization=normalize,
                batch_norm_decay=model_config.batch_norm_decay, name=f"g_block{index}", dtype=policy,
            )
            for index, multiplier in enumerate(architecture.generator_multipliers, start=1)
        ]

        def make_block(placement):
            if model_config.attention_block == "residual":
                return GeneratorBlock(
                    placement.multiplier * gf,
                    model_config.num_classes,
                    upsample=False,
                    spectral_normalization=normalize,
                    batch_norm_decay=model_config.batch_norm_decay,
                    name=placement.name,
                    dtype=policy,
                )
            return make_attention(model_config, "generator", "training", placement.name, normalize, policy)

        self._place_blocks(make_block)
        self.g_bn = ConditionalBatchNormalization(
            None, decay=model_config.batch_norm_decay, name="g_bn", dtype=policy)
        self.g_snconv_last = SpectralConv2D(3, 3, normalize=normalize, name="g_snconv_last", dtype=policy)

    def call(self, inputs, training=None, return_attention=False, attention_resolution=None):
        z, labels = inputs
        read = self._reading_resolution(attention_resolution) if return_attention else None
        hidden = self.g_snh0(z, training=training)
        hidden = tf.reshape(hidden, [-1, 4, 4, self.initial_channels])
        probabilities = None
        for index, block in enumerate(self.blocks, start=1):
            hidden = block(hidden, labels, training=training)
            for placement, layer in self._placed_after(index):
                if isinstance(layer, GeneratorBlock):
                    hidden = layer(hidden, labels, training=training)
                elif placement.resolution == read:
                    hidden, probabilities = layer(hidden, training=training, return_attention=True)
                else:
                    hidden = layer(hidden, training=training)
        hidden = tf.nn.relu(self.g_bn(hidden, training=training))
        images = tf.nn.tanh(tf.cast(self.g_snconv_last(hidden, training=training), tf.float32))
        if return_attention:
            return images, probabilities
        return images

    def build_for_config(self):
        """Creates every variable by running a batch of one."""
        z = tf.zeros([1, self.model_config.z_dim])
        self((z, tf.zeros([1], tf.int32)), training=False)
        return self


class Discriminator(ConfiguredNetwork):
    """D(x, labels): `call((images [B, S, S, 3], labels [B]), return_features=False, return_attention=False)`.

    Returns logits [B, 1]; with return_features / return_attention, a dict with "logits" and "features"
    (the attention layer's input, h1_ in the original) and/or "attention" ([B, heads, Nq, Nk]). With several
    attention layers, `attention_resolution` (a feature-map side) picks the layer both are read at; default
    the default place's. As in the original, every call updates the spectral-norm u vectors (there is no
    training mode).
    """

    network = "discriminator"

    def __init__(self, model_config: ModelConfig, **kwargs):
        super().__init__(model_config, **kwargs)
        architecture = ARCHITECTURES[model_config.image_size]
        df = model_config.discriminator_channels
        multipliers = architecture.discriminator_multipliers
        policy = self.dtype_policy
        self.blocks = [
            DiscriminatorBlock(multipliers[0] * df, optimized=True, name="d_optimized_block1", dtype=policy)]
        for index, multiplier in enumerate(multipliers[1:], start=2):
            self.blocks.append(DiscriminatorBlock(multiplier * df, name=f"d_block{index}", dtype=policy))
        final_channels = multipliers[-1] * df
        self.blocks.append(
            DiscriminatorBlock(final_channels, downsample=False, name=f"d_block{len(multipliers) + 1}", dtype=policy)
        )

        def make_block(placement):
            if model_config.attention_block == "residual":
                return DiscriminatorBlock(
                    placement.multiplier * df, downsample=False, name=placement.name, dtype=policy)
            return make_attention(model_config, "discriminator", "always", placement.name, dtype=policy)

        self._place_blocks(make_block)
        self.d_sn_linear = SpectralDense(1, u_update="always", name="d_sn_linear", dtype=policy)
        self.d_embedding = SpectralEmbedding(
            model_config.num_classes, final_channels, u_update="always", name="d_embedding", dtype=policy
        )

    def call(self, inputs, training=None, return_features=False, return_attention=False, attention_resolution=None):
        images, labels = inputs
        read = None
        if return_features or return_attention:
            read = self._reading_resolution(attention_resolution)
        hidden = images
        features = probabilities = None
        size = self.model_config.image_size
        for index, block in enumerate(self.blocks[:-1], start=1):
            hidden = block(hidden)
            if size // 2**index == read:
                features = hidden
            for placement, layer in self._placed_after(index):
                if isinstance(layer, DiscriminatorBlock):
                    hidden = layer(hidden)
                elif return_attention and placement.resolution == read:
                    hidden, probabilities = layer(hidden, training=training, return_attention=True)
                else:
                    hidden = layer(hidden, training=training)
        hidden = self.blocks[-1](hidden)
        pooled = tf.reduce_sum(tf.nn.relu(hidden), axis=[1, 2])  # [B, C]
        logits = self.d_sn_linear(pooled)
        logits += tf.reduce_sum(pooled * self.d_embedding(labels), axis=1, keepdims=True)
        logits = tf.cast(logits, tf.float32)
        if not (return_features or return_attention):
            return logits
        outputs = {"logits": logits}
        if return_features:
            outputs["features"] = tf.cast(features, tf.float32)
        if return_attention:
            outputs["attention"] = probabilities
        return outputs

    def build_for_config(self):
        size = self.model_config.image_size
        self((tf.zeros([1, size, size, 3]), tf.zeros([1], tf.int32)))
        return self


def build_networks(model_config: ModelConfig):
    """A generator and a discriminator with all variables created."""
    return Generator(model_config).build_for_config(), Discriminator(model_config).build_for_config()
