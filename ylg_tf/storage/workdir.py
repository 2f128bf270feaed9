"""The work directory: the one place every tool reads a trained (or imported) model from.

Layout:
  DIR/config.json        the resolved ExperimentConfig
  DIR/runtime.json       what each start of training ran on (`ylg_tf.storage.runtime_record`)
  DIR/checkpoints/       tf.train.CheckpointManager checkpoints ("ckpt-<step>"), the last CHECKPOINTS_KEPT
  DIR/checkpoints/best/  the checkpoint with the lowest FID of the run's evaluations, and best.json
  DIR/samples/           image grids written during training
  DIR/summaries/         TensorBoard event files
  DIR/export/            the SavedModel of the generator
  DIR/evaluation/        scores (step_<step>.json, export.json, history.jsonl of training's evaluations) and
                         the real-data statistics cache

What one checkpoint holds, and its step, is `ylg_tf.storage.checkpoint_layout`; this module says where the
checkpoints of a work directory live, how many are kept (`checkpoint_manager`, the one CheckpointManager
factory) and which one a tool reads (`resolve_checkpoint`: the latest, `best`, or a named one). The history
and the best checkpoint are `ylg_tf.storage.evaluation_history`'s.

DIR may be any tf.io.gfile path (a local directory, gs://bucket/run for TPU training, ram:// in tests):
every read and write here goes through tf.io.gfile, files through `ylg_tf.storage.files`.
"""

import contextlib
import gc
import json
import logging
import os

import tensorflow as tf

from ylg_tf.config import ExperimentConfig, model_differences
from ylg_tf.storage import checkpoint_layout, evaluation_history
from ylg_tf.storage.checkpoint_layout import checkpoint_step  # noqa: F401  (part of this module's API)
from ylg_tf.storage.files import is_remote, make_directory, write_text_atomically
from ylg_tf.models.networks import Discriminator, Generator

CONFIG_FILE = "config.json"
CHECKPOINT_DIRECTORY = "checkpoints"
SAMPLES_DIRECTORY = "samples"
SUMMARIES_DIRECTORY = "summaries"
EXPORT_DIRECTORY = "export"
CHECKPOINT_STATE_FILE = "checkpoint"  # written by tf.train.CheckpointManager beside the checkpoints
CHECKPOINTS_KEPT = 5  # checkpoints a CheckpointManager keeps in DIR/checkpoints
CHECKPOINT_NAME = "ckpt"  # the manager names each checkpoint "<CHECKPOINT_NAME>-<step>"
_ERROR_DETAIL_CHARACTERS = 240


class WorkdirError(ValueError):
    """A work directory or checkpoint is missing or unreadable."""


def save_config(config: ExperimentConfig, workdir):
    """Writes the resolved config to DIR/config.json (atomically) and returns that path."""
    return write_text_atomically(os.path.join(os.fspath(workdir), CONFIG_FILE), config.to_json() + "\n")


def load_config(workdir) -> ExperimentConfig:
    """The ExperimentConfig of DIR/config.json; WorkdirError when it is missing or invalid."""
    workdir = os.fspath(workdir)
    path = os.path.join(workdir, CONFIG_FILE)
    if not tf.io.gfile.isdir(workdir):
        raise WorkdirError(f"work directory {workdir!r} does not exist")
    if not tf.io.gfile.exists(path):
        raise WorkdirError(f"{path!r} is missing: {workdir!r} is not a work directory written by training or import")
    try:
        with tf.io.gfile.GFile(path, "r") as file:
            return ExperimentConfig.from_dict(json.loads(file.read()))
    except (json.JSONDecodeError, UnicodeDecodeError, TypeError, ValueError) as error:
        raise WorkdirError(f"{path!r} is not a valid config: {error}") from None


def checkpoint_directory(workdir):
    return os.path.join(os.fspath(workdir), CHECKPOINT_DIRECTORY)


def best_checkpoint_directory(workdir):
    """DIR/checkpoints/best: the best checkpoint by FID and its best.json (`ylg_tf.storage.evaluation_history`)."""
    return os.path.join(checkpoint_directory(workdir), evaluation_history.BEST_DIRECTORY)


def checkpoint_manager(workdir, checkpoint):
    """The tf.train.CheckpointManager of `checkpoint` (a `checkpoint_layout.make_checkpoint`) in DIR/checkpoints:
    it keeps the CHECKPOINTS_KEPT most recent; `save(checkpoint_number=step)` writes "ckpt-<step>"."""
    return tf.train.CheckpointManager(
        checkpoint, checkpoint_directory(workdir), max_to_keep=CHECKPOINTS_KEPT, checkpoint_name=CHECKPOINT_NAME
    )


