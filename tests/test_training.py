"""The trainer and the training run: the original step, replicas, XLA, exact resume, checkpoints, errors."""

import dataclasses
import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from conftest import REPOSITORY_ROOT
from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import get_preset
from ylg_tf.training.experiment import (
    CheckpointUnreadableError,
    TrainingDivergedError,
    restore_latest,
    run_training,
)
from ylg_tf.training.losses import discriminator_hinge_loss, generator_hinge_loss
from ylg_tf.training.trainer import Trainer

TEST_CONFIG = get_preset("test")


def _fixed_dataset(batch_size=4, size=32):
    images = tf.random.stateless_uniform([batch_size, size, size, 3], seed=[5, 6], minval=-1.0, maxval=1.0)
    labels = tf.range(batch_size, dtype=tf.int32) % TEST_CONFIG.model.num_classes
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def test_hinge_losses_match_numpy():
    real = np.array([[1.5], [0.2], [-0.7]], np.float32)
    fake = np.array([[-2.0], [0.4], [0.9]], np.float32)
    expected_d = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    # With the global batch equal to this batch, the sums divided by it are the means.
    np.testing.assert_allclose(discriminator_hinge_loss(real, fake, 3).numpy(), expected_d, rtol=1e-6)
    np.testing.assert_allclose(generator_hinge_loss(real, fake, 3).numpy(), -np.mean(fake), rtol=1e-6)
    # Half the global batch on this replica: half the contribution.
    np.testing.assert_allclose(generator_hinge_loss(None, fake, 6).numpy(), -np.mean(fake) / 2, rtol=1e-6)


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
    script = REPOSITORY_ROOT / "tests" / "replica_equivalence_check.py"
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
    assert result["metrics"] < 1e-5, result
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


def _checkpoint_variables(path):
    reader = tf.train.load_checkpoint(path)
    return {
        key: reader.get_tensor(key)
        for key in reader.get_variable_to_shape_map()
        if key.startswith(("generator", "discriminator", "step")) and "OBJECT_GRAPH" not in key
    }


@pytest.mark.parametrize("discriminator_steps", [1, 2])
def test_exact_resume_equals_an_uninterrupted_run(tmp_path, discriminator_steps):
    # Op determinism is process-wide, so this runs in a subprocess. With 2 D updates per step, the resumed
    # data pipeline must skip two batches per step done.
    code = f"""
import tensorflow as tf
import tf_keras
tf.config.experimental.enable_op_determinism()
from ylg_tf.config import get_preset
from ylg_tf.training.experiment import run_training
config = get_preset("test").replace(training={{
    "train_steps": 4, "steps_per_loop": 2, "checkpoint_every": 2, "discriminator_steps": {discriminator_steps},
}})
strategy = tf.distribute.get_strategy()
tf_keras.utils.set_random_seed(0)
run_training(config, {str(tmp_path / 'straight')!r}, strategy, log=lambda m: None)
tf_keras.utils.set_random_seed(0)
run_training(config.replace(training={{"train_steps": 2}}), {str(tmp_path / 'resumed')!r}, strategy, log=lambda m: None)
tf_keras.utils.set_random_seed(99)  # a resumed run must not depend on fresh initial weights
run_training(config, {str(tmp_path / 'resumed')!r}, strategy, log=print)
"""
    completed = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "resumed at step 2" in completed.stdout
    straight = _checkpoint_variables(workdirs.latest_checkpoint(tmp_path / "straight"))
    resumed = _checkpoint_variables(workdirs.latest_checkpoint(tmp_path / "resumed"))
    assert straight.keys() == resumed.keys()
    assert any("optimizer" in key or "generator_optimizer" in key for key in
               tf.train.load_checkpoint(workdirs.latest_checkpoint(tmp_path / "resumed")).get_variable_to_shape_map())
    for key in straight:
        np.testing.assert_array_equal(straight[key], resumed[key], err_msg=key)


@pytest.fixture(scope="module")
def trained_workdir(tmp_path_factory):
    """A tiny run of 4 steps with checkpoints at 2 and 4."""
    directory = tmp_path_factory.mktemp("run")
    config = TEST_CONFIG.replace(training={"train_steps": 4, "steps_per_loop": 2, "checkpoint_every": 2})
    messages = []
    result = run_training(config, str(directory), tf.distribute.get_strategy(), log=messages.append)
    return directory, config, result, messages


