"""A tiny stand-in for TF-GAN's Inception TF-Hub module, for tests that must not touch the network.

`write_fake_inception_savedmodel(directory)` saves a SavedModel with the real module's interface:
calling it on images [N, S, S, 3] float32 returns {"logits": [N, 1008], "pool_3": [N, 2048]}, and
the same function is the `serving_default` signature. The outputs are fixed random (seeded) linear
maps, with a ReLU, of the images average-pooled to a 4x4 grid, so they depend on the image content
and its layout.

With `resize_inside=True` the module behaves like the real one towards callers: it accepts images of any
size ([None, None, None, 3]) and resizes them to `image_size` itself (bilinear) before the fixed maps.
`pool_features` / `num_logits` shrink the outputs for tests where 2048-dimensional covariances would be
slow (a 2048 x 2048 float64 SVD takes seconds); the defaults are the real module's sizes.
"""

import pathlib

import numpy as np
import tensorflow as tf

NUM_LOGITS = 1008
POOL_FEATURES = 2048
_GRID = 4  # images are average-pooled to a _GRID x _GRID x 3 feature grid


class FakeInception(tf.Module):
    """images [N, S, S, 3] -> {"logits": [N, num_logits], "pool_3": [N, pool_features]} (1008, 2048)."""

    def __init__(self, image_size, seed, resize_inside=False, pool_features=POOL_FEATURES,
                 num_logits=NUM_LOGITS):
        super().__init__(name="fake_inception")
        self.resize_inside = resize_inside
        if image_size < _GRID:
            raise ValueError(f"image_size must be at least {_GRID}, got {image_size}.")
        self.image_size = image_size
        features = _GRID * _GRID * 3
        generator = np.random.default_rng(seed)
        self.pool_weights = tf.Variable(
            generator.normal(size=[features, pool_features]).astype(np.float32), name="pool")
        self.logits_weights = tf.Variable(
            (generator.normal(size=[pool_features, num_logits]) / 8.0).astype(np.float32),
            name="logits")

    @tf.function
    def __call__(self, images):  # [N, S, S, 3]
        if self.resize_inside:
            images = tf.image.resize(images, [self.image_size, self.image_size], method="bilinear")
        cell = self.image_size // _GRID
        pooled = tf.nn.avg_pool2d(images, ksize=cell, strides=cell, padding="VALID")
        pooled = pooled[:, :_GRID, :_GRID, :]  # [N, 4, 4, 3]
        features = tf.reshape(pooled, [-1, _GRID * _GRID * 3])  # [N, 48]
        pool_3 = tf.nn.relu(tf.matmul(features, self.pool_weights))  # [N, pool_features]
        logits = tf.matmul(pool_3, self.logits_weights)  # [N, num_logits]
        return {"logits": logits, "pool_3": pool_3}


def write_fake_inception_savedmodel(directory, image_size=299, seed=0, resize_inside=False,
                                    pool_features=POOL_FEATURES, num_logits=NUM_LOGITS):
    """Saves a FakeInception SavedModel into `directory` and returns its path."""
    directory = pathlib.Path(directory)
    module = FakeInception(image_size, seed, resize_inside, pool_features, num_logits)
    input_size = None if resize_inside else image_size
    image_spec = tf.TensorSpec([None, input_size, input_size, 3], tf.float32)
    serving = module.__call__.get_concrete_function(image_spec)
    tf.saved_model.save(module, str(directory), signatures={"serving_default": serving})
    return directory
