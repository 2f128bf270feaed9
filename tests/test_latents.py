"""Tests for the keyed latent draws of ylg_tf.latents: every caller's stream is the one it drew before the
draws were gathered here (the formulas of 887bc81, written out), and the keys keep the streams apart.

The NumPy engine's streams (the generate tool's layouts, inversion) are checked in tests/inversion/test_invert.py.
Also: G run over latents with its attention (what tools/generate.py draws for a query pixel).
"""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf import latents
from ylg_tf.config import get_preset
from ylg_tf.evaluation import samples
from ylg_tf.models.networks import Generator

Z_DIM, NUM_CLASSES, COUNT = 6, 5, 4


def old_split_draw(key):
    """The (z, labels) of Trainer.latents and evaluation's sample_latents at 887bc81, from their key."""
    noise_key, label_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
    z = tf.random.stateless_normal([COUNT, Z_DIM], seed=noise_key)
    labels = tf.random.stateless_uniform([COUNT], seed=label_key, minval=0, maxval=NUM_CLASSES, dtype=tf.int32)
    return z.numpy(), labels.numpy()


def assert_draws_equal(draws, expected):
    for value, reference in zip(draws, expected):
        np.testing.assert_array_equal(np.asarray(value), reference)


@pytest.mark.parametrize("seed, step, phase, update", [(0, 0, 0, 0), (3, 7, 1, 0), (3, 7, 0, 2), (11, 123456, 0, 1)])
def test_training_latents_are_the_old_trainer_stream(seed, step, phase, update):
    step = tf.constant(step, tf.int64)
    key = tf.stack([tf.cast(seed, tf.int64), step * 2 + phase])
    if update:
        key = tf.random.experimental.stateless_fold_in(key, update)
    draws = latents.training_latents(seed, step, phase, COUNT, Z_DIM, NUM_CLASSES, discriminator_update=update)
    assert_draws_equal(draws, old_split_draw(key))


def test_training_phases_and_discriminator_updates_draw_apart():
    step = tf.constant(5, tf.int64)
    draws = [
        latents.training_latents(1, step, latents.DISCRIMINATOR_PHASE, COUNT, Z_DIM, NUM_CLASSES)[0],
        latents.training_latents(1, step, latents.GENERATOR_PHASE, COUNT, Z_DIM, NUM_CLASSES)[0],
        latents.training_latents(1, step, latents.DISCRIMINATOR_PHASE, COUNT, Z_DIM, NUM_CLASSES, 1)[0],
    ]
    for first in range(3):
        for second in range(first + 1, 3):
            assert not np.allclose(draws[first], draws[second])
    with pytest.raises(ValueError, match="phase=2"):
        latents.training_latents(1, step, 2, COUNT, Z_DIM, NUM_CLASSES)


@pytest.mark.parametrize("seed, batch_index", [(0, 0), (7, 3), (5, 1000)])
def test_evaluation_latents_are_the_old_sample_latents_stream(seed, batch_index):
    expected = old_split_draw(tf.constant([seed, batch_index], tf.int64))
    assert_draws_equal(latents.evaluation_latents(seed, batch_index, COUNT, Z_DIM, NUM_CLASSES), expected)
    assert_draws_equal(samples.sample_latents(batch_index, COUNT, NUM_CLASSES, Z_DIM, seed), expected)


def test_sample_grid_latents_are_the_old_fixed_latents():
    # At 887bc81: stateless_normal keyed by [seed, 424242] itself (no split), labels cycling over the classes.
    z, labels = latents.sample_grid_latents(9, 16, Z_DIM, NUM_CLASSES)
    expected = tf.random.stateless_normal([16, Z_DIM], seed=tf.constant([9, 424242], tf.int64))
    np.testing.assert_array_equal(z.numpy(), expected.numpy())
    np.testing.assert_array_equal(labels.numpy(), np.arange(16) % NUM_CLASSES)


def test_keyed_normal_engines_and_their_arguments():
    np.testing.assert_array_equal(
        latents.keyed_normal([4, 0], (2, 3), engine="numpy"),
        np.random.default_rng([4, 0]).standard_normal((2, 3)).astype(np.float32),
    )
    key = tf.constant([4, 0], tf.int64)
    np.testing.assert_array_equal(
        latents.keyed_normal(key, [2, 3]).numpy(), tf.random.stateless_normal([2, 3], seed=key).numpy()
    )
    # Traced with an unknown key, the draw is the same function of the key.
    traced = tf.function(lambda key: latents.keyed_normal(key, [2, 3]))
    np.testing.assert_array_equal(traced(key).numpy(), latents.keyed_normal(key, [2, 3]).numpy())
    with pytest.raises(ValueError, match="engine='jax'"):
        latents.keyed_normal([0, 0], (1, 1), engine="jax")
    with pytest.raises(ValueError, match="only the 'numpy' engine truncates"):
        latents.keyed_normal(key, [1, 1], truncation=1.0)


def test_self_inversion_inputs_are_the_old_draws():
    latent, label = latents.self_inversion_inputs(6, Z_DIM, NUM_CLASSES)
    assert label == int(np.random.default_rng([6, 1]).integers(NUM_CLASSES))
    np.testing.assert_array_equal(latent, np.random.default_rng([6, 2]).standard_normal((1, Z_DIM)).astype(np.float32))
    assert latents.self_inversion_inputs(6, Z_DIM, NUM_CLASSES, label=4)[1] == 4
    with pytest.raises(ValueError, match="label 5 is out of range"):
        latents.self_inversion_inputs(6, Z_DIM, NUM_CLASSES, label=5)


def test_generate_with_attention_returns_the_images_and_the_layers_attention():
    model = get_preset("test").model  # 32x32, YLG attention on G's 16x16 maps
    tf_keras.utils.set_random_seed(0)
    generator = Generator(model)
    z = latents.standard_normal_latents(2, model.z_dim, seed=[1, 0])
    images, probabilities, layer = latents.generate_with_attention(generator, z, [0, 3])
    np.testing.assert_allclose(images, generator((z, tf.constant([0, 3])), training=False).numpy(), atol=1e-6)
    assert layer is generator.attention_layers[16]
    assert probabilities.shape == (2, 8, 16 * 16, 8 * 8)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=1e-5)
    without = Generator(dataclasses.replace(model, attention="none"))
    with pytest.raises(ValueError, match="needs a generator with attention.*attention='none'"):
        latents.generate_with_attention(without, z, [0, 3])
