"""Entry points keep TensorFlow's C++ start-up messages off the terminal unless asked for.

TF 2.16+ writes lines such as "All log messages before absl::InitializeLog() is called are written to
STDERR" while it loads, whatever TF_CPP_MIN_LOG_LEVEL says; a user mistake must still print one line.
"""

import os

from tool_runner import assert_one_line_error, run_tool


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
