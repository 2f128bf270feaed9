"""ylg_tf.command_line: entry points keep TensorFlow's C++ start-up messages off the terminal unless asked
for, the tools share the flags it defines, and which errors are the user's (one line, exit code 2).

TF 2.16+ writes lines such as "All log messages before absl::InitializeLog() is called are written to
STDERR" while it loads, whatever TF_CPP_MIN_LOG_LEVEL says; a user mistake must still print one line.
"""

import os
import uuid

import pytest
import tensorflow as tf

from tool_runner import assert_one_line_error, run_tool
from ylg_tf import command_line


def test_a_user_mistake_after_tensorflow_loaded_prints_exactly_one_line(tmp_path):
    # export.py imports TensorFlow before it reads the work directory; TF_CPP_MIN_LOG_LEVEL is unset.
    result = run_tool("tools/export.py", f"--workdir={tmp_path / 'missing'}", cwd=tmp_path)
    assert_one_line_error(result, "missing")
    assert result.stderr.count("\n") == 1, result.stderr


def test_tensorflow_messages_are_shown_when_the_log_level_asks_for_them(tmp_path):
    quiet = run_tool("tools/export.py", f"--workdir={tmp_path / 'missing'}", cwd=tmp_path)
    verbose = run_tool(
        "tools/export.py", f"--workdir={tmp_path / 'missing'}", cwd=tmp_path, env={"TF_CPP_MIN_LOG_LEVEL": "0"}
    )
    assert verbose.returncode == quiet.returncode == 2
    # At level 0 TensorFlow logs its start-up (CPU features, oneDNN, CUDA probing) before our error line.
    assert len(verbose.stderr.splitlines()) > len(quiet.stderr.splitlines()) == 1, verbose.stderr
    assert verbose.stderr.splitlines()[-1] == quiet.stderr.splitlines()[-1]


def test_a_failing_tensorflow_import_shows_what_tensorflow_printed(tmp_path):
    # A broken `tensorflow` package must not fail silently: the hidden start-up output is replayed.
    fake_package = tmp_path / "site" / "tensorflow"
    fake_package.mkdir(parents=True)
    (fake_package / "__init__.py").write_text(
        "import os\nos.write(2, b'loader said why\\n')\nraise ImportError('broken tensorflow')\n"
    )
    result = run_tool(
        "tools/export.py", f"--workdir={tmp_path}", cwd=tmp_path,
        env={"PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), os.environ.get("PYTHONPATH", "")])},
    )
    assert result.returncode != 0
    assert "loader said why" in result.stderr and "broken tensorflow" in result.stderr


@pytest.mark.parametrize("tool, verb", [("evaluate", "Score"), ("export", "Export"), ("generate", "Use"),
                                        ("invert", "Use")])
def test_the_shared_model_source_flags_are_listed_as_the_tool_own(tmp_path, tool, verb):
    # command_line.define_model_source_flags defines them once for every tool, with each tool's own help.
    result = run_tool(f"tools/{tool}.py", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    own_flags = result.stdout.split(f"tools/{tool}.py:\n", 1)[1].split("Try --helpfull")[0]
    own_flags = " ".join(own_flags.split())
    assert ("--checkpoint: Checkpoint prefix or directory, or 'best' (the lowest FID of training's evaluations); "
            "default: the work directory's latest." in own_flags)
    assert f"--[no]use_ema: {verb} the moving average of G's weights when the checkpoint has one. (default: 'true')" in own_flags
    assert "--workdir: Work directory written by training or tools/import_original.py." in own_flags


def test_the_shared_workdir_flag_is_required(tmp_path):
    assert_one_line_error(run_tool("tools/generate.py", cwd=tmp_path), "--workdir must have a value other than None")


def test_file_errors_of_remote_paths_are_user_errors():
    # A missing gs:// object or a bucket without permission surfaces as tf.errors.*, not OSError.
    errors = command_line.user_errors()
    assert ValueError in errors and OSError in errors
    assert tf.errors.NotFoundError in errors and tf.errors.PermissionDeniedError in errors
    assert tf.errors.InternalError not in errors  # bugs keep their traceback
    with pytest.raises(errors):
        with tf.io.gfile.GFile(f"ram://nothing-{uuid.uuid4().hex}/config.json") as file:
            file.read()
