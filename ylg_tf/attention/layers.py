"""Attention layers: one base (`PooledAttention`) and the ways its heads attend.

`PooledAttention` holds everything the layers share: the four spectrally normalised projections, the 2x2
pooling of keys and values, the head split and merge, the residual scale sigma_ratio and the config. A
subclass only says how queries attend to keys (`attend`):

* `SelfAttention`: SAGAN's dense attention, one head or several;
* `LocalSparseAttention`: YLG's 8 heads, each restricted by one of its pattern's masks (masked dense);
* `ylg_tf.attention.block_sparse.BlockSparseLocalAttention`: the same heads, scoring only the allowed keys.

The two YLG layers share `LocalPatternAttention` (the pattern, the geometry, the masks and their config).

All follow TF-GAN's `sn_non_local_block_sim` and YLG's multi-head version of it. For inputs x [B, h, w, C]:
queries theta = conv(x, C/8); keys phi = maxpool2(conv(x, C/8)); values g = maxpool2(conv(x, C/2)) (bias-free
1x1 convolutions divided by their exact spectral norm); logits theta phi^T with no 1/sqrt(d) scaling;
output x + sigma_ratio * conv(A g, C) with sigma_ratio a scalar initialised to 0.

With several heads the channels are split head-major (channel = head * d + i) and merged head-minor
(channel = i * heads + head), as the original does; the asymmetry only matters for loading its weights.
YLG adds (1 - M) * -1000 to the logits, M being the 8 sparse masks of `ylg_tf.attention.masks`.

Under a mixed-precision policy the projections and the two attention products run in the compute dtype;
the logits are cast to float32 for the mask bias and the softmax, so the probabilities (those returned
too) are float32, and only their copy multiplying the values is cast back.

Einsum letters: b batch, n heads, q queries, k keys, d channels of one head.
"""

import numpy as np
import tensorflow as tf
import tf_keras

from ylg_tf.attention import masks
from ylg_tf.normalization.spectral import U_UPDATES, SpectralConv2D, add_float32_weight

MASK_LOGIT_PENALTY = -1000.0
LOCAL_PATTERNS = ("ylg", "ylg_no_esa", "ylg_strided", "fixed")


