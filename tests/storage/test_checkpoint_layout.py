"""The checkpoint layout: today's checkpoints have the keys of the version before the layout was defined in one
module, a work directory of that version still loads (restore, resume, tools) with identical values, and
the step of a checkpoint is its saved step, not a number in its file name.

References: tests/assets/checkpoint_layout_keys.json, the keys (name, shape, dtype) of the checkpoints training
and write_checkpoint wrote at commit 887bc81 and the config.json of its training run (made by
tests/assets/checkpoint_layout_keys.py at that commit); a work directory of that version rebuilt here from its
object names spelled out (not from ylg_tf.storage.checkpoint_layout), whose keys the test checks against the
stored ones before using it.
"""

import dataclasses
import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from conftest import REPOSITORY_ROOT
from tool_runner import run_tool
from ylg_tf.config import ExperimentConfig, ModelConfig, TrainingConfig
from ylg_tf.models.networks import Discriminator, Generator, build_networks
from ylg_tf.storage import checkpoint_layout
from ylg_tf.storage import workdir as workdirs
from ylg_tf.training.experiment import run_training
from ylg_tf.training.trainer import Trainer

STORED = json.loads((REPOSITORY_ROOT / "tests" / "assets" / "checkpoint_layout_keys.json").read_text())
# The config the stored keys were written for (tests/assets/checkpoint_layout_keys.py).
MODEL = ModelConfig(
    image_size=32, num_classes=10, z_dim=8, attention="sagan", generator_channels=8, discriminator_channels=8
)
BATCH_SIZE = 2
GENERATOR_EMA_DECAY = 0.5
WRITTEN_STEP = 3
IGNORED_KEYS = ("_CHECKPOINTABLE_OBJECT_GRAPH", "save_counter/.ATTRIBUTES/VARIABLE_VALUE")


def checkpoint_keys(prefix):
    """Every key of a checkpoint as "key [shape] dtype", sorted (the stored file's format)."""
    reader = tf.train.load_checkpoint(prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return sorted(f"{key} {list(shapes[key])} {dtypes[key].name}" for key in shapes)


def checkpoint_values(prefix):
    """{key: value} of every saved variable but the bookkeeping ones."""
    reader = tf.train.load_checkpoint(prefix)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map() if key not in IGNORED_KEYS}


def images(generator, z, labels):
    """uint8 images of a Keras generator, rounded as the export rounds them."""
    output = generator((z, labels), training=False).numpy()
    return np.clip(np.round((output + 1.0) * 127.5), 0, 255).astype(np.int64)


def exported_images(export_directory, z, labels):
    serve = tf.saved_model.load(str(export_directory)).signatures["serving_default"]
    return serve(z=z, labels=labels)["images"].numpy().astype(np.int64)


# ---------------------------------------------------------------------------------------------------------
# Today's checkpoints have the old keys


@pytest.mark.parametrize("entry, decay", [("trainer", 0.0), ("trainer_with_generator_ema", GENERATOR_EMA_DECAY)])
def test_a_fresh_training_checkpoint_has_the_keys_of_the_version_before(tmp_path, entry, decay):
    config = ExperimentConfig(model=MODEL, training=TrainingConfig(batch_size=BATCH_SIZE, generator_ema_decay=decay))
    trainer = Trainer(config, tf.distribute.get_strategy())
    path = workdirs.checkpoint_manager(tmp_path, trainer.checkpoint).save(checkpoint_number=WRITTEN_STEP)
    assert os.path.relpath(path, tmp_path) == STORED["written_work_directory_file_name"]
    assert checkpoint_keys(path) == STORED[entry]


def test_write_checkpoint_has_the_keys_of_the_version_before(tmp_path):
    generator, discriminator = build_networks(MODEL)
    path = workdirs.write_checkpoint(tmp_path, generator, discriminator, WRITTEN_STEP)
    assert os.path.relpath(path, tmp_path) == STORED["written_work_directory_file_name"]
    assert checkpoint_keys(path) == STORED["written_work_directory"]


