"""The work directory: the one place every tool reads a trained (or imported) model from.

Layout:
  DIR/config.json        the resolved ExperimentConfig
  DIR/checkpoints/       tf.train.CheckpointManager checkpoints ("ckpt-<step>")
  DIR/samples/           image grids written during training
  DIR/summaries/         TensorBoard event files
  DIR/export/            the SavedModel of the generator

A checkpoint object holds `generator`, `discriminator`, `step` and, when training wrote them, the
optimizers, `generator_ema` (moving average of G's weights) and `random_generator`.
"""

import json
import os
import pathlib

import tensorflow as tf

from ylg_tf.config import ExperimentConfig
from ylg_tf.networks import Discriminator, Generator

CONFIG_FILE = "config.json"
CHECKPOINT_DIRECTORY = "checkpoints"
SAMPLES_DIRECTORY = "samples"
SUMMARIES_DIRECTORY = "summaries"
EXPORT_DIRECTORY = "export"


class WorkdirError(ValueError):
    """A work directory or checkpoint is missing or unreadable."""


def save_config(config: ExperimentConfig, workdir):
    os.makedirs(workdir, exist_ok=True)
    path = os.path.join(workdir, CONFIG_FILE)
    temporary = path + ".tmp"
    with open(temporary, "w") as file:
        file.write(config.to_json() + "\n")
    os.replace(temporary, path)
    return path


def load_config(workdir) -> ExperimentConfig:
    path = os.path.join(workdir, CONFIG_FILE)
    if not os.path.isdir(workdir):
        raise WorkdirError(f"work directory {workdir!r} does not exist")
    if not os.path.isfile(path):
        raise WorkdirError(f"{path!r} is missing: {workdir!r} is not a work directory written by training or import")
    try:
        with open(path) as file:
            return ExperimentConfig.from_dict(json.load(file))
    except (json.JSONDecodeError, TypeError, ValueError) as error:
        raise WorkdirError(f"{path!r} is not a valid config: {error}") from None


def checkpoint_directory(workdir):
    return os.path.join(workdir, CHECKPOINT_DIRECTORY)


def latest_checkpoint(workdir):
    return tf.train.latest_checkpoint(checkpoint_directory(workdir))


def checkpoint_step(checkpoint_path):
    """The step a "ckpt-<step>" checkpoint was written at."""
    suffix = pathlib.Path(checkpoint_path).name.rsplit("-", 1)[-1]
    return int(suffix) if suffix.isdigit() else 0


def resolve_checkpoint(workdir, checkpoint=None):
    """The checkpoint prefix to read: `checkpoint` if given (a prefix or a directory), else the latest."""
    if checkpoint:
        if os.path.isdir(checkpoint):
            found = tf.train.latest_checkpoint(checkpoint)
            if not found:
                raise WorkdirError(f"no checkpoint in directory {checkpoint!r}")
            return found
        if not tf.io.gfile.exists(checkpoint + ".index"):
            raise WorkdirError(f"checkpoint {checkpoint!r} does not exist (no {checkpoint}.index)")
        return checkpoint
    found = latest_checkpoint(workdir)
    if not found:
        raise WorkdirError(f"no checkpoint in {checkpoint_directory(workdir)!r}: train or import a model first")
    return found


def restore_networks(workdir, checkpoint=None, use_ema=True):
    """(config, generator, discriminator, step) rebuilt from a work directory alone.

    With use_ema, the generator holds the moving average of G's weights when the checkpoint has one.
    """
    config = load_config(workdir)
    path = resolve_checkpoint(workdir, checkpoint)
    generator = Generator(config.model).build_for_config()
    discriminator = Discriminator(config.model).build_for_config()
    step = tf.Variable(0, dtype=tf.int64)
    ema = Generator(config.model, name="generator_ema").build_for_config()
    reader = tf.train.load_checkpoint(path)
    has_ema = any(key.startswith("generator_ema/") for key in reader.get_variable_to_shape_map())
    objects = dict(generator=generator, discriminator=discriminator, step=step)
    if has_ema:
        objects["generator_ema"] = ema
    status = tf.train.Checkpoint(**objects).restore(path)
    status.expect_partial()
    status.assert_existing_objects_matched()
    if has_ema and use_ema:
        generator = ema
    return config, generator, discriminator, int(step.numpy())


def write_checkpoint(workdir, generator, discriminator, step):
    """Writes networks and step as a fresh checkpoint ("ckpt-<step>") of the work directory."""
    manager = tf.train.CheckpointManager(
        tf.train.Checkpoint(
            generator=generator, discriminator=discriminator, step=tf.Variable(step, dtype=tf.int64)
        ),
        checkpoint_directory(workdir),
        max_to_keep=5,
        checkpoint_name="ckpt",
    )
    return manager.save(checkpoint_number=step)
