"""SIGKILL at random points of a short run, five times in a row, then a run to the end: the result equals an
uninterrupted run bit for bit (with op determinism), and no file of an interrupted write is left behind.

Each kill is a real SIGKILL of a training process, at a random moment after its training loop was traced
(so it may land inside a step, a sample write or a checkpoint save); each next process resumes what the
killed one left. One chain of kills keeps the test to seven processes (the uninterrupted reference runs
beside the chain). The kill times are drawn from a seed printed on failure.
"""

import fnmatch
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import tensorflow as tf

from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import get_preset

KILLS = 5
CONFIG = get_preset("test").replace(
    model={"attention": "none", "generator_channels": 16, "discriminator_channels": 16},
    training={"train_steps": 40, "steps_per_loop": 2, "checkpoint_every": 2},
)
MAXIMUM_KILL_DELAY_SECONDS = 1.5  # after tracing; 20 loops with a checkpoint each take several seconds
LEFTOVER_PATTERNS = ("*_temp", "*.tmp*", ".export.*", "lock")

DRIVER = """
import json, sys
import tensorflow as tf
import tf_keras
tf.config.experimental.enable_op_determinism()
from ylg_tf.config import ExperimentConfig
from ylg_tf.training.experiment import run_training
config = ExperimentConfig.from_dict(json.loads(sys.argv[2]))
tf_keras.utils.set_random_seed(config.training.seed)
run_training(config, sys.argv[1], tf.distribute.get_strategy(), log=lambda message: print(message, flush=True))
"""


def _start(workdir):
    return subprocess.Popen(
        [sys.executable, "-c", DRIVER, str(workdir), CONFIG.to_json()],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _kill_after_tracing(process, delay):
    """Reads the process's lines until its loop is traced, waits `delay` seconds and SIGKILLs it.
    Returns the lines it printed and whether it was still running when killed."""
    lines = []
    for line in process.stdout:
        lines.append(line.rstrip("\n"))
        if line.startswith("traced the training loop") or line.startswith("nothing to train"):
            break
    time.sleep(delay)
    running = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    lines += [line.rstrip("\n") for line in process.stdout]
    process.stdout.close()
    return lines, running


def _variables(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map() if "OBJECT_GRAPH" not in key}


def _leftovers(directory):
    found = []
    for root, directories, file_names in os.walk(directory):
        for name in directories + file_names:
            if any(fnmatch.fnmatch(name, pattern) for pattern in LEFTOVER_PATTERNS):
                found.append(os.path.join(root, name))
    return found


def test_sigkill_at_random_points_then_resume_equals_an_uninterrupted_run(tmp_path):
    seed = int.from_bytes(os.urandom(4), "little")
    delays = np.random.default_rng(seed).uniform(0.0, MAXIMUM_KILL_DELAY_SECONDS, KILLS)
    reference = _start(tmp_path / "reference")
    killed = tmp_path / "killed"
    reports = []
    for delay in delays:
        lines, running = _kill_after_tracing(_start(killed), delay)
        steps = [line.split()[1] for line in lines if line.startswith("step ")]
        reports.append(f"killed {delay:.2f} s after tracing (running: {running}), last step line {steps[-1:]}")
    final = _start(killed)
    final_output, _ = final.communicate(timeout=600)
    reference_output, _ = reference.communicate(timeout=600)
    context = f"seed {seed}: " + "; ".join(reports)
    assert reference.returncode == 0 and final.returncode == 0, (context, final_output[-2000:])
    assert sum("running: True" in report for report in reports) >= KILLS - 1, context  # kills hit running work
    assert "exported the generator" in final_output

    expected = _variables(workdirs.latest_checkpoint(tmp_path / "reference"))
    resumed = _variables(workdirs.latest_checkpoint(killed))
    assert workdirs.checkpoint_step(workdirs.latest_checkpoint(killed)) == CONFIG.training.train_steps
    assert expected.keys() == resumed.keys(), context
    for key in expected:
        np.testing.assert_array_equal(resumed[key], expected[key], err_msg=f"{key} ({context})")
    # The same checkpoints and samples, nothing of an interrupted write.
    for subdirectory in ("checkpoints", "samples"):
        assert sorted(os.listdir(killed / subdirectory)) == sorted(
            os.listdir(tmp_path / "reference" / subdirectory)), (subdirectory, context)
    assert _leftovers(killed) == [], context
    assert json.loads((killed / "config.json").read_text()) == json.loads(CONFIG.to_json())