# ---------------------------------------------------------------------------------------------------------
# A work directory of the version before still loads


def _adam(learning_rate):
    return tf_keras.optimizers.Adam(learning_rate=learning_rate, beta_1=0.0, beta_2=0.999, epsilon=1e-8)


@pytest.fixture(scope="module")
def old_work_directory(tmp_path_factory):
    """A finished training run (with the moving average) as the version before wrote it: config.json as it
    wrote it, and a checkpoint of its objects under its names, with distinct values in every variable."""
    directory = tmp_path_factory.mktemp("old_work_directory")
    (directory / "config.json").write_text(STORED["trainer_with_generator_ema_config_json"] + "\n")
    config = ExperimentConfig.from_dict(json.loads(STORED["trainer_with_generator_ema_config_json"]))
    generator = Generator(config.model).build_for_config()
    discriminator = Discriminator(config.model).build_for_config()
    generator_ema = Generator(config.model, name="generator_ema").build_for_config()
    generator_optimizer = _adam(config.training.generator_learning_rate)
    discriminator_optimizer = _adam(config.training.discriminator_learning_rate)
    generator_optimizer.build(generator.trainable_variables)
    discriminator_optimizer.build(discriminator.trainable_variables)
    random = np.random.default_rng(7)
    for owner in (generator, discriminator, generator_ema, generator_optimizer, discriminator_optimizer):
        for variable in owner.variables:
            if variable.dtype.is_floating:  # a positive shift keeps variances and Adam's second moments valid
                variable.assign(variable + random.uniform(0.01, 0.02, variable.shape).astype(np.float32))
            else:
                variable.assign(WRITTEN_STEP)  # the optimizers' iterations
    checkpoint = tf.train.Checkpoint(
        generator=generator,
        discriminator=discriminator,
        generator_optimizer=generator_optimizer,
        discriminator_optimizer=discriminator_optimizer,
        step=tf.Variable(WRITTEN_STEP, dtype=tf.int64),
        generator_ema=generator_ema,
    )
    manager = tf.train.CheckpointManager(
        checkpoint, str(directory / "checkpoints"), max_to_keep=5, checkpoint_name="ckpt"
    )
    path = manager.save(checkpoint_number=WRITTEN_STEP)
    z = tf.random.stateless_normal([3, config.model.z_dim], seed=[4, 2])
    labels = tf.constant([0, 2, 1], tf.int32)
    return dict(
        directory=directory,
        config=config,
        path=path,
        generator=generator,
        discriminator=discriminator,
        generator_ema=generator_ema,
        values=checkpoint_values(path),
        z=z,
        labels=labels,
    )


def _copy(old, destination):
    shutil.copytree(old["directory"], destination)
    return destination


def test_the_rebuilt_old_work_directory_has_the_stored_keys(old_work_directory):
    assert checkpoint_keys(old_work_directory["path"]) == STORED["trainer_with_generator_ema"]


@pytest.mark.parametrize("use_ema", [True, False])
def test_restore_networks_reads_an_old_work_directory(old_work_directory, use_ema):
    old = old_work_directory
    config, generator, discriminator, step = workdirs.restore_networks(old["directory"], use_ema=use_ema)
    assert config == old["config"] and step == WRITTEN_STEP
    expected_generator = old["generator_ema"] if use_ema else old["generator"]
    for restored, written in ((generator, expected_generator), (discriminator, old["discriminator"])):
        assert len(restored.variables) == len(written.variables)
        for mine, theirs in zip(restored.variables, written.variables):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy(), err_msg=theirs.name)


