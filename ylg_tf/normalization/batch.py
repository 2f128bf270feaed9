"""Batch normalisation as TF-GAN's `tpu.batch_norm`, optionally class-conditional, synchronised across replicas.

Training mode normalises with the batch statistics of all replicas together: each replica sums x and x^2,
the sums are all-reduced, and variance = E[x^2] - E[x]^2 (biased). The moving averages start at mean 0 /
variance 1 and follow `v -= (v - batch_value) * (1 - decay)` (no zero-debias), only in training mode.
Inference mode uses the moving averages. The scale and offset are per-class tables [num_classes, 1, 1, C]
looked up by label (conditional), or a single row [1, 1, 1, C] (unconditional), as in the checkpoint.

Under a mixed-precision policy the layer computes in float32 (statistics, moving averages, normalisation,
scale and offset) and casts its output to the compute dtype.
"""

import tensorflow as tf
import tf_keras

from ylg_tf.normalization.spectral import add_float32_weight


def _all_reduce_sum(values):
    """Sums a list of tensors over the replicas of the current strategy (identity with one replica)."""
    replica_context = tf.distribute.get_replica_context()
    if replica_context is None or replica_context.num_replicas_in_sync == 1:
        return values
    return replica_context.all_reduce(tf.distribute.ReduceOp.SUM, values)


class ConditionalBatchNormalization(tf_keras.layers.Layer):
    """Normalises [B, H, W, C] inputs; `call(inputs, labels=None, training=None)`.

    Args:
      num_classes: number of rows of the gamma/beta tables; None for the unconditional layer (one row).
      epsilon: added to the variance (1e-3 in the original).
      decay: moving-average decay (0.999 in the original).
      synchronized: use statistics over all replicas (the original's cross-replica moments).
    """

    def __init__(self, num_classes=None, epsilon=1e-3, decay=0.999, synchronized=True, **kwargs):
        super().__init__(**kwargs)
        if num_classes is not None and int(num_classes) <= 0:
            raise ValueError(f"num_classes={num_classes!r} must be a positive integer or None")
        if not epsilon > 0:
            raise ValueError(f"epsilon={epsilon!r} must be positive")
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"decay={decay!r} must be in [0, 1)")
        self.num_classes = None if num_classes is None else int(num_classes)
        self.epsilon = float(epsilon)
        self.decay = float(decay)
        self.synchronized = bool(synchronized)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        rows = self.num_classes or 1
        self.gamma = add_float32_weight(self, "gamma", shape=(rows, 1, 1, channels), initializer="ones")
        self.beta = add_float32_weight(self, "beta", shape=(rows, 1, 1, channels), initializer="zeros")
        statistics_aggregation = (
            tf.VariableAggregation.ONLY_FIRST_REPLICA
            if self.synchronized
            else tf.VariableAggregation.MEAN
        )
        self.moving_mean, self.moving_variance = (
            add_float32_weight(
                self,
                name,
                shape=(channels,),
                initializer=initializer,
                trainable=False,
                synchronization=tf.VariableSynchronization.ON_WRITE,
                aggregation=statistics_aggregation,
            )
            for name, initializer in (("moving_mean", "zeros"), ("moving_variance", "ones"))
        )
        super().build(input_shape)

    def batch_moments(self, inputs):
        """Mean and biased variance over batch and space (and replicas when synchronised). -> ([C], [C])"""
        count = tf.cast(tf.reduce_prod(tf.shape(inputs)[:-1]), inputs.dtype)
        total = tf.reduce_sum(inputs, axis=[0, 1, 2])
        total_of_squares = tf.reduce_sum(tf.square(inputs), axis=[0, 1, 2])
        if self.synchronized:
            count, total, total_of_squares = _all_reduce_sum([count, total, total_of_squares])
        reciprocal = tf.math.reciprocal(count)
        mean = total * reciprocal
        variance = total_of_squares * reciprocal - tf.square(mean)
        return mean, variance

    def call(self, inputs, labels=None, training=None):
        exact = tf.float32 if inputs.dtype in (tf.float16, tf.bfloat16) else inputs.dtype
        return tf.cast(self._normalize(tf.cast(inputs, exact), labels, training), self.compute_dtype)

    def _normalize(self, inputs, labels, training):
        if training:
            mean, variance = self.batch_moments(inputs)
            self.moving_mean.assign_sub((self.moving_mean - mean) * (1.0 - self.decay))
            self.moving_variance.assign_sub((self.moving_variance - variance) * (1.0 - self.decay))
        else:
            mean, variance = self.moving_mean, self.moving_variance
        outputs = tf.nn.batch_normalization(
            inputs, mean, variance, offset=None, scale=None, variance_epsilon=self.epsilon
        )
        if self.num_classes is None:
            return outputs * self.gamma + self.beta
        if labels is None:
            raise ValueError(f"{self.name}: a conditional batch norm needs labels")
        labels = tf.cast(labels, tf.int32)
        return outputs * tf.gather(self.gamma, labels) + tf.gather(self.beta, labels)

    def get_config(self):
        config = super().get_config()
        config.update(
            num_classes=self.num_classes,
            epsilon=self.epsilon,
            decay=self.decay,
            synchronized=self.synchronized,
        )
        return config
