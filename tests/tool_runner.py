"""Running an entry point as a user would (a subprocess) and checking its one-line user errors."""

import os
import subprocess
import sys

from conftest import REPOSITORY_ROOT

EXIT_USER_ERROR = 2  # ylg_tf.command_line.EXIT_USER_ERROR, repeated so a broken import cannot hide it


def run_tool(relative_script_path, *arguments, cwd, timeout=600, env=None):
    """Runs `python <repository>/<relative_script_path> arguments...` in `cwd`; returns the CompletedProcess.

    TensorFlow's C++ logs are silenced (TF_CPP_MIN_LOG_LEVEL=3) so stderr holds what the tool prints;
    `env` adds or overrides environment variables.
    """
    environment = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    return subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / relative_script_path), *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
    )


def assert_one_line_error(result, *fragments):
    """Exit code 2, no traceback, exactly one `error:` line on stderr, containing every fragment."""
    stderr = result.stderr
    assert result.returncode == EXIT_USER_ERROR, f"exit code {result.returncode}:\n{stderr[-3000:]}"
    assert "Traceback" not in stderr, stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