def _checkpoint_state(directory):
    """The tf.train.CheckpointState of a checkpoint directory; None when its state file is missing or garbled
    (reported by the caller, in one line)."""
    with _tensorflow_warnings_off():
        try:
            return tf.train.get_checkpoint_state(directory)
        except UnicodeDecodeError:
            return None


def latest_checkpoint(workdir):
    """The newest checkpoint of the state file, else the newest found on disk, else None."""
    state = _checkpoint_state(checkpoint_directory(workdir))
    if state and state.model_checkpoint_path and tf.io.gfile.exists(state.model_checkpoint_path + ".index"):
        return state.model_checkpoint_path
    on_disk = checkpoints_on_disk(workdir)
    return on_disk[-1] if on_disk else None


def checkpoints_on_disk(workdir):
    """The "ckpt-<step>" prefixes that have an index file in DIR/checkpoints, oldest first."""
    directory = checkpoint_directory(workdir)
    if not tf.io.gfile.isdir(directory):
        return []
    # Discovering files when the state file cannot say which exist: the manager's file names are all there
    # is, and their numbers only order them (the step of a checkpoint is checkpoint_layout.checkpoint_step).
    numbers = []
    prefix = f"{CHECKPOINT_NAME}-"
    for name in tf.io.gfile.listdir(directory):
        stem, _, extension = name.rpartition(".")
        if extension == "index" and stem.startswith(prefix) and stem[len(prefix):].isdigit():
            numbers.append(int(stem[len(prefix):]))
    return [os.path.join(directory, f"{prefix}{number}") for number in sorted(numbers)]


def reconcile_checkpoint_state(workdir):
    """Makes DIR/checkpoints/checkpoint (the state file that tf.train.CheckpointManager and
    tf.train.latest_checkpoint consult) list the checkpoints found on disk, when it is missing, unreadable or
    lists others. Returns a one-line description of what was rewritten, or None when nothing was."""
    found = checkpoints_on_disk(workdir)
    if not found:
        return None
    directory = checkpoint_directory(workdir)
    state_path = os.path.join(directory, CHECKPOINT_STATE_FILE)
    state = _checkpoint_state(directory)
    listed = [os.path.basename(path) for path in state.all_model_checkpoint_paths] if state else []
    names = [os.path.basename(path) for path in found]
    if state is not None and listed == names and os.path.basename(state.model_checkpoint_path) == names[-1]:
        return None
    if not tf.io.gfile.exists(state_path):
        reason = "is missing"
    elif state is None:
        reason = "is unreadable"
    else:
        reason = f"lists {', '.join(listed) or 'nothing'}"
    # The text format of tf.train.CheckpointState, with paths relative to the directory as the manager writes
    # them; the manager only manages (and deletes, beyond CHECKPOINTS_KEPT) checkpoints whose timestamp is
    # after last_preserved_timestamp.
    times = [tf.io.gfile.stat(path + ".index").mtime_nsec / 1e9 for path in found]
    text = (
        f"model_checkpoint_path: {json.dumps(names[-1])}\n"
        + "".join(f"all_model_checkpoint_paths: {json.dumps(name)}\n" for name in names)
        + "".join(f"all_model_checkpoint_timestamps: {time!r}\n" for time in times)
        + f"last_preserved_timestamp: {min(times) - 1.0!r}\n"
    )
    write_text_atomically(state_path, text)
    return f"checkpoint state file {state_path} {reason}; rewrote it from the checkpoints on disk: {', '.join(names)}"


def resolve_checkpoint(workdir, checkpoint=None):
    """The checkpoint prefix to read: `checkpoint` if given (a prefix, a directory, or "best": the work
    directory's best checkpoint by FID), else the latest."""
    if checkpoint == evaluation_history.BEST_KEYWORD:
        checkpoint = best_checkpoint_directory(workdir)
        if not tf.io.gfile.exists(os.path.join(checkpoint, evaluation_history.BEST_RECORD)):
            raise WorkdirError(
                f"--checkpoint=best: {workdir!r} has no best checkpoint ({checkpoint}/"
                f"{evaluation_history.BEST_RECORD}); training keeps one when it evaluates (--eval_every=N)"
            )
    if checkpoint:
        checkpoint = os.fspath(checkpoint)
        if tf.io.gfile.exists(os.path.join(checkpoint, evaluation_history.BEST_RECORD)):
            try:
                found = evaluation_history.best_checkpoint_prefix(checkpoint)
            except evaluation_history.EvaluationHistoryError as error:
                raise WorkdirError(str(error)) from None
            if not tf.io.gfile.exists(found + ".index"):
                raise WorkdirError(f"best checkpoint {found!r} does not exist (no {found}.index)")
            return found
        if tf.io.gfile.isdir(checkpoint):
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


