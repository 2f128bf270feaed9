"""The class-conditional SAGAN/YLG generator and projection discriminator (spec section 1).

Layer names follow the original variable scopes (g_block1/snconv1, d_ops/sn_conv_theta, ...) so that the
original checkpoint maps onto them one to one (`ylg_tf.original_checkpoint`).

At 128x128 the networks are exactly the original's. The 64x64 and 32x32 variants have fewer blocks:
  G 128: 4x4 -> blocks to 16,8,4,2,1 x gf (8..128), attention at 32x32 (after block 3)
  G  64: 4x4 -> blocks to 8,4,2,1 x gf (8..64), attention at 32x32 (after block 3)
  G  32: 4x4 -> blocks to 4,2,1 x gf (8..32), attention at 16x16 (after block 2)
  D 128: optimized block df (64), blocks 2,4,8,16 x df (32..4), flat block 16df; attention at 32x32
  D  64: optimized block df (32), blocks 2,4,8 x df (16..4), flat block 8df; attention at 32x32
  D  32: optimized block df (16), blocks 2,4 x df (8, 4), flat block 4df; attention at 8x8 (2df)
The discriminator's "features" (h1_, used by inversion) are the input of its attention layer.
"""

import dataclasses

import tensorflow as tf
import tf_keras

from ylg_tf.attention import LocalSparseAttention, SelfAttention
from ylg_tf.batch_normalization import ConditionalBatchNormalization
from ylg_tf.block_sparse_attention import BlockSparseLocalAttention
from ylg_tf.config import ModelConfig
from ylg_tf.spectral_normalization import SpectralConv2D, SpectralDense, SpectralEmbedding


@dataclasses.dataclass(frozen=True)
class Architecture:
    generator_initial_multiplier: int
    generator_multipliers: tuple  # output channels of each G block, in units of gf
    generator_attention_after: int  # attention follows this (1-based) G block
    discriminator_multipliers: tuple  # optimized block, then downsampling blocks, in units of df
    discriminator_attention_after: int  # attention follows this (1-based) D block


ARCHITECTURES = {
    128: Architecture(16, (16, 8, 4, 2, 1), 3, (1, 2, 4, 8, 16), 2),
    64: Architecture(16, (8, 4, 2, 1), 3, (1, 2, 4, 8), 1),
    32: Architecture(4, (4, 2, 1), 2, (1, 2, 4), 2),
}


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
    architecture = ARCHITECTURES[model_config.image_size]
    layers = {
        "generator": (
            architecture.generator_multipliers[architecture.generator_attention_after - 1],
            "generator_channels",
            model_config.generator_channels,
        ),
        "discriminator": (
            architecture.discriminator_multipliers[architecture.discriminator_attention_after - 1],
            "discriminator_channels",
            model_config.discriminator_channels,
        ),
    }
    for network, (multiplier, name, value) in layers.items():
        heads = attention_heads(model_config, network)
        channels = multiplier * value
        # Queries/keys have C/8 channels and values C/2, each split over the heads.
        if heads and channels % (8 * heads):
            raise ValueError(
                f"{name}={value}: attention={model_config.attention!r} needs the {network}'s attention "
                f"channels ({multiplier} x {name} = {channels}) to be a multiple of {8 * heads}"
            )


def make_attention(model_config, network, u_update, name):
    """The attention layer of `network` ("generator" or "discriminator") for the config, or None."""
    heads = attention_heads(model_config, network)
    if not heads:
        return None
    if model_config.attention in ("sagan", "sagan_8heads"):
        return SelfAttention(num_heads=heads, u_update=u_update, name=name)
    pattern = model_config.attention  # "ylg", "ylg_no_esa", "ylg_strided"
    layer_class = (
        BlockSparseLocalAttention if model_config.attention_implementation == "block_sparse" else LocalSparseAttention
    )
    return layer_class(pattern=pattern, geometry=model_config.attention_geometry, u_update=u_update, name=name)


def upsample_nearest_2x(tensor):
    return tf.repeat(tf.repeat(tensor, 2, axis=1), 2, axis=2)


def downsample_average_2x(tensor):
    return tf.nn.avg_pool2d(tensor, ksize=2, strides=2, padding="VALID")


class GeneratorBlock(tf_keras.layers.Layer):
    """relu(CBN) -> up2 -> conv3x3 -> relu(CBN) -> conv3x3, plus conv1x1(up2(x)) shortcut."""

    def __init__(self, filters, num_classes, **kwargs):
        super().__init__(**kwargs)
        self.filters = filters
        self.num_classes = num_classes
        self.cbn_0 = ConditionalBatchNormalization(num_classes, name="cbn_0")
        self.cbn_1 = ConditionalBatchNormalization(num_classes, name="cbn_1")
        self.snconv1 = SpectralConv2D(filters, 3, name="snconv1")
        self.snconv2 = SpectralConv2D(filters, 3, name="snconv2")
        self.snconv3 = SpectralConv2D(filters, 1, name="snconv3")

    def call(self, inputs, labels, training=None):
        hidden = tf.nn.relu(self.cbn_0(inputs, labels, training=training))
        hidden = self.snconv1(upsample_nearest_2x(hidden), training=training)
        hidden = tf.nn.relu(self.cbn_1(hidden, labels, training=training))
        hidden = self.snconv2(hidden, training=training)
        shortcut = self.snconv3(upsample_nearest_2x(inputs), training=training)
        return shortcut + hidden

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, num_classes=self.num_classes)
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
        self.sn_conv1 = SpectralConv2D(filters, 3, u_update="always", name="sn_conv1")
        self.sn_conv2 = SpectralConv2D(filters, 3, u_update="always", name="sn_conv2")
        self.sn_conv3 = None

    def build(self, input_shape):
        if self.optimized or self.downsample or int(input_shape[-1]) != self.filters:
            self.sn_conv3 = SpectralConv2D(self.filters, 1, u_update="always", name="sn_conv3")
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
    """A network built from a ModelConfig, serialisable through it."""

    def get_config(self):
        return {"model_config": dataclasses.asdict(self.model_config), "name": self.name}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        return cls(ModelConfig(**config.pop("model_config")), **config)


