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
from ylg_tf.storage import workdir as workdirs

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
        (["--generator_attention_resolutions=16,64"], "has no 64x64 feature map; choose from (8, 16, 32)"),
        (["--discriminator_attention_resolutions=8,x"], "--discriminator_attention_resolutions='8,x'"),
        (["--attention_block=residual"], "needs attention='none', got attention='ylg'"),
        (["--discriminator_steps=0"], "discriminator_steps=0"),
        (["--batch_size=100000000"], "batch_size=100000000: one batch of 32x32 float32 images is 1144.4 GiB"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, arguments, named):
    result = _train(*arguments, f"--workdir={tmp_path / 'w'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert named in lines[0]


def test_placement_flags_reach_the_model_and_generate_draws_the_chosen_layer(tmp_path):
    """SAGAN-paper switches from the command line, then tools/generate.py --attention_layer on that run."""
    workdir = tmp_path / "placed"
    result = _train(
        "--preset=test", f"--workdir={workdir}", "--generator_attention_resolutions=8,16",
        "--discriminator_attention_resolutions=4", "--nogenerator_spectral_norm", "--discriminator_steps=2",
        "--generator_learning_rate=2e-4", "--train_steps=2", cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((workdir / "config.json").read_text())
    assert config["model"]["generator_attention_resolutions"] == [8, 16]
    assert config["model"]["discriminator_attention_resolutions"] == [4]
    assert config["model"]["generator_spectral_norm"] is False
    assert config["training"]["discriminator_steps"] == 2 and config["training"]["generator_learning_rate"] == 2e-4
    _, generator, discriminator, _ = workdirs.restore_networks(str(workdir))
    assert [layer.name for layer in generator.attention_layers.values()] == ["g_ops_8", "g_ops"]
    assert [layer.name for layer in discriminator.attention_layers.values()] == ["d_ops_4"]
    reader = tf.train.load_checkpoint(workdirs.latest_checkpoint(workdir))
    shapes = reader.get_variable_to_shape_map()
    assert any("generator/g_ops_8/" in key for key in shapes)
    assert reader.get_tensor("discriminator_optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE") == 4  # 2 steps x 2

    generate = REPOSITORY_ROOT / "tools" / "generate.py"
    common = [sys.executable, str(generate), f"--workdir={workdir}", "--labels=0", "--num=1", "--attention_at=16,8"]
    drawn = subprocess.run(
        common + ["--attention_layer=8", f"--output_dir={tmp_path / 'pictures'}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=600, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert drawn.returncode == 0, drawn.stderr[-3000:]
    assert "query 34 of the (8, 8) grid, 8 heads" in drawn.stdout  # pixel (16, 8) of 32x32 -> cell (4, 2)
    refused = subprocess.run(
        common + ["--attention_layer=32"], capture_output=True, text=True, cwd=tmp_path, timeout=600,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "error: the generator has no attention layer on 32x32 maps; its attention layers are on 8x8, 16x16"
    ]