def check_checkpoint_model(path, config: ExperimentConfig, workdir):
    """Raises WorkdirError when the checkpoint at `path` belongs to a work directory (DIR/checkpoints/ckpt-N
    beside DIR/config.json) whose model differs from `config`'s, the computation fields
    (`ylg_tf.config.COMPUTATION_FIELDS`) aside. Networks of another attention kind can have the same variables
    and shapes (SAGAN and YLG do), so restoring would succeed and compute something else."""
    owner = os.path.dirname(os.path.dirname(os.fspath(path)))
    if os.path.basename(owner) == CHECKPOINT_DIRECTORY:  # DIR/checkpoints/best/ckpt-N-U
        owner = os.path.dirname(owner)
    if not tf.io.gfile.exists(os.path.join(owner, CONFIG_FILE)):
        return  # a checkpoint without its work directory: only its variables can be checked
    if os.path.abspath(owner) == os.path.abspath(os.fspath(workdir)) and not is_remote(owner):
        return
    other = load_config(owner).model
    differences = [
        f"{name}: {there!r} there, {here!r} here" for name, there, here in model_differences(other, config.model)
    ]
    if differences:
        raise WorkdirError(
            f"checkpoint {os.fspath(path)!r} belongs to work directory {owner!r}, whose model differs from "
            f"{os.path.join(os.fspath(workdir), CONFIG_FILE)!r} ({'; '.join(differences)}); use --workdir={owner}"
        )


def restore_networks(workdir, checkpoint=None, use_ema=True):
    """(config, generator, discriminator, step) rebuilt from a work directory alone.

    With use_ema, the generator holds the moving average of G's weights when the checkpoint has one.
    Raises WorkdirError (one line, naming the checkpoint) when the checkpoint is corrupt or does not match
    the networks of the work directory's config.
    """
    config = load_config(workdir)
    path = resolve_checkpoint(workdir, checkpoint)
    check_checkpoint_model(path, config, workdir)
    generator = Generator(config.model).build_for_config()
    discriminator = Discriminator(config.model).build_for_config()
    step = checkpoint_layout.step_variable()
    ema = Generator(config.model, name="generator_ema").build_for_config()
    restoring, failure = None, None
    # A restore that raises leaves restorations pending, and TensorFlow logs one warning per variable when
    # they are deleted: with its warnings off until they are, the one-line error stays the only line.
    with _tensorflow_warnings_off():
        try:
            saved = checkpoint_layout.saved_objects(tf.train.load_checkpoint(path))
            has_ema = checkpoint_layout.GENERATOR_EMA in saved
            restoring = checkpoint_layout.make_checkpoint(
                generator=generator, discriminator=discriminator, step=step, generator_ema=ema if has_ema else None
            )
            status = restoring.restore(path)
            status.expect_partial()
            status.assert_existing_objects_matched()
        except (ValueError, AssertionError) as error:
            # Shapes or variables that differ from the networks config.json describes.
            failure = (
                f"checkpoint {path!r} does not match the networks of "
                f"{os.path.join(os.fspath(workdir), CONFIG_FILE)!r}: {_error_detail(error)}"
            )
        except (tf.errors.OpError, LookupError) as error:
            # A truncated or overwritten .index/.data file (LookupError: a short read of the data file).
            failure = (
                f"checkpoint {path!r} is corrupt or unreadable ({type(error).__name__}: {_error_detail(error)}); "
                "pass another one with --checkpoint"
            )
        if failure is not None:
            del generator, discriminator, step, ema, restoring
            gc.collect()
    if failure is not None:
        raise WorkdirError(failure)
    if has_ema and use_ema:
        generator = ema
    return config, generator, discriminator, int(step.numpy())


@contextlib.contextmanager
def _tensorflow_warnings_off():
    """TensorFlow's Python warnings silenced inside the block (its errors still logged)."""
    logger = tf.get_logger()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _error_detail(error):
    """The start of an error's message on one line (restore errors can list every variable)."""
    text = " ".join(str(error).split())
    if len(text) > _ERROR_DETAIL_CHARACTERS:
        text = text[:_ERROR_DETAIL_CHARACTERS].rstrip() + " ..."
    return text


def write_checkpoint(workdir, generator, discriminator, step):
    """Writes networks and step as a fresh checkpoint ("ckpt-<step>") of the work directory.

    Keeps the CHECKPOINTS_KEPT most recent checkpoints, as training does.
    """
    make_directory(checkpoint_directory(workdir))  # a path through a file fails as NotADirectoryError
    checkpoint = checkpoint_layout.make_checkpoint(
        generator=generator, discriminator=discriminator, step=checkpoint_layout.step_variable(step)
    )
    return checkpoint_manager(workdir, checkpoint).save(checkpoint_number=step)
