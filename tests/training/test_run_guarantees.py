"""What a training run guarantees when something goes wrong (issue 12): checkpoints found on disk, the
work-directory lock, the whole config checked on resume, learning rates applied on resume, no non-finite
checkpoint, Ctrl-C that saves, disk faults in one line, and the smaller promises (ETA, empty directories).

Most tests resume a copy of one tiny trained work directory without a training step (train_steps equal to
its step), so they cost no tracing; the ones that train say why.
"""

import json
import math
import os
import pathlib
import resource
import shutil
import signal
import socket
import subprocess
import sys
import threading

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPOSITORY_ROOT
from tool_runner import assert_one_line_error, run_tool
from ylg_tf.storage import files
from ylg_tf.storage import run_lock
from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import get_preset
from ylg_tf.training.experiment import CheckpointUnreadableError, TrainingDivergedError, eta_text, run_training
from ylg_tf.models.networks import build_networks
from ylg_tf.training.trainer import Trainer

# The smallest networks the test preset allows, so that the runs here trace quickly.
CONFIG = get_preset("test").replace(
    model={"attention": "none", "generator_channels": 16, "discriminator_channels": 16},
    training={"train_steps": 4, "steps_per_loop": 2, "checkpoint_every": 2},
)
STRATEGY = tf.distribute.get_strategy()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A work directory trained for 4 steps, with checkpoints at 2 and 4."""
    directory = tmp_path_factory.mktemp("trained") / "run"
    run_training(CONFIG, str(directory), STRATEGY, log=lambda message: None)
    return directory


@pytest.fixture
def run_copy(trained, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(trained, copy)
    return copy


def _resume(directory, config=CONFIG, **options):
    messages = []
    result = run_training(config, str(directory), STRATEGY, log=messages.append, **options)
    return result, messages


def _checkpoint_steps(directory):
    return [workdirs.checkpoint_step(path) for path in workdirs.checkpoints_on_disk(directory)]


# ----------------------------------------------------------------------------------------------
# Item 1: checkpoints are found on disk when the state file is missing or garbled.


@pytest.mark.parametrize("damage", ["deleted", "garbled"])
def test_a_missing_or_garbled_state_file_resumes_from_the_checkpoints_on_disk(run_copy, damage):
    state_file = run_copy / "checkpoints" / "checkpoint"
    if damage == "deleted":
        state_file.unlink()
    else:
        state_file.write_bytes(b"\x00\xffnot a text proto {{{")
    _, messages = _resume(run_copy)
    assert "resumed at step 4 from " + str(run_copy / "checkpoints" / "ckpt-4") in messages, messages
    assert not any(message.startswith("starting at step 0") for message in messages)
    assert any("rewrote it from the checkpoints on disk: ckpt-2, ckpt-4" in message for message in messages)
    state = tf.train.get_checkpoint_state(str(run_copy / "checkpoints"))
    assert [os.path.basename(path) for path in state.all_model_checkpoint_paths] == ["ckpt-2", "ckpt-4"]
    assert _checkpoint_steps(run_copy) == [2, 4]  # nothing overwritten


def test_unreadable_checkpoints_without_a_state_file_stop_the_run(run_copy):
    (run_copy / "checkpoints" / "checkpoint").unlink()
    for path in (run_copy / "checkpoints").glob("ckpt-*.data-*"):
        path.write_bytes(b"\0" * 64)
    with pytest.raises(CheckpointUnreadableError, match="refusing to start over"):
        _resume(run_copy)


# ----------------------------------------------------------------------------------------------
# Item 2: the work-directory lock.


@pytest.fixture
def live_process():
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def _write_lock(directory, host, pid):
    holder = {"host": host, "pid": pid, "started": "2026-01-01T00:00:00+00:00", "token": "t"}
    (directory / run_lock.LOCK_FILE).write_text(json.dumps(holder))
    return holder


def test_a_second_run_in_a_locked_work_directory_stops_and_changes_nothing(run_copy, live_process):
    _write_lock(run_copy, socket.gethostname(), live_process.pid)
    before = sorted(str(path) for path in run_copy.rglob("*"))
    with pytest.raises(run_lock.WorkdirLockedError, match=f"in use by the run of pid {live_process.pid} on host"):
        _resume(run_copy, CONFIG.replace(training={"train_steps": 6}))
    assert sorted(str(path) for path in run_copy.rglob("*")) == before
    assert issubclass(run_lock.WorkdirLockedError, OSError)  # one line and exit code 2 in train.py


def test_a_stale_lock_is_reported_and_taken_over_and_the_lock_released(run_copy):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                              text=True, check=True)
    _write_lock(run_copy, socket.gethostname(), int(finished.stdout))
    _, messages = _resume(run_copy)
    assert any(f"taking over a stale lock" in message and finished.stdout.strip() in message for message in messages)
    assert not (run_copy / run_lock.LOCK_FILE).exists()


def test_a_lock_of_another_host_needs_force_unlock(run_copy):
    _write_lock(run_copy, "another-host.example", 12345)
    with pytest.raises(run_lock.WorkdirLockedError, match="pass --force_unlock"):
        _resume(run_copy)
    _, messages = _resume(run_copy, force_unlock=True)
    assert any("(--force_unlock)" in message and "another-host.example" in message for message in messages)
    assert not (run_copy / run_lock.LOCK_FILE).exists()


# ----------------------------------------------------------------------------------------------
# Item 3: the whole config is checked on resume.


def test_another_dataset_stops_unless_allowed_and_changes_nothing(run_copy, tmp_path):
    pictures = tmp_path / "pictures" / "cats"
    pictures.mkdir(parents=True)
    for index in range(4):
        tf.io.write_file(str(pictures / f"{index}.png"), tf.io.encode_png(tf.zeros([8, 8, 3], tf.uint8)))
    folder = CONFIG.replace(data={"dataset": "folder", "data_dir": str(tmp_path / "pictures")})
    config_before = (run_copy / "config.json").read_text()
    with pytest.raises(ValueError, match="trained on other data \\(dataset: 'builtin' -> 'folder'\\).*--allow_data"):
        _resume(run_copy, folder)
    assert (run_copy / "config.json").read_text() == config_before
    other_split = CONFIG.replace(data={"split": "test"})
    with pytest.raises(ValueError, match="split: 'train' -> 'test'"):
        _resume(run_copy, other_split)
    _, messages = _resume(run_copy, folder, allow_data_change=True)
    assert "dataset: 'builtin' -> 'folder' (applied from step 4)" in messages
    assert any(m.startswith("dataset folder ") and "4 images in 1 classes (cats=0)" in m for m in messages)
    assert any(m.startswith("warning: the model has num_classes=10") for m in messages)
    assert workdirs.load_config(run_copy).data.dataset == "folder"


def test_a_smaller_train_steps_than_the_step_reached_stops(run_copy):
    config_before = (run_copy / "config.json").read_text()
    with pytest.raises(ValueError, match="train_steps=2 is below step 4"):
        _resume(run_copy, CONFIG.replace(training={"train_steps": 2}))
    assert (run_copy / "config.json").read_text() == config_before
    export_time = os.path.getmtime(run_copy / "export" / "saved_model.pb")
    _, messages = _resume(run_copy)  # the same command again: nothing to train, the export kept
    assert any(m.startswith("nothing to train") for m in messages)
    assert os.path.getmtime(run_copy / "export" / "saved_model.pb") == export_time


# ----------------------------------------------------------------------------------------------
# Items 3 and 5: changed settings are applied on resume, learning rates included. (Trains 2 steps.)


def _optimizer_learning_rates(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    rates = {}
    for key in reader.get_variable_to_shape_map():
        if "learning_rate" in key and key.startswith(("generator_optimizer", "discriminator_optimizer")):
            rates[key.split("/")[0]] = float(reader.get_tensor(key))
    return rates


def test_changed_learning_rates_and_steps_are_applied_on_resume(run_copy):
    assert _optimizer_learning_rates(workdirs.latest_checkpoint(run_copy)) == pytest.approx(
        {"generator_optimizer": 1e-4, "discriminator_optimizer": 4e-4})
    changed = CONFIG.replace(
        training={"train_steps": 6, "generator_learning_rate": 3e-5, "discriminator_learning_rate": 2e-3})
    result, messages = _resume(run_copy, changed)
    assert result.step == 6
    assert _optimizer_learning_rates(result.checkpoint) == pytest.approx(
        {"generator_optimizer": 3e-5, "discriminator_optimizer": 2e-3})
    for line in ("train_steps: 4 -> 6", "generator_learning_rate: 0.0001 -> 3e-05",
                 "discriminator_learning_rate: 0.0004 -> 0.002"):
        assert f"{line} (applied from step 4)" in messages, messages
    assert any(m.startswith("traced the training loop in ") for m in messages)  # the first line of the loop


# ----------------------------------------------------------------------------------------------
# Item 4: no checkpoint ever holds a non-finite value. (Trains.)


def test_an_infinite_learning_rate_saves_no_non_finite_checkpoint(tmp_path):
    config = CONFIG.replace(training={"generator_learning_rate": math.inf, "checkpoint_every": 1,
                                      "steps_per_loop": 1})
    with pytest.raises(TrainingDivergedError, match="at step 1.*the last good checkpoint \\(none\\) is intact"):
        _resume(tmp_path / "run", config)
    for checkpoint in workdirs.checkpoints_on_disk(tmp_path / "run"):
        reader = tf.train.load_checkpoint(checkpoint)
        for key in reader.get_variable_to_shape_map():
            value = reader.get_tensor(key)
            if isinstance(value, np.ndarray) and value.dtype.kind == "f":
                assert np.all(np.isfinite(value)), (checkpoint, key)


# ----------------------------------------------------------------------------------------------
# Item 5: SIGINT saves like SIGTERM, within one step. (Trains.)


def test_sigint_during_a_long_loop_saves_within_a_step(run_copy, monkeypatch):
    config = CONFIG.replace(training={"train_steps": 300, "steps_per_loop": 100, "checkpoint_every": 300})
    calls = []
    run_loop = Trainer.run_loop

    def run_loop_interrupted(self, iterator, num_steps):
        calls.append(num_steps)
        if len(calls) == 2:  # Ctrl-C 0.3 s into the loop of steps 101 to 200 (100 steps take seconds)
            threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGINT)).start()
        return run_loop(self, iterator, num_steps)

    monkeypatch.setattr(Trainer, "run_loop", run_loop_interrupted)
    messages = []
    previous_handler = signal.getsignal(signal.SIGINT)
    result = run_training(config, str(run_copy), STRATEGY, log=messages.append)
    assert calls[:2] == [96, 100]  # from step 4 to the loop boundaries 100 and 200
    assert result.stop_signal == "SIGINT" and 100 < result.step < 200, result
    assert result.checkpoint.endswith(f"ckpt-{result.step}")
    assert _checkpoint_steps(run_copy)[-1] == result.step
    assert [m for m in messages if "SIGINT" in m] == [
        f"SIGINT: saved {result.checkpoint} at step {result.step}; rerun to resume"]
    assert signal.getsignal(signal.SIGINT) is previous_handler


# ----------------------------------------------------------------------------------------------
# Item 6: tools refuse a checkpoint of another work directory's model.


def test_a_checkpoint_of_a_work_directory_with_another_model_is_refused(tmp_path):
    # SAGAN's and YLG's networks have the same variables and shapes: restoring one into the other succeeds.
    sagan = get_preset("test").replace(model={"attention": "sagan"})
    ylg = get_preset("test").replace(model={"attention": "ylg"})
    generator, discriminator = build_networks(sagan.model)
    workdirs.save_config(sagan, tmp_path / "sagan")
    checkpoint = workdirs.write_checkpoint(tmp_path / "sagan", generator, discriminator, 3)
    workdirs.save_config(ylg, tmp_path / "ylg")
    with pytest.raises(workdirs.WorkdirError, match=f"belongs to work directory {str(tmp_path / 'sagan')!r}, whose "
                                                    "model differs .*attention: 'sagan' there, 'ylg' here"):
        workdirs.restore_networks(tmp_path / "ylg", checkpoint)
    dense = sagan.replace(model={"attention_implementation": "dense"})
    workdirs.save_config(dense, tmp_path / "dense")
    assert workdirs.restore_networks(tmp_path / "dense", checkpoint)[3] == 3  # a computation field may differ


# ----------------------------------------------------------------------------------------------
# Item 7: disk faults.


def test_an_unwritable_checkpoint_directory_stops_before_training(run_copy, monkeypatch):
    original = tf.io.gfile.GFile

    def read_only_checkpoints(path, mode="r"):
        if "w" in mode and os.path.join("run", "checkpoints") in os.fspath(path):
            raise tf.errors.PermissionDeniedError(None, None, f"{path}; Read-only file system")
        return original(path, mode)

    monkeypatch.setattr(tf.io.gfile, "GFile", read_only_checkpoints)
    with pytest.raises(PermissionError, match="checkpoints' is not writable: .*Read-only file system"):
        _resume(run_copy, CONFIG.replace(training={"train_steps": 6}))
    monkeypatch.undo()
    assert _checkpoint_steps(run_copy) == [2, 4] and not (run_copy / run_lock.LOCK_FILE).exists()


def test_a_full_disk_during_a_save_is_one_line_and_leaves_no_partial_file(tmp_path):
    # A file-size limit makes the checkpoint's data file fail as a full disk would (EFBIG, "File too large"),
    # while the config and the sample grid still fit.
    def small_files_only():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (2_000_000, 2_000_000))

    arguments = ["--preset=test", "--config.model.attention=none", "--config.model.generator_channels=16",
                 "--config.model.discriminator_channels=16", "--train_steps=2", f"--workdir={tmp_path / 'run'}"]
    result = subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / "experiments" / "train.py"), *arguments], capture_output=True,
        text=True, timeout=600, preexec_fn=small_files_only,
        env={key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"},  # as a user has it
    )
    assert_one_line_error(result, "could not write checkpoint ckpt-2", "File too large", "partial files were removed")
    assert list((tmp_path / "run").rglob("ckpt-*")) == [] and list((tmp_path / "run").rglob("*.tmp*")) == []
    assert (tmp_path / "run" / "config.json").exists()  # the rest of the run's work stays
    assert not (tmp_path / "run" / run_lock.LOCK_FILE).exists()


def test_files_of_interrupted_writes_are_removed_at_start(run_copy):
    leftovers = [run_copy / "config.json.tmp-0123456789ab", run_copy / "samples" / "latest.tmp-0123456789ab.png",
                 run_copy / "checkpoints" / "ckpt-6_temp", run_copy / "checkpoints" / "ckpt-8.data-00000-of-00001",
                 run_copy / "checkpoints" / "checkpoint.tmp0123abcd", run_copy / ".export.writing-0123456789ab"]
    for path in leftovers:
        if path.name.endswith("_temp") or path.name.startswith(".export."):
            path.mkdir()
            (path / "part-00000-of-00001").write_bytes(b"partial")
        else:
            path.write_bytes(b"partial")
    _, messages = _resume(run_copy)
    assert any(m.startswith(f"removed {len(leftovers)} file(s) left by an interrupted write") for m in messages)
    for path in leftovers:
        assert not path.exists(), path


def test_a_failed_run_leaves_no_empty_work_directory(tmp_path):
    (tmp_path / "tfds").mkdir()  # exists, but cifar10 was never built into it
    config = CONFIG.replace(data={"dataset": "cifar10", "data_dir": str(tmp_path / "tfds")})
    with pytest.raises(OSError, match="'cifar10' is not prepared"):
        run_training(config, str(tmp_path / "run"), STRATEGY, log=lambda m: None)
    assert not (tmp_path / "run").exists()


# ----------------------------------------------------------------------------------------------
# Item 8: smaller promises.


def test_eta_shows_days_and_never_overflows():
    assert eta_text(28.8 * 3600) == "1d 04:48:00"
    assert eta_text(3 * 60 + 2.4) == "00:03:02"
    assert eta_text(1e20).startswith(f"{int(1e20) // 86400}d ")
    assert eta_text(math.inf) == "unknown"


def _huge_png(path):
    """A PNG whose header claims 20000 x 20000 pixels (PIL refuses to open more than 2 x 89M pixels)."""
    import io
    import struct
    import zlib

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (1, 1)).save(buffer, format="PNG")
    data = bytearray(buffer.getvalue())
    header = b"IHDR" + struct.pack(">II", 20000, 20000) + bytes(data[24:29])
    data[12:29] = header
    data[29:33] = struct.pack(">I", zlib.crc32(header))
    path.write_bytes(bytes(data))
    return path


def test_bad_inputs_give_one_line_naming_the_flag_and_value(trained, tmp_path, original_checkpoint_prefix):
    import concurrent.futures

    (tmp_path / "a_file").write_text("not a directory")
    (tmp_path / "pictures" / "cats").mkdir(parents=True)
    (tmp_path / "pictures" / "cats" / "broken.png").write_bytes(b"\x89PNG not really")
    truncated = tmp_path / "truncated" / "model.ckpt-1"
    truncated.parent.mkdir()
    shutil.copy(original_checkpoint_prefix + ".index", str(truncated) + ".index")
    data = pathlib.Path(original_checkpoint_prefix + ".data-00000-of-00001").read_bytes()
    pathlib.Path(str(truncated) + ".data-00000-of-00001").write_bytes(data[: len(data) // 2])
    train = ["experiments/train.py", "--preset=test", f"--workdir={tmp_path / 'new_run'}"]
    cases = {
        "huge train_steps": (train + ["--train_steps=99999999999999999999"], ["train_steps=99999999999999999999"]),
        "negative seed": (train + ["--seed=-1"], ["seed=-1"]),
        "corrupt folder image": (train + ["--dataset=folder", f"--data_dir={tmp_path / 'pictures'}"],
                                 [str(tmp_path / "pictures" / "cats" / "broken.png")]),
        "huge image": (["tools/invert.py", f"--workdir={trained}", f"--image={_huge_png(tmp_path / 'huge.png')}",
                        "--label=0"], ["huge.png", "too many pixels"]),
        "huge num": (["tools/generate.py", f"--workdir={trained}", "--num=100000000"], ["--num", "100000000"]),
        "cache is a file": (["tools/evaluate.py", f"--workdir={trained}", f"--classifier_cache={tmp_path / 'a_file'}",
                             "--num_samples=4", "--batch_size=4"], [f"--classifier_cache='{tmp_path / 'a_file'}'"]),
        "unknown dataset": (["tools/evaluate.py", f"--workdir={trained}", "--dataset=nope", "--num_samples=4",
                             "--batch_size=4"], ["'nope'"]),
        "unwritable output": (["tools/export.py", f"--workdir={trained}", "--output=/proc/x"], ["--output='/proc/x'"]),
        "truncated original": (["tools/import_original.py", f"--checkpoint={truncated}", "--attention=ylg",
                                f"--workdir={tmp_path / 'imported'}"], [str(truncated), "truncated or corrupt"]),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {name: pool.submit(run_tool, arguments[0], *arguments[1:], cwd=tmp_path, timeout=300)
                   for name, (arguments, _) in cases.items()}
        results = {name: future.result() for name, future in futures.items()}
    for name, (_, fragments) in cases.items():
        assert_one_line_error(results[name], *fragments)
    assert not (tmp_path / "new_run").exists() and not (tmp_path / "imported").exists()


@pytest.mark.parametrize("script", ["experiments/train.py", "tools/export.py", "tools/import_original.py"])
def test_help_exits_zero(tmp_path, script):
    result = run_tool(script, "--help", cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert "--workdir" in result.stdout + result.stderr


def test_remove_empty_directories_keeps_any_file(tmp_path):
    (tmp_path / "a" / "b").mkdir(parents=True)
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "file").write_text("x")
    assert not files.remove_empty_directories(tmp_path)
    assert not (tmp_path / "a").exists() and (tmp_path / "c" / "file").exists()
