"""Spectrally normalised convolution, dense and embedding layers with the original semantics.

TF-GAN's `spectral_normalize` (used by SAGAN and YLG) keeps a persistent vector u per kernel and runs one
power iteration on every forward pass:

    W = reshape(kernel, [-1, out])          # [rows, out]
    v = l2n(W^T u);  u' = l2n(W v);  sigma = u'^T W v     (u', v without gradient)

The output always uses u'. u is overwritten with u' only in training mode (or on every call, which is what
the original discriminator does because it never receives a training flag). Convolutions, dense layers and
the projection embedding divide by max(1, sigma); the attention 1x1 convolutions divide by sigma exactly.
With normalize=False a layer uses its kernel as it is and has no u (SAGAN's "SN on D only" generator).

u is created with `ONLY_FIRST_REPLICA` aggregation: u' depends only on W and u, which every replica holds
identically, so the first replica's value is the value of all of them.

Under a mixed-precision policy (`ModelConfig.precision`) the variables are float32 and read as float32
(no Keras auto-cast): the power iteration, sigma and the division run in float32, and only the normalised
kernel (and the bias) are cast to the compute dtype for the convolution or product.
"""

import tensorflow as tf
import tf_keras

SIGMA_MODES = ("bounded", "exact")
U_UPDATES = ("training", "always")


def add_float32_weight(layer, name, **kwargs):
    """`layer.add_weight` for a weight that `call` reads as stored (float32 under every mixed policy), never
    auto-cast to the compute dtype: the layer casts what it computes with to `layer.compute_dtype` itself."""
    return layer.add_weight(name=name, experimental_autocast=False, **kwargs)


def _glorot_uniform():
    # VarianceScaling(1, fan_avg, uniform), the original's initialiser for every kernel.
    return tf_keras.initializers.VarianceScaling(scale=1.0, mode="fan_avg", distribution="uniform")


def power_iteration(matrix, u):
    """One power iteration of TF-GAN's spectral norm. matrix [rows, out], u [rows, 1] -> (sigma, new_u)."""
    v = tf.nn.l2_normalize(tf.matmul(matrix, u, transpose_a=True))  # [out, 1]
    new_u = tf.nn.l2_normalize(tf.matmul(matrix, v))  # [rows, 1]
    new_u = tf.stop_gradient(new_u)
    v = tf.stop_gradient(v)
    sigma = tf.matmul(tf.matmul(new_u, matrix, transpose_a=True), v)[0, 0]
    return sigma, new_u


class SpectralNormalizedKernel(tf_keras.layers.Layer):
    """Base for layers whose kernel is spectrally normalised; subclasses call `normalized_kernel`.

    Args:
      sigma_mode: "bounded" divides by max(1, sigma) (convs, dense, embedding in the original);
        "exact" divides by sigma (the original's attention 1x1 convolutions).
      u_update: "training" stores u' only when called with training=True (the original generator);
        "always" stores it on every call (the original discriminator).
      normalize: False uses the kernel unnormalised and creates no u (the layer keeps its name and weights).
    """

    def __init__(self, sigma_mode="bounded", u_update="training", normalize=True, **kwargs):
        super().__init__(**kwargs)
        if sigma_mode not in SIGMA_MODES:
            raise ValueError(f"sigma_mode={sigma_mode!r} is not one of {SIGMA_MODES}")
        if u_update not in U_UPDATES:
            raise ValueError(f"u_update={u_update!r} is not one of {U_UPDATES}")
        self.sigma_mode = sigma_mode
        self.u_update = u_update
        self.normalize = bool(normalize)

    def add_spectral_u(self, rows):
        if not self.normalize:
            self.u = None
            return
        self.u = add_float32_weight(
            self,
            "spectral_norm_u",
            shape=(rows, 1),
            initializer=tf_keras.initializers.RandomNormal(stddev=1.0),
            trainable=False,
            synchronization=tf.VariableSynchronization.ON_WRITE,
            aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
        )

    def normalized_kernel(self, kernel, training):
        """kernel [..., out] (float32) -> kernel / sigma (or max(1, sigma)) in the compute dtype, storing u'
        when the mode says so."""
        return tf.cast(self._normalized_float32_kernel(kernel, training), self.compute_dtype)

    def _normalized_float32_kernel(self, kernel, training):
        if not self.normalize:
            return kernel
        matrix = tf.reshape(kernel, [-1, kernel.shape[-1]])  # [rows, out]
        sigma, new_u = power_iteration(matrix, self.u)
        if self.u_update == "always" or training:
            self.u.assign(new_u)
        if self.sigma_mode == "bounded":
            sigma = tf.maximum(1.0, sigma)
        return kernel / sigma

    def get_config(self):
        config = super().get_config()
        config.update(sigma_mode=self.sigma_mode, u_update=self.u_update, normalize=self.normalize)
        return config