def test_run_writes_checkpoints_summaries_samples_and_export(trained_workdir):
    directory, config, result, messages = trained_workdir
    assert result.step == 4 and not result.preempted
    assert workdirs.load_config(directory) == config
    assert [workdirs.checkpoint_step(p) for p in tf.train.get_checkpoint_state(
        workdirs.checkpoint_directory(directory)).all_model_checkpoint_paths] == [2, 4]
    assert os.path.isfile(directory / "samples" / "latest.png")
    assert os.path.isfile(directory / "samples" / "step_00000004.png")
    events = list((directory / "summaries").glob("events.out.tfevents.*"))
    assert events
    tags = set()
    for event in tf.compat.v1.train.summary_iterator(str(events[0])):
        tags.update(value.tag for value in event.summary.value)
    assert {"train/discriminator_loss", "train/generator_loss", "train/steps_per_second", "samples"} <= tags
    assert any(tag.startswith("sigma_ratio/") for tag in tags)
    step_lines = [m for m in messages if m.startswith("step ")]
    assert len(step_lines) == 2 and "steps/s" in step_lines[-1] and "ETA" in step_lines[-1]
    # The export gives the Keras generator's images.
    _, generator, _, step = workdirs.restore_networks(str(directory))
    assert step == 4
    exported = tf.saved_model.load(result.export_directory).signatures["serving_default"]
    z = tf.random.stateless_normal([3, config.model.z_dim], seed=[1, 1])
    labels = tf.constant([0, 1, 3], tf.int32)
    images = exported(z=z, labels=labels)["images"].numpy()
    keras_images = generator((z, labels), training=False).numpy()
    expected = np.clip(np.round((keras_images + 1.0) * 127.5), 0, 255).astype(np.uint8)
    assert np.max(np.abs(images.astype(int) - expected.astype(int))) <= 1


def test_corrupt_latest_checkpoint_falls_back_to_the_previous_one(trained_workdir, tmp_path):
    directory, config, _, _ = trained_workdir
    copy = tmp_path / "copy"
    import shutil

    shutil.copytree(directory / "checkpoints", copy / "checkpoints")
    latest = tf.train.latest_checkpoint(str(copy / "checkpoints"))
    with open(latest + ".data-00000-of-00001", "r+b") as file:
        file.truncate(100)
    trainer = Trainer(config, tf.distribute.get_strategy())
    manager = workdirs.checkpoint_manager(copy, trainer.checkpoint)
    messages = []
    restored = restore_latest(manager, trainer.checkpoint, messages.append)
    assert restored.endswith("ckpt-2") and int(trainer.step.numpy()) == 2
    assert any("unreadable" in m and "ckpt-4" in m for m in messages)
    # When every checkpoint is unreadable, training refuses to start over.
    with open(restored + ".data-00000-of-00001", "r+b") as file:
        file.truncate(100)
    with pytest.raises(CheckpointUnreadableError, match="refusing to start over"):
        restore_latest(manager, trainer.checkpoint, messages.append)


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(trained_workdir, tmp_path, monkeypatch):
    directory, config, _, _ = trained_workdir
    import shutil

    shutil.copytree(directory, tmp_path / "run")
    original = Trainer.run_loop

    def diverging(self, iterator, num_steps):
        metrics = original(self, iterator, num_steps)
        return dataclasses.replace(metrics, generator_loss=float("nan"))

    monkeypatch.setattr(Trainer, "run_loop", diverging)
    longer = config.replace(training={"train_steps": 6})
    with pytest.raises(TrainingDivergedError, match="non-finite loss at step 6.*ckpt-4 is intact"):
        run_training(longer, str(tmp_path / "run"), tf.distribute.get_strategy(), log=lambda m: None)
    assert workdirs.checkpoint_step(workdirs.latest_checkpoint(tmp_path / "run")) == 4


