"""What the benchmark scripts share: one case per subprocess, its peak memory, and the machine description.

A benchmark script re-runs itself with `--case=...` for every case; the child prints one line
`BENCHMARK_RESULT {json}` (`print_result`) and the parent reads it back (`run_case_subprocess`), so each
case's peak resident set size is its own and no case inherits another's graphs, caches or thread pools.
"""

import json
import os
import platform
import resource
import subprocess

RESULT_PREFIX = "BENCHMARK_RESULT "


def peak_rss_bytes():
    """This process's peak resident set size so far."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux reports KiB


def print_result(result):
    """The child's side: hands one JSON-serialisable dict to the parent on stdout."""
    print(RESULT_PREFIX + json.dumps(result), flush=True)


def run_case_subprocess(command, timeout_seconds):
    """The parent's side: runs `command` and returns the dict its child printed.

    A child that times out or prints no result gives {"status": "failed...: <last stderr line>"} instead.
    """
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    try:
        completed = subprocess.run(
            command, capture_output=True, text=True, timeout=timeout_seconds, env=environment
        )
    except subprocess.TimeoutExpired:
        return dict(status=f"failed: timed out after {timeout_seconds} s")
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line[len(RESULT_PREFIX):])
    last_error = (completed.stderr.strip().splitlines() or ["no output"])[-1]
    return dict(status=f"failed (exit {completed.returncode}): {last_error}")


def machine_description():
    """Where the numbers were measured (the load average says whether the machine was quiet)."""
    import tensorflow as tf

    return dict(
        platform=platform.platform(),
        processor=platform.processor(),
        cpu_count=os.cpu_count(),
        tensorflow=tf.__version__,
        load_average=os.getloadavg(),
    )
