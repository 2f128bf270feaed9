"""ylg_tf.training.experiment: a training run writes checkpoints, summaries, samples and the export;
exact resume, corrupt and non-finite checkpoints, SIGTERM, work-directory checks, errors before anything runs."""

import dataclasses
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.config import get_preset
from ylg_tf.storage import evaluation_history
from ylg_tf.storage import workdir as workdirs
from ylg_tf.training.experiment import CheckpointUnreadableError, TrainingDivergedError, restore_latest, run_training
from ylg_tf.training.trainer import Trainer


TEST_CONFIG = get_preset("test")


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
    # The test preset has YLG's 8 heads in G and D: entropy and distance of every head of both.
    for network in ("generator", "discriminator"):
        for kind in ("attention_entropy", "attention_distance"):
            heads = {tag.rsplit("/", 1)[1] for tag in tags if tag.startswith(f"{kind}/{network}/")}
            assert heads == {f"head_{head}" for head in range(8)}, (kind, network, sorted(tags))
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


def test_a_work_directory_may_switch_precision_and_its_export_serves_float32(trained_workdir, tmp_path):
    directory, config, _, _ = trained_workdir
    import shutil

    shutil.copytree(directory, tmp_path / "run")
    mixed = config.replace(model={"precision": "mixed_bfloat16"}, training={"train_steps": 6})
    messages = []
    result = run_training(mixed, str(tmp_path / "run"), tf.distribute.get_strategy(), log=messages.append)
    assert result.step == 6 and any(m.startswith("resumed at step 4 ") for m in messages), messages
    assert any(m.startswith("precision: 'float32' -> 'mixed_bfloat16' (") for m in messages), messages
    assert workdirs.load_config(tmp_path / "run").model.precision == "mixed_bfloat16"
    # The export takes float32 latents and gives the bfloat16 generator's images; the float32 generator with
    # the same weights draws them within a few levels of 255 (bfloat16 keeps 8 significant bits).
    _, generator, _, step = workdirs.restore_networks(str(tmp_path / "run"))
    assert step == 6 and generator.dtype_policy.name == "mixed_bfloat16"
    signature = tf.saved_model.load(result.export_directory).signatures["serving_default"]
    assert signature.structured_input_signature[1]["z"].dtype == tf.float32
    z = tf.random.stateless_normal([3, config.model.z_dim], seed=[2, 3])
    labels = tf.constant([1, 5, 8], tf.int32)
    served = signature(z=z, labels=labels)["images"].numpy().astype(np.int64)
    expected = np.round((generator((z, labels), training=False).numpy() + 1.0) * 127.5)
    np.testing.assert_array_equal(served, np.clip(expected, 0, 255))
    workdirs.save_config(config, tmp_path / "run")  # float32 again
    _, float32_generator, _, _ = workdirs.restore_networks(str(tmp_path / "run"))
    reference = np.clip(np.round((float32_generator((z, labels), training=False).numpy() + 1.0) * 127.5), 0, 255)
    assert np.mean(np.abs(served - reference)) < 3.0, np.mean(np.abs(served - reference))


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


