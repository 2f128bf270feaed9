"""experiments/train.py end to end, and its one-line errors for bad input."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPOSITORY_ROOT
from ylg_tf import workdir as workdirs

SCRIPT = REPOSITORY_ROOT / "experiments" / "train.py"


def _train(*arguments, cwd, timeout=900):
    return subprocess.run(
        [sys.executable, str(SCRIPT), *arguments],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=timeout,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )


def _closed_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_demo_preset_end_to_end(tmp_path):
    # Run from another directory: the script must not depend on the working directory.
    result = _train("--preset=demo", "--train_steps=4", "--steps_per_loop=2", "--checkpoint_every=2",
                    "--batch_size=4", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    workdir = tmp_path / "runs" / "demo"
    assert "samples in" in result.stdout and str(workdir / "samples" / "latest.png") in result.stdout
    config = json.loads((workdir / "config.json").read_text())
    assert config["training"]["train_steps"] == 4 and config["training"]["batch_size"] == 4
    assert config["data"]["dataset"] == "builtin"
    assert workdirs.checkpoint_step(workdirs.latest_checkpoint(workdir)) == 4
    assert (workdir / "samples" / "latest.png").is_file()
    assert list((workdir / "summaries").glob("events.out.tfevents.*"))
    # The export reloads and gives the Keras generator's images.
    _, generator, _, _ = workdirs.restore_networks(str(workdir))
    serve = tf.saved_model.load(str(workdir / "export")).signatures["serving_default"]
    z = tf.random.stateless_normal([2, generator.model_config.z_dim], seed=[3, 4])
    labels = tf.constant([1, 9], tf.int32)
    exported = serve(z=z, labels=labels)["images"].numpy().astype(int)
    expected = np.clip(np.round((generator((z, labels), training=False).numpy() + 1) * 127.5), 0, 255)
    assert np.max(np.abs(exported - expected)) <= 1
    # A second invocation resumes instead of starting over.
    again = _train("--preset=demo", "--train_steps=6", "--steps_per_loop=2", "--checkpoint_every=2",
                   "--batch_size=4", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "resumed at step 4" in again.stdout


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--preset=nonsense"], "'nonsense'"),
        (["--dataset=imagenet_typo"], "'imagenet_typo'"),
        (["--image_size=48"], "image_size=48"),
        (["--generator_channels=20"], "generator_channels=20"),
        (["--dataset=folder", "--data_dir=/does/not/exist"], "/does/not/exist"),
        ([f"--tpu=grpc://127.0.0.1:{_closed_port()}"], "unreachable"),
        (["--train_steps=abc"], "train_steps"),
        (["--eval_every=2", "--inception=/no/such/module"], "/no/such/module"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, arguments, named):
    result = _train(*arguments, f"--workdir={tmp_path / 'w'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert named in lines[0]