def split_heads(tensor, num_heads):
    """[B, N, heads * d] -> [B, heads, N, d], channel = head * d + i (head-major, as the original)."""
    batch, positions, channels = tf.shape(tensor)[0], tensor.shape[1], tensor.shape[2]
    tensor = tf.reshape(tensor, [batch, positions, num_heads, channels // num_heads])
    return tf.transpose(tensor, [0, 2, 1, 3])


def merge_heads(tensor):
    """[B, heads, N, d] -> [B, N, d * heads], channel = i * heads + head (head-minor, as the original)."""
    batch = tf.shape(tensor)[0]
    num_heads, positions, depth = tensor.shape[1], tensor.shape[2], tensor.shape[3]
    tensor = tf.transpose(tensor, [0, 2, 3, 1])  # [B, N, d, heads]
    return tf.reshape(tensor, [batch, positions, depth * num_heads])


def _max_pool_2x2(tensor):
    return tf.nn.max_pool2d(tensor, ksize=2, strides=2, padding="VALID")


def softmax_dtype(dtype):
    """The dtype the logits' softmax (and mask bias) runs in: float32 for float16/bfloat16, else their own."""
    return tf.float32 if dtype in (tf.float16, tf.bfloat16) else dtype


def dense_attention(queries, keys, values, logits_bias=None, return_probabilities=False):
    """Dense attention. [B, n, q, d], [B, n, k, d], [B, n, k, dv] -> ([B, n, q, dv], probabilities).

    logits_bias (None or float32 [n, q, k]) is added to the logits theta phi^T (no 1/sqrt(d) scaling), in
    `softmax_dtype` like the softmax. probabilities ([B, n, q, k], in that dtype) when return_probabilities
    is True, else None; outputs have the values' dtype.
    """
    logits = tf.einsum("bnqd,bnkd->bnqk", queries, keys)
    logits = tf.cast(logits, softmax_dtype(logits.dtype))
    if logits_bias is not None:
        logits += tf.constant(logits_bias, dtype=logits.dtype)
    probabilities = tf.nn.softmax(logits, axis=-1)
    outputs = tf.einsum("bnqk,bnkd->bnqd", tf.cast(probabilities, values.dtype), values)
    return outputs, (probabilities if return_probabilities else None)


class PooledAttention(tf_keras.layers.Layer):
    """The machinery SAGAN's and YLG's attention share; a subclass implements `attend` (how heads attend)
    and may extend `build` with the static tables it attends with.

    `call(inputs, training=None, return_attention=False)` returns the outputs [B, h, w, C], or
    (outputs, probabilities [B, heads, h*w, h*w/4]) when return_attention is True.
    spectral_normalization=False uses the four 1x1 kernels unnormalised (a generator without SN).
    """

    def __init__(self, num_heads=1, u_update="training", spectral_normalization=True, **kwargs):
        super().__init__(**kwargs)
        if int(num_heads) <= 0:
            raise ValueError(f"num_heads={num_heads!r} must be a positive integer")
        if u_update not in U_UPDATES:
            raise ValueError(f"u_update={u_update!r} is not one of {U_UPDATES}")
        self.num_heads = int(num_heads)
        self.u_update = u_update
        self.spectral_normalization = bool(spectral_normalization)

    def build(self, input_shape):
        _, height, width, channels = (None if d is None else int(d) for d in input_shape)
        if height is None or width is None or channels is None:
            raise ValueError(f"{self.name}: height, width and channels must be known, got {input_shape}")
        if height % 2 or width % 2:
            raise ValueError(f"{self.name}: feature map {height}x{width} must have even sides (keys are 2x2-pooled)")
        if channels % 8 or (channels // 8) % self.num_heads or (channels // 2) % self.num_heads:
            raise ValueError(
                f"{self.name}: num_heads={self.num_heads} must divide both C/8 and C/2 "
                f"for C={channels} channels"
            )
        self.query_grid = (height, width)
        self.key_grid = (height // 2, width // 2)
        convolution = dict(
            kernel_size=1,
            use_bias=False,
            sigma_mode="exact",
            u_update=self.u_update,
            normalize=self.spectral_normalization,
            dtype=self.dtype_policy,
        )
        self.conv_theta = SpectralConv2D(channels // 8, name="sn_conv_theta", **convolution)
        self.conv_phi = SpectralConv2D(channels // 8, name="sn_conv_phi", **convolution)
        self.conv_g = SpectralConv2D(channels // 2, name="sn_conv_g", **convolution)
        self.conv_attn = SpectralConv2D(channels, name="sn_conv_attn", **convolution)
        projections = (
            (self.conv_theta, input_shape),
            (self.conv_phi, input_shape),
            (self.conv_g, input_shape),
            (self.conv_attn, tuple(input_shape[:-1]) + (channels // 2,)),
        )
        for projection, shape in projections:
            with tf.name_scope(projection.name):  # as a first call would, so variable names stay distinct
                projection.build(shape)
        self.sigma_ratio = add_float32_weight(self, "sigma_ratio", shape=(), initializer="zeros")
        super().build(input_shape)

    def attend(self, queries, keys, values, return_probabilities=False):
        """[B, n, q, d], [B, n, k, d], [B, n, k, dv] -> (outputs [B, n, q, dv], probabilities or None).

        probabilities is the dense [B, n, q, k] map when return_probabilities is True, else None (a subclass
        that avoids the dense map then never builds it).
        """
        raise NotImplementedError(f"{type(self).__name__} does not say how its heads attend (attend)")

    def call(self, inputs, training=None, return_attention=False):
        batch = tf.shape(inputs)[0]
        height, width = self.query_grid
        channels = inputs.shape[-1]
        num_queries, num_keys = height * width, height * width // 4
        theta = tf.reshape(self.conv_theta(inputs, training=training), [batch, num_queries, channels // 8])
        phi = tf.reshape(
            _max_pool_2x2(self.conv_phi(inputs, training=training)), [batch, num_keys, channels // 8]
        )
        g = tf.reshape(
            _max_pool_2x2(self.conv_g(inputs, training=training)), [batch, num_keys, channels // 2]
        )
        attended, probabilities = self.attend(
            split_heads(theta, self.num_heads),
            split_heads(phi, self.num_heads),
            split_heads(g, self.num_heads),
            return_probabilities=return_attention,
        )
        attended = tf.reshape(merge_heads(attended), [batch, height, width, channels // 2])
        sigma_ratio = tf.cast(self.sigma_ratio, self.compute_dtype)
        outputs = inputs + sigma_ratio * self.conv_attn(attended, training=training)
        if return_attention:
            return outputs, probabilities
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(
            num_heads=self.num_heads, u_update=self.u_update, spectral_normalization=self.spectral_normalization
        )
        return config


class SelfAttention(PooledAttention):
    """SAGAN's dense self-attention, with one head or several (the YLG train branch's "SAGAN 8 heads")."""

    def attend(self, queries, keys, values, return_probabilities=False):
        return dense_attention(queries, keys, values, return_probabilities=return_probabilities)


class LocalPatternAttention(PooledAttention):
    """What YLG's local sparse attention layers share: 8 heads, each restricted to one of the masks of a
    sparse pattern; subclasses say how the restricted heads are computed.

    Args:
      pattern: a sparse pattern of `ylg_tf.attention.masks.attention_masks` ("ylg", "ylg_no_esa",
        "ylg_strided", "fixed").
      geometry: "original" (the original's folding of queries onto the key grid) or "aligned".
    """

    def __init__(self, pattern="ylg", geometry="original", u_update="training", **kwargs):
        num_heads = kwargs.pop("num_heads", 8)
        if num_heads != 8:
            raise ValueError(f"num_heads={num_heads!r}: local sparse attention has the pattern's 8 heads")
        super().__init__(num_heads=8, u_update=u_update, **kwargs)
        if pattern not in LOCAL_PATTERNS:
            raise ValueError(f"pattern={pattern!r} is not one of {LOCAL_PATTERNS}")
        if geometry not in masks.GEOMETRIES:
            raise ValueError(f"geometry={geometry!r} is not one of {masks.GEOMETRIES}")
        self.pattern = pattern
        self.geometry = geometry

    @property
    def masks(self):
        """The pattern's bool masks [heads, Nq, Nk] on this layer's grids (after build; O(Nq Nk) each time)."""
        return masks.attention_masks(self.pattern, self.query_grid, self.key_grid, geometry=self.geometry)

    def check_head_count(self, count):
        """Raises ValueError unless the pattern's `count` heads are this layer's."""
        if count != self.num_heads:
            raise ValueError(f"pattern {self.pattern!r} has {count} heads, expected {self.num_heads}")

    def get_config(self):
        config = super().get_config()
        config.pop("num_heads")
        config.update(pattern=self.pattern, geometry=self.geometry)
        return config


class LocalSparseAttention(LocalPatternAttention):
    """YLG's local sparse attention as the original computes it: the dense [heads, Nq, Nk] logits, with
    MASK_LOGIT_PENALTY added where a head's mask forbids (their probabilities underflow to exactly 0)."""

    def build(self, input_shape):
        super().build(input_shape)
        allowed = self.masks  # [heads, Nq, Nk] bool
        self.check_head_count(allowed.shape[0])
        self.logits_bias = (1.0 - allowed.astype(np.float32)) * np.float32(MASK_LOGIT_PENALTY)  # [heads, Nq, Nk]

    def attend(self, queries, keys, values, return_probabilities=False):
        return dense_attention(queries, keys, values, self.logits_bias, return_probabilities)
