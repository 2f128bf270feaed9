"""Running an entry point as a user would (a subprocess) and checking its one-line user errors."""

import os
import re
import subprocess
import sys

from conftest import REPOSITORY_ROOT

EXIT_USER_ERROR = 2  # ylg_tf.command_line.EXIT_USER_ERROR, repeated so a broken import cannot hide it


def run_tool(relative_script_path, *arguments, cwd, timeout=600, env=None):
    """Runs `python <repository>/<relative_script_path> arguments...` in `cwd`; returns the CompletedProcess.

    TF_CPP_MIN_LOG_LEVEL is left unset, as a user has it, so the tool's own default hides TensorFlow's
    C++ start-up messages; `env` adds or overrides environment variables.
    """
    environment = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / relative_script_path), *map(str, arguments)],
        capture_output=True,
        text=True,
        cwd=cwd,
        env=environment,
        timeout=timeout,
    )


# What must never reach a user's terminal beside our error line: tracebacks, Python warnings, and
# TensorFlow's C++ logs (TF 2.16+ absl format "I0000 00:00:..." and its preamble; TF 2.15's dated format).
NOISE = re.compile(
    r"Traceback|Warning: |All log messages before absl::InitializeLog"
    r"|^[IWEF]\d{4} \d\d:\d\d:\d\d|^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+: [IWEF] "
)


def assert_one_line_error(result, *fragments):
    """Exit code 2, exactly one `error:` line on stderr containing every fragment, and no traceback,
    warning or TensorFlow log line (the tool's own progress lines may precede the error)."""
    stderr = result.stderr
    assert result.returncode == EXIT_USER_ERROR, f"exit code {result.returncode}:\n{stderr[-3000:]}"
    assert not any(NOISE.search(line) for line in stderr.splitlines()), stderr[-3000:]
    errors = [line for line in stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, stderr[-3000:]
    for fragment in fragments:
        assert fragment in errors[0], errors[0]
    return errors[0]
