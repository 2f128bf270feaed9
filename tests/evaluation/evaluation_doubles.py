"""Stand-ins shared by the evaluation tests: a fixed linear 'classifier', a toy 'generator', random
images, batching, a tiny config."""

import numpy as np
import tensorflow as tf

from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig, TrainingConfig


class LinearClassifier:
    """images -> {"logits": [N, 7], "pool_3": [N, 5]}: fixed random maps of 4x4-pooled images."""

    def __init__(self, seed, num_logits=7, pool_features=5):
        generator = np.random.default_rng(seed)
        self.pool_weights = generator.normal(size=[48, pool_features]).astype(np.float32)
        self.logits_weights = generator.normal(size=[pool_features, num_logits]).astype(np.float32)
        self.calls = []

    def __call__(self, images):
        images = tf.convert_to_tensor(images, tf.float32)
        self.calls.append(int(images.shape[0]))
        pooled = tf.image.resize(images, [4, 4], method="area")
        pool = tf.nn.relu(tf.reshape(pooled, [-1, 48]) @ self.pool_weights)
        return {"logits": pool @ self.logits_weights, "pool_3": pool}


def toy_sample_function(z, labels):
    """A deterministic 'generator' [B, 8, 8, 3] depending on z and the labels."""
    z = tf.convert_to_tensor(z)
    base = tf.reshape(tf.tanh(z[:, :16] + tf.cast(labels, tf.float32)[:, None] * 0.3), [-1, 4, 4, 1])
    return tf.tile(tf.image.resize(base, [8, 8], method="nearest"), [1, 1, 1, 3])


def random_images(seed, count, size=8):
    return np.random.default_rng(seed).uniform(-1, 1, size=[count, size, size, 3]).astype(np.float32)


def batched(images, sizes):
    start = 0
    for size in sizes:
        yield images[start:start + size]
        start += size


def tiny_config(eval_every=0):
    return ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=4, generator_channels=16, discriminator_channels=16,
                          attention="none"),
        training=TrainingConfig(batch_size=4, eval_every=eval_every, eval_num_samples=8),
        data=DataConfig(dataset="builtin", split="train", eval_split="validation"),
    )