class SpectralConv2D(SpectralNormalizedKernel):
    """Stride-1 SAME convolution with a spectrally normalised kernel [k, k, in, out]."""

    def __init__(self, filters, kernel_size=3, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if int(filters) <= 0:
            raise ValueError(f"filters={filters!r} must be a positive integer")
        if int(kernel_size) <= 0:
            raise ValueError(f"kernel_size={kernel_size!r} must be a positive integer")
        self.filters = int(filters)
        self.kernel_size = int(kernel_size)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        input_channels = int(input_shape[-1])
        self.kernel = add_float32_weight(
            self,
            "kernel",
            shape=(self.kernel_size, self.kernel_size, input_channels, self.filters),
            initializer=_glorot_uniform(),
        )
        self.bias = (
            add_float32_weight(self, "bias", shape=(self.filters,), initializer="zeros")
            if self.use_bias
            else None
        )
        self.add_spectral_u(self.kernel_size * self.kernel_size * input_channels)
        super().build(input_shape)

    def call(self, inputs, training=None):
        kernel = self.normalized_kernel(self.kernel, training)
        outputs = tf.nn.conv2d(inputs, kernel, strides=1, padding="SAME")
        if self.bias is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, self.compute_dtype))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(filters=self.filters, kernel_size=self.kernel_size, use_bias=self.use_bias)
        return config


class SpectralDense(SpectralNormalizedKernel):
    """Dense layer with a spectrally normalised kernel [in, units]."""

    def __init__(self, units, use_bias=True, **kwargs):
        super().__init__(**kwargs)
        if int(units) <= 0:
            raise ValueError(f"units={units!r} must be a positive integer")
        self.units = int(units)
        self.use_bias = bool(use_bias)

    def build(self, input_shape):
        input_units = int(input_shape[-1])
        self.kernel = add_float32_weight(self, "kernel", shape=(input_units, self.units), initializer=_glorot_uniform())
        self.bias = (
            add_float32_weight(self, "bias", shape=(self.units,), initializer="zeros")
            if self.use_bias
            else None
        )
        self.add_spectral_u(input_units)
        super().build(input_shape)

    def call(self, inputs, training=None):
        outputs = tf.matmul(inputs, self.normalized_kernel(self.kernel, training))
        if self.bias is not None:
            outputs = tf.nn.bias_add(outputs, tf.cast(self.bias, self.compute_dtype))
        return outputs

    def get_config(self):
        config = super().get_config()
        config.update(units=self.units, use_bias=self.use_bias)
        return config


class SpectralEmbedding(SpectralNormalizedKernel):
    """Class embedding table [num_classes, dim], spectrally normalised as its transpose (u has dim rows).

    This is the projection discriminator's class embedding in the original.
    """

    def __init__(self, num_classes, output_dim, **kwargs):
        super().__init__(**kwargs)
        if int(num_classes) <= 0:
            raise ValueError(f"num_classes={num_classes!r} must be a positive integer")
        if int(output_dim) <= 0:
            raise ValueError(f"output_dim={output_dim!r} must be a positive integer")
        self.num_classes = int(num_classes)
        self.output_dim = int(output_dim)

    def build(self, input_shape):
        self.embeddings = add_float32_weight(
            self,
            "embedding_map",
            shape=(self.num_classes, self.output_dim),
            initializer=_glorot_uniform(),
        )
        self.add_spectral_u(self.output_dim)
        super().build(input_shape)

    def call(self, labels, training=None):
        table = tf.transpose(self.normalized_kernel(tf.transpose(self.embeddings), training))
        return tf.gather(table, tf.cast(labels, tf.int32))  # [B, dim]

    def get_config(self):
        config = super().get_config()
        config.update(num_classes=self.num_classes, output_dim=self.output_dim)
        return config
