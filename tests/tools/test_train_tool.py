"""experiments/train.py end to end, and its one-line errors for bad input."""

import json
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from conftest import REPOSITORY_ROOT
from tool_runner import assert_one_line_error, run_tool
from ylg_tf import latents, pictures
from ylg_tf.data import builtin_shapes
from ylg_tf.evaluation import class_accuracy
from ylg_tf.config import PRESET_DESCRIPTIONS, PRESETS, get_preset
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
    assert (workdir / "samples" / "classes_latest.png").is_file()  # a row per class
    # The last line before "done" is the built-in classifier's verdict on the final generator: the share the
    # scorer finds on the same 1000 evaluation latents.
    _, generator, _, _ = workdirs.restore_networks(str(workdir))
    scorer = class_accuracy.make_class_accuracy_scorer(get_preset("demo"), os.environ["YLG_TF_CACHE_DIR"])
    expected_line = class_accuracy.recognition_line(scorer(generator), builtin_shapes.CLASS_NAMES)
    lines = result.stdout.strip().splitlines()
    assert lines[-2] == expected_line and lines[-1].startswith("done at step 4")
    # The export reloads and gives the Keras generator's images.
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
    # Each start is recorded beside config.json: how it ran, what the command line chose.
    starts = json.loads((workdir / "runtime.json").read_text())["starts"]
    assert [start["start_step"] for start in starts] == [0, 4]
    for start in starts:
        assert start["strategy"] == type(tf.distribute.get_strategy()).__name__  # one CPU: the default one
        assert (start["num_replicas"], start["num_hosts"], start["jit_compile"], start["tpu"]) == (1, 1, False, None)
        assert start["tensorflow"] == tf.__version__ and start["command_line"][0] == str(SCRIPT)
    assert "--train_steps=6" in starts[1]["command_line"] and "--train_steps=6" not in starts[0]["command_line"]
    # --config_file starts from the work directory's own config; a flag changes one field of it.
    before = json.loads((workdir / "config.json").read_text())
    from_file = _train(f"--config_file={workdir / 'config.json'}", f"--workdir={workdir}",
                       "--config.training.generator_learning_rate=2e-4", cwd=tmp_path)
    assert from_file.returncode == 0, from_file.stderr[-3000:]
    assert "generator_learning_rate: 0.0004 -> 0.0002 (applied from step 6)" in from_file.stdout
    assert "nothing to train: step 6 is train_steps" in from_file.stdout
    after = json.loads((workdir / "config.json").read_text())
    before["training"]["generator_learning_rate"] = 2e-4
    assert after == before
    assert len(json.loads((workdir / "runtime.json").read_text())["starts"]) == 3


@pytest.mark.parametrize(
    "arguments, named",
    [
        (["--preset=nonsense"], "'nonsense'"),
        (["--dataset=imagenet_typo"], "'imagenet_typo'"),
        (["--config.model.image_size=48"], "image_size=48"),
        (["--config.model.generator_channels=20"], "generator_channels=20"),
        (["--dataset=folder", "--data_dir=/does/not/exist"], "/does/not/exist"),
        ([f"--tpu=grpc://127.0.0.1:{_closed_port()}"], "unreachable"),
        (["--train_steps=abc"], "--train_steps='abc': training.train_steps takes an integer"),
        (["--eval_every=2", "--inception=/no/such/module"], "/no/such/module"),
        # The paper presets evaluate by default; without their classifier the error says how to train anyway.
        (["--preset=ylg", "--inception=/no/such/module"], "eval_every=1000 steps; --eval_every=0 trains without"),
        (["--config.model.generator_attention_resolutions=16,64"], "has no 64x64 feature map; choose from (8, 16, 32)"),
        (["--config.model.discriminator_attention_resolutions=8,x"],
         "--config.model.discriminator_attention_resolutions='8,x': model.discriminator_attention_resolutions takes "
         "comma-separated integers"),
        (["--config.model.attention_block=residual"], "needs attention='none', got attention='ylg'"),
        (["--config.training.discriminator_steps=0"], "discriminator_steps=0"),
        (["--config.model.batch_norm_decay=1.5"], "batch_norm_decay=1.5 must be in [0, 1)"),
        (["--config.training.eval_protocol=bogus"], "eval_protocol='bogus' is not one of ('standard', 'ylg')"),
        (["--config.training.generator_ema_decy=0.9"],
         "--config.training.generator_ema_decy: the config has no field 'training.generator_ema_decy'; did you mean "
         "training.generator_ema_decay?"),
        (["--config.training.generator_ema_decay=high"], "--config.training.generator_ema_decay='high'"),
        (["--config.training.generator_ema_decay=1.5"], "generator_ema_decay=1.5 must be in [0, 1)"),
        (["--image_size=64"], "unknown flag --image_size; config fields are set as --config.model.image_size=VALUE"),
        (["--seed=1", "--config.training.seed=2"], "training.seed is set twice, by --seed='1' and by"),
        (["--config_file=/no/such/config.json"], "--config_file='/no/such/config.json': no such file"),
        (["--preset=test", "--config_file=/no/such/config.json"], "--preset='test' and --config_file="),
        (["--batch_size=100000000"], "batch_size=100000000: one batch of 32x32 float32 images is 1144.4 GiB"),
    ],
)
def test_bad_input_gives_one_line_and_exit_code_2(tmp_path, arguments, named):
    result = _train(*arguments, f"--workdir={tmp_path / 'w'}", cwd=tmp_path, timeout=120)
    assert result.returncode == 2, (result.stdout[-2000:], result.stderr[-2000:])
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr[-2000:]
    assert named in lines[0]