def test_training_restores_every_value_of_an_old_checkpoint(old_work_directory, tmp_path):
    old = old_work_directory
    trainer = Trainer(old["config"], tf.distribute.get_strategy())
    manager = workdirs.checkpoint_manager(old["directory"], trainer.checkpoint)
    assert manager.latest_checkpoint == old["path"]
    trainer.checkpoint.restore(manager.latest_checkpoint).assert_consumed()
    assert int(trainer.step.numpy()) == WRITTEN_STEP
    again = checkpoint_values(trainer.checkpoint.write(str(tmp_path / "again")))
    assert again.keys() == old["values"].keys()
    for key, value in old["values"].items():
        np.testing.assert_array_equal(again[key], value, err_msg=key)


def test_a_run_resumes_an_old_work_directory_and_exports_its_moving_average(old_work_directory, tmp_path):
    old = old_work_directory
    directory = _copy(old, tmp_path / "run")
    messages = []
    result = run_training(old["config"], str(directory), tf.distribute.get_strategy(), log=messages.append)
    resumed_from = str(directory / "checkpoints" / f"ckpt-{WRITTEN_STEP}")
    assert f"resumed at step {WRITTEN_STEP} from {resumed_from}" in messages, messages
    assert result.step == WRITTEN_STEP and result.checkpoint == resumed_from
    exported = exported_images(result.export_directory, old["z"], old["labels"])
    expected = images(old["generator_ema"], old["z"], old["labels"])
    assert np.max(np.abs(exported - expected)) <= 1  # graph and eager kernels may round differently


def test_the_export_tool_reads_an_old_work_directory(old_work_directory, tmp_path):
    old = old_work_directory
    directory = _copy(old, tmp_path / "run")
    output = tmp_path / "export"
    result = run_tool("tools/export.py", f"--workdir={directory}", f"--output={output}", "--nouse_ema", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert f"exported generator (step {WRITTEN_STEP})" in result.stdout, result.stdout
    exported = exported_images(output, old["z"], old["labels"])
    expected = images(old["generator"], old["z"], old["labels"])
    assert np.max(np.abs(exported - expected)) <= 1


# ---------------------------------------------------------------------------------------------------------
# The step of a checkpoint


def test_the_step_is_the_saved_step_not_a_number_in_the_file_name(tmp_path):
    model = dataclasses.replace(MODEL, attention="none")
    generator, discriminator = build_networks(model)
    workdirs.save_config(ExperimentConfig(model=model), tmp_path)
    path = workdirs.write_checkpoint(tmp_path, generator, discriminator, 5)
    renamed = tmp_path / "best"
    for suffix in (".index", ".data-00000-of-00001"):
        shutil.copyfile(path + suffix, str(renamed) + suffix)
    assert workdirs.checkpoint_step(str(renamed)) == 5
    assert workdirs.restore_networks(tmp_path, checkpoint=str(renamed))[3] == 5
    # A manager numbering its files by save count: its ckpt-1 holds step 9.
    checkpoint = checkpoint_layout.make_checkpoint(
        generator=generator, discriminator=discriminator, step=checkpoint_layout.step_variable(9)
    )
    numbered = tf.train.CheckpointManager(checkpoint, str(tmp_path / "numbered"), max_to_keep=1).save()
    assert numbered.endswith("ckpt-1") and checkpoint_layout.checkpoint_step(numbered) == 9


def test_a_checkpoint_without_a_step_is_named_in_one_line(tmp_path):
    foreign = tf.train.Checkpoint(weights=tf.Variable([1.0, 2.0])).write(str(tmp_path / "foreign"))
    with pytest.raises(checkpoint_layout.CheckpointLayoutError, match="holds no 'step/") as error:
        checkpoint_layout.checkpoint_step(foreign)
    assert repr(foreign) in str(error.value) and "\n" not in str(error.value)
    missing = str(tmp_path / "missing")
    with pytest.raises(checkpoint_layout.CheckpointLayoutError, match="cannot read checkpoint") as error:
        checkpoint_layout.checkpoint_step(missing)
    assert repr(missing) in str(error.value) and "\n" not in str(error.value)