def test_sigterm_saves_and_stops_cleanly(trained_workdir, tmp_path):
    directory, config, _, _ = trained_workdir
    import shutil

    shutil.copytree(directory, tmp_path / "run")

    def preempt(generator, step):
        os.kill(os.getpid(), signal.SIGTERM)  # arrives mid-run, like a preemption notice
        return {}

    longer = config.replace(training={"train_steps": 10, "checkpoint_every": 100, "eval_every": 2})
    previous_handler = signal.getsignal(signal.SIGTERM)
    messages = []
    result = run_training(longer, str(tmp_path / "run"), tf.distribute.get_strategy(), log=messages.append,
                          evaluator=preempt)
    assert result.preempted and result.step == 6
    assert workdirs.checkpoint_step(workdirs.latest_checkpoint(tmp_path / "run")) == 6
    assert any(m.startswith("SIGTERM: saved") for m in messages)
    assert signal.getsignal(signal.SIGTERM) is previous_handler


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


def test_a_work_directory_resumes_only_its_own_model(trained_workdir):
    directory, config, _, _ = trained_workdir
    other = config.replace(model={"attention": "sagan"})
    with pytest.raises(ValueError, match="holds another model .*attention: 'ylg' -> 'sagan'"):
        run_training(other, str(directory), tf.distribute.get_strategy(), log=lambda m: None)


def test_a_work_directory_may_switch_the_attention_implementation(trained_workdir, tmp_path):
    directory, config, _, _ = trained_workdir
    import shutil

    shutil.copytree(directory, tmp_path / "run")
    assert config.model.attention_implementation == "block_sparse"
    dense = config.replace(model={"attention_implementation": "dense"}, training={"train_steps": 6})
    messages = []
    result = run_training(dense, str(tmp_path / "run"), tf.distribute.get_strategy(), log=messages.append)
    assert result.step == 6 and any(m.startswith("resumed at step 4 ") for m in messages), messages
    assert any(m.startswith("attention_implementation: 'block_sparse' -> 'dense' (") for m in messages), messages
    assert workdirs.load_config(tmp_path / "run").model.attention_implementation == "dense"
    # The step-6 weights compute the same images through either implementation.
    _, generator, _, step = workdirs.restore_networks(str(tmp_path / "run"))
    assert step == 6 and type(generator.g_ops).__name__ == "LocalSparseAttention"
    block_sparse = config.replace(model={"attention_implementation": "block_sparse"})
    workdirs.save_config(block_sparse, tmp_path / "run")
    _, twin, _, _ = workdirs.restore_networks(str(tmp_path / "run"))
    assert type(twin.g_ops).__name__ == "BlockSparseLocalAttention"
    z = tf.random.stateless_normal([3, config.model.z_dim], seed=[2, 2])
    labels = tf.constant([0, 4, 9], tf.int32)
    np.testing.assert_allclose(
        generator((z, labels), training=False).numpy(), twin((z, labels), training=False).numpy(), atol=1e-5
    )


def test_a_run_whose_dataset_cannot_be_built_leaves_no_config_behind(tmp_path):
    (tmp_path / "tfds").mkdir()  # exists, but cifar10 was never built into it
    config = TEST_CONFIG.replace(data={"dataset": "cifar10", "data_dir": str(tmp_path / "tfds")})
    with pytest.raises(OSError, match="'cifar10' is not prepared"):
        run_training(config, str(tmp_path / "run"), tf.distribute.get_strategy(), log=lambda m: None)
    # No config.json claims the directory, so the next attempt may train another model there.
    assert not os.path.exists(tmp_path / "run" / "config.json")


def test_a_batch_larger_than_the_memory_is_refused_before_anything_runs():
    from ylg_tf.training.experiment import check_batch_fits_in_memory

    config = TEST_CONFIG.replace(training={"batch_size": 1_000_000})
    batch_bytes = 1_000_000 * 32 * 32 * 3 * 4
    check_batch_fits_in_memory(config, memory_bytes=batch_bytes)  # exactly fits
    with pytest.raises(ValueError, match=r"batch_size=1000000: one batch of 32x32 float32 images is 11.4 GiB, more than this machine's 11.4 GiB"):
        check_batch_fits_in_memory(config, memory_bytes=batch_bytes - 1)