class Generator(ConfiguredNetwork):
    """G(z, labels): `call((z [B, z_dim], labels [B]), training=None, return_attention=False)`.

    Returns images [B, S, S, 3] in [-1, 1], or (images, attention probabilities [B, heads, Nq, Nk]) when
    return_attention is True (None when the config has no attention).
    """

    def __init__(self, model_config: ModelConfig, **kwargs):
        kwargs.setdefault("name", "generator")
        super().__init__(**kwargs)
        check_attention_channels(model_config)
        self.model_config = model_config
        architecture = ARCHITECTURES[model_config.image_size]
        gf = model_config.generator_channels
        self.initial_channels = architecture.generator_initial_multiplier * gf
        self.attention_after = architecture.generator_attention_after
        self.g_snh0 = SpectralDense(4 * 4 * self.initial_channels, name="g_snh0")
        self.blocks = [
            GeneratorBlock(multiplier * gf, model_config.num_classes, name=f"g_block{index}")
            for index, multiplier in enumerate(architecture.generator_multipliers, start=1)
        ]
        self.g_ops = make_attention(model_config, "generator", "training", "g_ops")
        self.g_bn = ConditionalBatchNormalization(None, name="g_bn")
        self.g_snconv_last = SpectralConv2D(3, 3, name="g_snconv_last")

    def call(self, inputs, training=None, return_attention=False):
        z, labels = inputs
        hidden = self.g_snh0(z, training=training)
        hidden = tf.reshape(hidden, [-1, 4, 4, self.initial_channels])
        probabilities = None
        for index, block in enumerate(self.blocks, start=1):
            hidden = block(hidden, labels, training=training)
            if index == self.attention_after and self.g_ops is not None:
                if return_attention:
                    hidden, probabilities = self.g_ops(hidden, training=training, return_attention=True)
                else:
                    hidden = self.g_ops(hidden, training=training)
        hidden = tf.nn.relu(self.g_bn(hidden, training=training))
        images = tf.nn.tanh(self.g_snconv_last(hidden, training=training))
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
    (the attention layer's input, h1_ in the original) and/or "attention" ([B, heads, Nq, Nk]).
    As in the original, every call updates the spectral-norm u vectors (there is no training mode).
    """

    def __init__(self, model_config: ModelConfig, **kwargs):
        kwargs.setdefault("name", "discriminator")
        super().__init__(**kwargs)
        check_attention_channels(model_config)
        self.model_config = model_config
        architecture = ARCHITECTURES[model_config.image_size]
        df = model_config.discriminator_channels
        multipliers = architecture.discriminator_multipliers
        self.attention_after = architecture.discriminator_attention_after
        self.blocks = [DiscriminatorBlock(multipliers[0] * df, optimized=True, name="d_optimized_block1")]
        for index, multiplier in enumerate(multipliers[1:], start=2):
            self.blocks.append(DiscriminatorBlock(multiplier * df, name=f"d_block{index}"))
        final_channels = multipliers[-1] * df
        self.blocks.append(
            DiscriminatorBlock(final_channels, downsample=False, name=f"d_block{len(multipliers) + 1}")
        )
        self.d_ops = make_attention(model_config, "discriminator", "always", "d_ops")
        self.d_sn_linear = SpectralDense(1, u_update="always", name="d_sn_linear")
        self.d_embedding = SpectralEmbedding(
            model_config.num_classes, final_channels, u_update="always", name="d_embedding"
        )

    def call(self, inputs, training=None, return_features=False, return_attention=False):
        images, labels = inputs
        hidden = images
        features = probabilities = None
        for index, block in enumerate(self.blocks, start=1):
            hidden = block(hidden)
            if index == self.attention_after:
                features = hidden
                if self.d_ops is not None and return_attention:
                    hidden, probabilities = self.d_ops(hidden, training=training, return_attention=True)
                elif self.d_ops is not None:
                    hidden = self.d_ops(hidden, training=training)
        pooled = tf.reduce_sum(tf.nn.relu(hidden), axis=[1, 2])  # [B, C]
        logits = self.d_sn_linear(pooled)
        logits += tf.reduce_sum(pooled * self.d_embedding(labels), axis=1, keepdims=True)
        if not (return_features or return_attention):
            return logits
        outputs = {"logits": logits}
        if return_features:
            outputs["features"] = features
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
