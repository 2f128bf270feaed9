"""ylg_tf.training.trainer: the original step (a D update, then a G update against the updated D), D steps
per G step, replicas, XLA, the generator's moving average, loop metrics."""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from conftest import REPOSITORY_ROOT
from ylg_tf.config import get_preset
from ylg_tf.training.trainer import Trainer


TEST_CONFIG = get_preset("test")


def _fixed_dataset(batch_size=4, size=32):
    images = tf.random.stateless_uniform([batch_size, size, size, 3], seed=[5, 6], minval=-1.0, maxval=1.0)
    labels = tf.range(batch_size, dtype=tf.int32) % TEST_CONFIG.model.num_classes
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def test_latents_do_not_depend_on_the_replica_count():
    config = TEST_CONFIG.replace(training={"batch_size": 4})
    trainer = Trainer(config, tf.distribute.get_strategy())
    z, labels = trainer.latents(tf.constant(7, tf.int64), 1, 0)
    # A 2-replica trainer's slices are the halves of the same global draw.
    trainer.per_replica_batch_size = 2
    halves = [trainer.latents(tf.constant(7, tf.int64), 1, index) for index in (0, 1)]
    np.testing.assert_array_equal(np.concatenate([h[0] for h in halves]), z.numpy())
    np.testing.assert_array_equal(np.concatenate([h[1] for h in halves]), labels.numpy())
    other_phase, _ = trainer.latents(tf.constant(7, tf.int64), 0, 0)
    assert not np.allclose(other_phase.numpy(), z.numpy()[:2])
    assert labels.numpy().min() >= 0 and labels.numpy().max() < config.model.num_classes


def test_one_step_on_two_replicas_equals_one_replica():
    script = REPOSITORY_ROOT / "tests" / "training" / "replica_equivalence_check.py"
    completed = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(completed.stdout.strip().splitlines()[-1])
    assert result["steps"] == [1, 1]
    # The step really changed every kind of state, and both runs changed it the same way.
    assert result["weights_change"] > 1e-4 and result["spectral_norm_u_change"] > 1e-4
    assert result["batch_norm_statistics_change"] > 1e-6
    # Two replicas sharing the CPU's threads round differently from run to run (1e-8 to 1.5e-6 seen, with or
    # without op determinism); a distribution bug moves weights by a share of the step's ~3e-4 change.
    assert result["weights"] < 1e-5, result
    assert result["spectral_norm_u"] < 2e-5, result
    assert result["batch_norm_statistics"] < 1e-5, result
    assert result["replica_spread"] == 0.0, result
    # The losses are O(1) float32 means that the two runs sum in another order (1.5e-5 apart seen once in CI);
    # a distribution bug (a loss scaled by the replica count, a replica's batch dropped) moves them by O(0.1).
    assert result["metrics"] < 1e-4, result
    assert "batch_size=3" in result["odd_batch_error"] and "2 replicas" in result["odd_batch_error"]


def test_step_compiles_with_xla_and_matches_the_plain_step():
    strategy = tf.distribute.get_strategy()
    tf_keras.utils.set_random_seed(11)
    # A larger Adam epsilon keeps near-zero gradients from turning rounding noise into +-lr updates.
    config = TEST_CONFIG.replace(training={"epsilon": 1e-2})
    plain = Trainer(config, strategy)
    compiled = Trainer(config, strategy, jit_compile=True)
    for network in ("generator", "discriminator"):
        for source, target in zip(getattr(plain, network).variables, getattr(compiled, network).variables):
            target.assign(source)
    dataset = _fixed_dataset()
    plain_metrics = plain.run_loop(iter(dataset), 2)
    compiled_metrics = compiled.run_loop(iter(dataset), 2)
    assert compiled_metrics.step == plain_metrics.step == 2
    np.testing.assert_allclose(compiled_metrics.discriminator_loss, plain_metrics.discriminator_loss, atol=1e-4)
    for network in ("generator", "discriminator"):
        for a, b in zip(getattr(plain, network).variables, getattr(compiled, network).variables):
            np.testing.assert_allclose(a.numpy(), b.numpy(), atol=2e-6, err_msg=a.name)
    # The network updates really went through XLA.
    step = tf.constant(0, tf.int64)
    traced = compiled._update_networks.get_concrete_function(
        (next(iter(dataset)),), (compiled.latents(step, 0, 0),), compiled.latents(step, 1, 0)
    )
    assert traced.function_def.attr["_XlaMustCompile"].b


