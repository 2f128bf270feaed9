"""The work directory contract: config and pictures written through tf.io.gfile (also to a non-local file
system), checkpoints kept and resolved, and corrupt or mismatched checkpoints reported as one-line
WorkdirErrors that name the checkpoint."""

import gc
import io
import json
import logging
import os
import uuid

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from ylg_tf import command_line
from ylg_tf.storage import files
from ylg_tf import pictures
from ylg_tf.storage import workdir
from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig
from ylg_tf.models.networks import Discriminator, Generator

STEP = 3


def tiny_config(**model_changes):
    model = dict(image_size=32, num_classes=4, generator_channels=16, discriminator_channels=16, attention="none")
    model.update(model_changes)
    return ExperimentConfig(model=ModelConfig(**model), data=DataConfig(dataset="builtin"))


def ram_directory(name):
    """A fresh directory on TensorFlow's in-memory file system: any os.* call on it would fail."""
    return f"ram://{name}-{uuid.uuid4().hex}"


# ----------------------------------------------------------------------------------------------
# Config and atomic writes.


@pytest.mark.parametrize("filesystem", ["local", "ram"])
def test_config_round_trips_and_is_replaced_whole(tmp_path, filesystem):
    directory = str(tmp_path / "run") if filesystem == "local" else ram_directory("run")
    config = tiny_config()
    path = workdir.save_config(config, directory)
    assert path == os.path.join(directory, "config.json")
    assert workdir.load_config(directory) == config
    with tf.io.gfile.GFile(path) as file:
        assert json.loads(file.read()) == json.loads(config.to_json())
    changed = tiny_config(attention="ylg")
    workdir.save_config(changed, directory)
    assert workdir.load_config(directory) == changed
    assert tf.io.gfile.listdir(directory) == ["config.json"]  # no temporary file left