def test_an_unusable_classifier_cache_is_one_warning_and_training_goes_on(tmp_path):
    blocker = tmp_path / "not_a_directory"
    blocker.write_text("a file where the cache directory would be")
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--preset=test", f"--workdir={tmp_path / 'run'}"], capture_output=True,
        text=True, cwd=tmp_path, timeout=900,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "YLG_TF_CACHE_DIR": str(blocker / "cache")})
    assert result.returncode == 0, result.stderr[-3000:]
    warnings = [line for line in result.stdout.splitlines() if line.startswith("warning: the samples will not")]
    assert len(warnings) == 1 and "recognises" not in result.stdout
    assert "done at step 4" in result.stdout


def test_list_presets_prints_one_line_per_preset_and_config_file_needs_a_workdir(tmp_path):
    listed = _train("--list_presets", cwd=tmp_path, timeout=120)
    assert listed.returncode == 0 and not listed.stderr.strip(), listed.stderr[-2000:]
    assert listed.stdout.splitlines() == [
        f"{name:<{max(map(len, PRESETS))}}  {PRESET_DESCRIPTIONS[name]}" for name in PRESETS
    ]
    (tmp_path / "config.json").write_text(get_preset("test").to_json())
    result = _train(f"--config_file={tmp_path / 'config.json'}", cwd=tmp_path, timeout=120)
    assert_one_line_error(result, f"--config_file='{tmp_path / 'config.json'}' needs --workdir")
    assert not (tmp_path / "runs").exists()


def test_the_ema_switched_on_from_the_command_line_trains_and_generate_uses_it(tmp_path):
    """--config.training.generator_ema_decay (no hand-written flag) gives an EMA generator in the checkpoint,
    and tools/generate.py draws with it by default (--nouse_ema: with the raw generator)."""
    workdir = tmp_path / "ema"
    # A high G rate, so that two steps move the raw weights visibly away from their slow moving average.
    result = _train("--preset=test", f"--workdir={workdir}", "--config.training.generator_ema_decay=0.999",
                    "--config.training.generator_learning_rate=1e-2", "--train_steps=2", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((workdir / "config.json").read_text())["training"]["generator_ema_decay"] == 0.999
    reader = tf.train.load_checkpoint(workdirs.latest_checkpoint(workdir))
    assert any(key.startswith("generator_ema/") for key in reader.get_variable_to_shape_map())
    _, averaged, _, step = workdirs.restore_networks(str(workdir), use_ema=True)
    _, raw, _, _ = workdirs.restore_networks(str(workdir), use_ema=False)
    assert step == 2 and averaged.name == "generator_ema" and raw.name == "generator"
    differences = [np.max(np.abs(a.numpy() - b.numpy())) for a, b in zip(averaged.variables, raw.variables)]
    assert len(differences) == len(raw.variables) and max(differences) > 1e-3

    generate = ["tools/generate.py", f"--workdir={workdir}", "--labels=0,3", "--num=2", "--seed=5"]
    drawn = {}
    for name, flag in (("averaged", "--use_ema"), ("raw", "--nouse_ema")):
        completed = run_tool(*generate, flag, f"--output_dir={tmp_path / name}", cwd=tmp_path)
        assert completed.returncode == 0, completed.stderr[-3000:]
        drawn[name] = np.asarray(Image.open(tmp_path / name / "class_grid.png"))
    for name, generator in (("averaged", averaged), ("raw", raw)):
        z, labels = latents.class_grid_inputs([0, 3], 2, generator.model_config.z_dim, 5)
        expected = pictures.class_grid_picture(latents.generate_images(generator, z, labels), 2)
        np.testing.assert_array_equal(drawn[name], expected)
    assert np.mean(np.abs(drawn["averaged"].astype(int) - drawn["raw"].astype(int))) > 1.0


def test_placement_flags_reach_the_model_and_generate_draws_the_chosen_layer(tmp_path):
    """SAGAN-paper switches from the command line, then tools/generate.py --attention_layer on that run."""
    workdir = tmp_path / "placed"
    result = _train(
        "--preset=test", f"--workdir={workdir}", "--config.model.generator_attention_resolutions=8,16",
        "--config.model.discriminator_attention_resolutions=4", "--config.model.generator_spectral_norm=false",
        "--config.training.discriminator_steps=2", "--config.training.generator_learning_rate=2e-4", "--train_steps=2",
        cwd=tmp_path,
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