def test_d_step_then_g_step_moves_both_networks_and_the_step():
    trainer = Trainer(TEST_CONFIG, tf.distribute.get_strategy())
    before_g = [v.numpy() for v in trainer.generator.trainable_variables]
    before_d = [v.numpy() for v in trainer.discriminator.trainable_variables]
    metrics = trainer.run_loop(iter(_fixed_dataset()), 1)
    assert metrics.step == 1 and int(trainer.step.numpy()) == 1
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before_g, trainer.generator.trainable_variables))
    assert any(not np.array_equal(a, b.numpy()) for a, b in zip(before_d, trainer.discriminator.trainable_variables))
    assert int(trainer.generator_optimizer.iterations.numpy()) == 1
    assert int(trainer.discriminator_optimizer.iterations.numpy()) == 1
    # Adam as the paper: beta1 0, beta2 0.999, epsilon 1e-8, TTUR rates.
    config = trainer.generator_optimizer.get_config()
    assert (config["beta_1"], config["beta_2"], config["epsilon"]) == (0.0, 0.999, 1e-8)
    assert np.isclose(float(trainer.discriminator_optimizer.learning_rate.numpy()), 4e-4)
    assert np.isclose(float(trainer.generator_optimizer.learning_rate.numpy()), 1e-4)


def test_generator_moving_average():
    config = TEST_CONFIG.replace(training={"generator_ema_decay": 0.5})
    trainer = Trainer(config, tf.distribute.get_strategy())
    before = [v.numpy() for v in trainer.generator.trainable_variables]
    trainer.run_loop(iter(_fixed_dataset()), 1)
    for start, current, average in zip(
        before, trainer.generator.trainable_variables, trainer.generator_ema.trainable_variables
    ):
        np.testing.assert_allclose(average.numpy(), 0.5 * start + 0.5 * current.numpy(), atol=1e-6)
    assert trainer.sampling_generator is trainer.generator_ema


def _twin_trainers(config):
    """Two trainers with identical networks."""
    first = Trainer(config, tf.distribute.get_strategy())
    second = Trainer(config, tf.distribute.get_strategy())
    for network in ("generator", "discriminator"):
        for source, target in zip(getattr(first, network).variables, getattr(second, network).variables):
            target.assign(source)
    return first, second


def test_loop_metrics_are_means_over_the_loop():
    together, apart = _twin_trainers(TEST_CONFIG)
    dataset = _fixed_dataset()
    mean = together.run_loop(iter(dataset), 2)
    iterator = iter(dataset)
    steps = [apart.run_loop(iterator, 1), apart.run_loop(iterator, 1)]
    assert mean.step == steps[-1].step == 2
    for name in ("discriminator_loss", "generator_loss", "real_logits", "fake_logits"):
        expected = (getattr(steps[0], name) + getattr(steps[1], name)) / 2
        np.testing.assert_allclose(getattr(mean, name), expected, rtol=1e-5, atol=1e-6, err_msg=name)


def test_one_step_is_a_d_update_then_a_g_update_against_the_updated_d():
    """The trainer's step against a reference written out here with plain TensorFlow and NumPy-style means."""
    # A well-conditioned Adam (see the replica test), and a large D rate so that a G step against the
    # stale D would be far off.
    config = TEST_CONFIG.replace(training={"epsilon": 1e-2, "discriminator_learning_rate": 1e-2})
    trainer, reference = _twin_trainers(config)
    images, labels = next(iter(_fixed_dataset()))
    step = tf.constant(0, tf.int64)
    (z_d, labels_d), (z_g, labels_g) = trainer.latents(step, 0, 0), trainer.latents(step, 1, 0)
    trainer.run_loop(iter(_fixed_dataset()), 1)

    generator, discriminator = reference.generator, reference.discriminator
    adam = dict(beta_1=0.0, beta_2=0.999, epsilon=1e-2)
    d_optimizer = tf_keras.optimizers.Adam(1e-2, **adam)
    g_optimizer = tf_keras.optimizers.Adam(1e-4, **adam)
    fakes = generator((z_d, labels_d), training=True)
    with tf.GradientTape() as tape:
        # One D call on real and fake together: one spectral-norm update per D forward.
        logits = discriminator((tf.concat([images, fakes], 0), tf.concat([labels, labels_d], 0)))
        real, fake = tf.split(logits, 2)
        d_loss = tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
    variables = discriminator.trainable_variables
    d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))
    with tf.GradientTape() as tape:
        g_loss = -tf.reduce_mean(discriminator((generator((z_g, labels_g), training=True), labels_g)))
    variables = generator.trainable_variables
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, variables), variables))

    for network in ("generator", "discriminator"):
        for ours, theirs in zip(getattr(trainer, network).variables, getattr(reference, network).variables):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=2e-6, err_msg=ours.name)


