"""tools/import_original.py turns the original-code fixture checkpoint into a work directory that reproduces it.

Runs the tools as subprocesses (as a user would); every size is read from the fixture's fixture.json.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import ORIGINAL_FIXTURE_DIRECTORY
from tool_runner import assert_one_line_error, run_tool
from ylg_tf.storage import workdir
from ylg_tf.config import ExperimentConfig


def _run_tool(name, *arguments, cwd):
    # From another directory, to check the tools do not depend on the working directory.
    return run_tool(f"tools/{name}", *arguments, cwd=cwd)


@pytest.fixture(scope="module")
def description():
    return json.loads((ORIGINAL_FIXTURE_DIRECTORY / "fixture.json").read_text())


@pytest.fixture(scope="module")
def prefix(original_checkpoint_prefix):
    return original_checkpoint_prefix


@pytest.fixture(scope="module")
def imported(tmp_path_factory, prefix):
    directory = tmp_path_factory.mktemp("imported") / "workdir"
    result = _run_tool(
        "import_original.py", f"--checkpoint={prefix}", f"--workdir={directory}", "--attention=ylg",
        cwd=tmp_path_factory.getbasetemp(),
    )
    assert result.returncode == 0, result.stderr
    return dict(directory=directory, stdout=result.stdout)


def test_import_writes_a_work_directory_that_reproduces_the_original(imported, description):
    sizes = description["config"]
    checkpoint = description["checkpoint"]
    config = workdir.load_config(imported["directory"])
    assert isinstance(config, ExperimentConfig)
    model = config.model
    assert (model.image_size, model.generator_channels, model.discriminator_channels) == (
        sizes["image_size"],
        sizes["gf_dim"],
        sizes["df_dim"],
    )
    assert (model.num_classes, model.z_dim, model.attention) == (sizes["num_classes"], sizes["z_dim"], "ylg")
    assert config.data.dataset == "imagenet2012"
    # Every checkpoint variable except global_step is a network variable.
    assert f"imported {checkpoint['n_variables'] - 1} variables" in imported["stdout"]
    assert f"step {checkpoint['global_step']}" in imported["stdout"]

    _, generator, _, step = workdir.restore_networks(imported["directory"])
    assert step == checkpoint["global_step"]
    golden = np.load(ORIGINAL_FIXTURE_DIRECTORY / "golden.npz")
    images = generator((tf.constant(golden["in/z"]), tf.constant(golden["in/y_g"])), training=False).numpy()
    expected = golden["g_inf/image"]
    assert images.shape == expected.shape
    error = float(np.max(np.abs(images - expected)))
    assert error <= description["recommended_atol"]["g_inf/image"]["atol"], error


def test_import_rejects_user_mistakes_in_one_line(tmp_path, prefix, description, imported):
    # SAGAN and YLG checkpoints have the same variables: the attention must be named, not guessed.
    result = _run_tool("import_original.py", f"--checkpoint={prefix}", f"--workdir={tmp_path / 'a'}", cwd=tmp_path)
    assert_one_line_error(result, "--attention is required", "same variables and shapes")

    wrong = description["config"]["gf_dim"] * 2
    result = _run_tool(
        "import_original.py", f"--checkpoint={prefix}", f"--workdir={tmp_path / 'a'}", f"--gf_dim={wrong}",
        "--attention=ylg", cwd=tmp_path,
    )
    assert_one_line_error(result, f"--gf_dim={wrong}", f"gf_dim={description['config']['gf_dim']}")

    missing = str(tmp_path / "no_such.ckpt-1")
    result = _run_tool("import_original.py", f"--checkpoint={missing}", f"--workdir={tmp_path / 'b'}",
                       "--attention=ylg", cwd=tmp_path)
    assert_one_line_error(result, missing)
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    # An existing work directory is not overwritten by accident (checked before the checkpoint is read).
    result = _run_tool(
        "import_original.py", f"--checkpoint={missing}", f"--workdir={imported['directory']}", "--attention=ylg",
        cwd=tmp_path,
    )
    assert_one_line_error(result, "--overwrite")


def test_export_tool_exports_the_imported_work_directory(imported, description, tmp_path):
    output = tmp_path / "served"
    result = _run_tool("export.py", f"--workdir={imported['directory']}", f"--output={output}", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert str(output) in result.stdout and "serving_default" in result.stdout
    size = description["config"]["image_size"]
    assert f"(None, {size}, {size}, 3)" in result.stdout
    signature = tf.saved_model.load(str(output)).signatures["serving_default"]
    golden = np.load(ORIGINAL_FIXTURE_DIRECTORY / "golden.npz")
    served = signature(z=tf.constant(golden["in/z"]), labels=tf.constant(golden["in/y_g"]))["images"].numpy()
    expected = np.clip(np.round((golden["g_inf/image"] + 1.0) * 127.5), 0, 255).astype(np.uint8)
    # Float agreement is 1e-5, so a pixel may round to the neighbouring level; never further.
    assert served.shape == expected.shape
    assert int(np.max(np.abs(served.astype(np.int32) - expected))) <= 1
    assert np.mean(served == expected) > 0.99
    # An existing export is replaced only with --overwrite.
    before = (output / "saved_model.pb").read_bytes()
    again = _run_tool("export.py", f"--workdir={imported['directory']}", f"--output={output}", cwd=tmp_path)
    assert_one_line_error(again, str(output), "already holds an export", "--overwrite")
    assert (output / "saved_model.pb").read_bytes() == before