def test_load_config_names_what_is_wrong(tmp_path):
    with pytest.raises(workdir.WorkdirError, match="does not exist"):
        workdir.load_config(tmp_path / "missing")
    with pytest.raises(workdir.WorkdirError, match="does not exist"):
        workdir.load_config(ram_directory("missing"))
    with pytest.raises(workdir.WorkdirError, match="config.json' is missing"):
        workdir.load_config(tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(workdir.WorkdirError, match="is not a valid config"):
        workdir.load_config(tmp_path)
    assert issubclass(workdir.WorkdirError, ValueError)  # an exit-2 user error in the entry points


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "nested" / "result.json"
    files.write_text_atomically(path, "old\n")
    assert path.read_text() == "old\n"

    def failing_rename(source, target, overwrite=False):
        raise tf.errors.PermissionDeniedError(None, None, "read-only bucket")

    monkeypatch.setattr(tf.io.gfile, "rename", failing_rename)
    with pytest.raises(tf.errors.PermissionDeniedError):
        files.write_text_atomically(path, "new\n")
    monkeypatch.undo()
    assert path.read_text() == "old\n"
    assert os.listdir(path.parent) == ["result.json"]


def test_absolute_path_leaves_remote_paths_alone(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert files.absolute_path("runs/a") == str(tmp_path / "runs" / "a")
    assert files.absolute_path("gs://bucket/runs/a") == "gs://bucket/runs/a"
    assert files.is_remote("ram://x") and not files.is_remote(tmp_path)


# ----------------------------------------------------------------------------------------------
# Pictures (pictures.png_bytes / gif_bytes written with files.write_bytes_atomically, as the tools do).


def decoded(data):
    picture = Image.open(io.BytesIO(data))
    frames = []
    for index in range(getattr(picture, "n_frames", 1)):
        picture.seek(index)
        frames.append(np.asarray(picture.convert("RGB")))
    return frames


@pytest.mark.parametrize("filesystem", ["local", "ram"])
def test_png_and_gif_files_on_any_filesystem(tmp_path, filesystem):
    directory = str(tmp_path) if filesystem == "local" else ram_directory("pictures")
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=[6, 5, 3], dtype=np.uint8)
    path = files.write_bytes_atomically(f"{directory}/samples/grid.png", pictures.png_bytes(image))
    assert path == f"{directory}/samples/grid.png"
    with tf.io.gfile.GFile(path, "rb") as file:
        (read,) = decoded(file.read())
    np.testing.assert_array_equal(read, image)
    assert tf.io.gfile.listdir(f"{directory}/samples") == ["grid.png"]

    floats = rng.uniform(-1, 1, size=[4, 4, 3]).astype(np.float32)  # [-1, 1] images are converted
    files.write_bytes_atomically(path, pictures.png_bytes(floats))  # replaces the old file
    with tf.io.gfile.GFile(path, "rb") as file:
        np.testing.assert_array_equal(decoded(file.read())[0], pictures.to_uint8(floats))

    # Two clearly different frames (GIF stores a palette, so flat colours survive exactly).
    frames = [np.full([4, 4, 3], value, np.uint8) for value in ((255, 0, 0), (0, 0, 255))]
    gif = files.write_bytes_atomically(f"{directory}/movies/walk.gif", pictures.gif_bytes(frames))
    with tf.io.gfile.GFile(gif, "rb") as file:
        read_frames = decoded(file.read())
    assert len(read_frames) == 2
    for read_frame, frame in zip(read_frames, frames):
        np.testing.assert_array_equal(read_frame, frame)
    with pytest.raises(ValueError, match="at least one frame"):
        pictures.gif_bytes([])


# ----------------------------------------------------------------------------------------------
# Checkpoints.


@pytest.fixture(scope="module")
def networks():
    config = tiny_config()
    tf_keras.utils.set_random_seed(1)
    return config, Generator(config.model).build_for_config(), Discriminator(config.model).build_for_config()


def write_run(directory, networks, steps=(STEP,)):
    config, generator, discriminator = networks
    workdir.save_config(config, directory)
    for step in steps:
        path = workdir.write_checkpoint(directory, generator, discriminator, step)
    return path


def test_restore_rebuilds_the_networks_from_the_work_directory_alone(tmp_path, networks):
    write_run(tmp_path, networks)
    config, generator, discriminator, step = workdir.restore_networks(tmp_path)
    assert step == STEP and config == networks[0]
    for restored, original in ((generator, networks[1]), (discriminator, networks[2])):
        assert len(restored.variables) == len(original.variables)
        for mine, theirs in zip(restored.variables, original.variables):
            np.testing.assert_array_equal(mine.numpy(), theirs.numpy())


def test_checkpoints_kept_and_resolved(tmp_path, networks):
    write_run(tmp_path, networks, steps=range(1, 8))
    directory = workdir.checkpoint_directory(tmp_path)
    kept = tf.train.get_checkpoint_state(directory).all_model_checkpoint_paths
    assert workdir.CHECKPOINTS_KEPT == 5
    assert [workdir.checkpoint_step(path) for path in kept] == [3, 4, 5, 6, 7]
    assert not tf.io.gfile.glob(os.path.join(directory, "ckpt-2.*"))  # older files deleted
    assert workdir.resolve_checkpoint(tmp_path) == os.path.join(directory, "ckpt-7")
    assert workdir.resolve_checkpoint(tmp_path, directory) == os.path.join(directory, "ckpt-7")
    assert workdir.resolve_checkpoint(tmp_path, os.path.join(directory, "ckpt-4")).endswith("ckpt-4")
    with pytest.raises(workdir.WorkdirError, match="ckpt-1' does not exist"):
        workdir.resolve_checkpoint(tmp_path, os.path.join(directory, "ckpt-1"))
    with pytest.raises(workdir.WorkdirError, match="no checkpoint in"):
        workdir.resolve_checkpoint(tmp_path / "empty")


def corrupt(prefix, how):
    data_file, index_file = f"{prefix}.data-00000-of-00001", f"{prefix}.index"
    if how == "truncated_data":
        with open(data_file, "rb") as file:
            contents = file.read()
        with open(data_file, "wb") as file:
            file.write(contents[: len(contents) // 3])
    elif how == "zeroed_data":
        size = os.path.getsize(data_file)
        with open(data_file, "wb") as file:
            file.write(b"\0" * size)
    elif how == "missing_data":
        os.remove(data_file)
    else:
        assert how == "garbage_index"
        with open(index_file, "wb") as file:
            file.write(b"not an index" * 8)


def assert_one_line_naming(error, prefix):
    message = str(error)
    assert "\n" not in message and len(message) < 600, message
    assert repr(prefix) in message


@pytest.mark.parametrize("how", ["truncated_data", "zeroed_data", "missing_data", "garbage_index"])
def test_corrupt_checkpoint_is_a_one_line_workdir_error(tmp_path, networks, how):
    prefix = write_run(tmp_path, networks)
    corrupt(prefix, how)
    with pytest.raises(workdir.WorkdirError, match="is corrupt or unreadable") as error:
        workdir.restore_networks(tmp_path)
    assert_one_line_naming(error.value, prefix)


@pytest.mark.parametrize("change, detail", [
    ({"generator_channels": 32}, "incompatible tensor with shape"),  # same variables, other shapes
    ({"attention": "sagan"}, "not bound to checkpointed values"),  # variables the checkpoint lacks
])
def test_checkpoint_of_other_networks_is_a_one_line_workdir_error(tmp_path, networks, change, detail):
    prefix = write_run(tmp_path, networks)
    workdir.save_config(tiny_config(**change), tmp_path)
    warnings = _RecordingHandler()
    tf.get_logger().addHandler(warnings)
    try:
        with pytest.raises(workdir.WorkdirError, match="does not match the networks of") as error:
            workdir.restore_networks(tmp_path)
        failure = error.value
        del error  # its traceback holds restore_networks' frame
        failure.__traceback__ = None
        gc.collect()
    finally:
        tf.get_logger().removeHandler(warnings)
    assert_one_line_naming(failure, prefix)
    assert detail in str(failure) and str(tmp_path / "config.json") in str(failure)
    # Not followed by TensorFlow's warning per unrestored variable.
    assert warnings.messages == []


class _RecordingHandler(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.WARNING)
        self.messages = []

    def emit(self, record):
        self.messages.append(record.getMessage())


def test_a_path_through_a_regular_file_is_a_user_error(tmp_path):
    (tmp_path / "file").write_text("a file")
    assert issubclass(NotADirectoryError, command_line.user_errors())
    with pytest.raises(NotADirectoryError, match="not a directory"):
        workdir.save_config(ExperimentConfig(), tmp_path / "file" / "run")
    with pytest.raises(NotADirectoryError, match=f"{str(tmp_path / 'file')!r} is a file, not a directory"):
        files.check_directory_can_be_made(tmp_path / "file" / "run" / "deeper")
    # A path that can be made passes and is not made.
    files.check_directory_can_be_made(tmp_path / "new" / "run")
    files.check_directory_can_be_made(tmp_path)
    assert not (tmp_path / "new").exists()