def _two_batch_dataset():
    """Two different real batches, alternating: (images [4, 32, 32, 3], labels [4]) each."""
    images = tf.random.stateless_uniform([2, 4, 32, 32, 3], seed=[7, 8], minval=-1.0, maxval=1.0)
    labels = tf.reshape(tf.range(8, dtype=tf.int32) % TEST_CONFIG.model.num_classes, [2, 4])
    return tf.data.Dataset.from_tensor_slices((images, labels)).repeat()


def test_discriminator_steps_make_that_many_d_updates_each_on_its_own_batch():
    """discriminator_steps=2 against a reference written out here: D on batch 1, D on batch 2, then G."""
    config = TEST_CONFIG.replace(
        training={"epsilon": 1e-2, "discriminator_learning_rate": 1e-2, "discriminator_steps": 2}
    )
    trainer, reference = _twin_trainers(config)
    step = tf.constant(0, tf.int64)
    metrics = trainer.run_loop(iter(_two_batch_dataset()), 1)
    assert metrics.step == 1
    assert int(trainer.discriminator_optimizer.iterations.numpy()) == 2
    assert int(trainer.generator_optimizer.iterations.numpy()) == 1

    generator, discriminator = reference.generator, reference.discriminator
    adam = dict(beta_1=0.0, beta_2=0.999, epsilon=1e-2)
    d_optimizer = tf_keras.optimizers.Adam(1e-2, **adam)
    g_optimizer = tf_keras.optimizers.Adam(1e-4, **adam)
    d_losses = []
    for update, (images, labels) in enumerate(_two_batch_dataset().take(2)):
        z, fake_labels = reference.latents(step, 0, 0, discriminator_update=update)
        fakes = generator((z, fake_labels), training=True)
        with tf.GradientTape() as tape:
            logits = discriminator((tf.concat([images, fakes], 0), tf.concat([labels, fake_labels], 0)))
            real, fake = tf.split(logits, 2)
            d_loss = tf.reduce_mean(tf.nn.relu(1.0 - real)) + tf.reduce_mean(tf.nn.relu(1.0 + fake))
        variables = discriminator.trainable_variables
        d_optimizer.apply_gradients(zip(tape.gradient(d_loss, variables), variables))
        d_losses.append(float(d_loss))
    z, fake_labels = reference.latents(step, 1, 0)
    with tf.GradientTape() as tape:
        g_loss = -tf.reduce_mean(discriminator((generator((z, fake_labels), training=True), fake_labels)))
    variables = generator.trainable_variables
    g_optimizer.apply_gradients(zip(tape.gradient(g_loss, variables), variables))

    np.testing.assert_allclose(metrics.discriminator_loss, np.mean(d_losses), rtol=1e-5)
    for network in ("generator", "discriminator"):
        for ours, theirs in zip(getattr(trainer, network).variables, getattr(reference, network).variables):
            np.testing.assert_allclose(ours.numpy(), theirs.numpy(), atol=2e-6, err_msg=ours.name)
    # Each D update drew its own fakes.
    first, second = (reference.latents(step, 0, 0, discriminator_update=update)[0] for update in (0, 1))
    assert not np.allclose(first.numpy(), second.numpy())


def test_discriminator_steps_count_over_a_loop():
    config = TEST_CONFIG.replace(training={"discriminator_steps": 3})
    trainer = Trainer(config, tf.distribute.get_strategy())
    iterator = iter(tf.data.Dataset.range(1000).map(lambda index: (
        tf.fill([4, 32, 32, 3], tf.cast(index, tf.float32) * 1e-3), tf.zeros([4], tf.int32)
    )))
    trainer.run_loop(iterator, 2)
    assert int(trainer.step.numpy()) == 2
    assert int(trainer.discriminator_optimizer.iterations.numpy()) == 6
    assert int(trainer.generator_optimizer.iterations.numpy()) == 2
    assert float(next(iterator)[0][0, 0, 0, 0]) == pytest.approx(6e-3)  # 6 real batches were taken