def test_periodic_evaluation_writes_the_history_and_keeps_the_best_checkpoint_through_the_rotation(tmp_path):
    """eval_every=3 over 10 steps evaluates at exactly 3, 6, 9 and 10; checkpoint_every=1 keeps only
    ckpt-6..ckpt-10, yet the best (step 3) survives in checkpoints/best/ with the weights it was scored with."""
    config = TEST_CONFIG.replace(training={"train_steps": 10, "steps_per_loop": 5, "checkpoint_every": 1,
                                           "eval_every": 3})
    fids = {3: 1.0, 6: 2.0, 9: 3.0, 10: 4.0, 12: 0.5}
    scored = {}

    def evaluator(generator, step):
        scored[step] = [variable.numpy() for variable in generator.weights]
        return {"fid": fids[step], "inception_score": 10.0 - fids[step], "step": step}

    directory = tmp_path / "run"
    messages = []
    run_training(config, str(directory), tf.distribute.get_strategy(), log=messages.append, evaluator=evaluator)
    history = evaluation_history.read_history(directory)
    assert [entry["step"] for entry in history] == [3, 6, 9, 10]
    assert [entry["best"] for entry in history] == [True, False, False, False]
    assert [entry["fid"] for entry in history] == [1.0, 2.0, 3.0, 4.0]
    assert [workdirs.checkpoint_step(p) for p in workdirs.checkpoints_on_disk(directory)] == [6, 7, 8, 9, 10]
    best = evaluation_history.read_best(workdirs.best_checkpoint_directory(directory))
    assert best["step"] == 3 and best["fid"] == 1.0
    _, generator, _, step = workdirs.restore_networks(directory, "best", use_ema=False)
    assert step == 3 and workdirs.checkpoint_step(workdirs.resolve_checkpoint(directory, "best")) == 3
    for restored, seen in zip(generator.weights, scored[3], strict=True):
        np.testing.assert_array_equal(restored.numpy(), seen)
    assert any("fid 4.0000" in m and "best fid 1.0000 at step 3" in m for m in messages)

    tags = {}
    for path in (directory / "summaries").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.tag.startswith("eval/"):
                    tags.setdefault(value.tag, []).append((event.step, float(tf.make_ndarray(value.tensor))))
    assert sorted(tags["eval/fid"]) == [(3, 1.0), (6, 2.0), (9, 3.0), (10, 4.0)]
    assert sorted(tags["eval/best_fid"]) == [(3, 1.0), (6, 1.0), (9, 1.0), (10, 1.0)]

    # Resumed to 13 steps: a lower FID at 12 replaces the best, and the earlier best's files go.
    run_training(config.replace(training={"train_steps": 13}), str(directory), tf.distribute.get_strategy(),
                 log=lambda message: None, evaluator=lambda g, s: evaluator(g, s) if s in fids else {"fid": 9.0})
    best = evaluation_history.read_best(workdirs.best_checkpoint_directory(directory))
    assert best["step"] == 12 and [entry["step"] for entry in evaluation_history.read_history(directory)] == [
        3, 6, 9, 10, 12, 13]
    names = os.listdir(workdirs.best_checkpoint_directory(directory))
    assert sorted(names) == sorted([evaluation_history.BEST_RECORD, f"{best['checkpoint']}.index",
                                    f"{best['checkpoint']}.data-00000-of-00001"])
    assert workdirs.restore_networks(directory, "best")[3] == 12


def test_summaries_carry_the_config_learning_rates_per_class_grid_and_class_accuracy(tmp_path):
    from PIL import Image

    from ylg_tf.data import builtin_shapes
    from ylg_tf.evaluation.class_accuracy import ClassAccuracy

    calls = []

    def scorer(generator):  # a stand-in for the built-in classifier: a known share per call
        calls.append(generator)
        share = 0.1 * len(calls)
        return ClassAccuracy(share, (share,) * 9 + (float("nan"),), 1000)

    config = TEST_CONFIG.replace(training={"train_steps": 4, "steps_per_loop": 2, "checkpoint_every": 4,
                                           "generator_learning_rate": 3e-4})
    result = run_training(config, str(tmp_path), tf.distribute.get_strategy(), log=lambda message: None,
                          class_scorer=scorer)
    assert len(calls) == 2 and result.class_accuracy.accuracy == pytest.approx(0.2)
    scalars, texts, images = {}, {}, {}
    for path in (tmp_path / "summaries").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tensor = tf.make_ndarray(value.tensor)
                if value.metadata.plugin_data.plugin_name == "text":
                    texts[value.tag] = tensor.item().decode()
                elif value.metadata.plugin_data.plugin_name == "images":
                    images[(value.tag, event.step)] = tensor
                else:
                    scalars.setdefault(value.tag, []).append((event.step, float(tensor)))
    assert scalars["class_accuracy/all"] == [(2, pytest.approx(0.1)), (4, pytest.approx(0.2))]
    assert scalars[f"class_accuracy/{builtin_shapes.CLASS_NAMES[0]}"][-1] == (4, pytest.approx(0.2))
    assert f"class_accuracy/{builtin_shapes.CLASS_NAMES[9]}" not in scalars  # NaN: no sample of that class
    assert scalars["train/generator_learning_rate"] == [(2, pytest.approx(3e-4)), (4, pytest.approx(3e-4))]
    assert scalars["train/discriminator_learning_rate"][-1] == (4, pytest.approx(4e-4))
    assert texts["config"] == "```\n" + config.to_json() + "\n```"
    # The per-class grid: 10 rows of 8 (32x32 enlarged for display), the same picture as classes_latest.png.
    encoded = images[("samples_per_class", 4)][2]
    grid = tf.io.decode_png(encoded).numpy()
    np.testing.assert_array_equal(grid, np.asarray(Image.open(result.class_grid_path).convert("RGB")))
    assert result.class_grid_path == str(tmp_path / "samples" / "classes_latest.png")
    tile = (grid.shape[1] - 2) // 8  # 8 columns of a tile and its 2-pixel gap, after a 2-pixel border
    assert grid.shape[0] == 10 * tile + 2
