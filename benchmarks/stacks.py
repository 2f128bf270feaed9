"""The paper stack (TF 2.15.1) and the current stack (TF 2.21) side by side on this machine.

For each interpreter named by --pythons (each one a virtual environment of one stack; by default the two
that `.ci/run` makes), in one run, alternating which stack goes first in each round:

- demo training: `experiments/train.py` with the `demo` preset for --demo_steps steps in a fresh work
  directory; steps/s is the median of the per-loop rates the run prints, leaving out the first loop (it
  includes tracing);
- the 128x128 `ylg` training step: one `benchmarks/train_step.py` case (`ylg:128`, the preset as shipped,
  block-sparse, at --channels), its median seconds per step.

Prints a table and writes JSON (--output). Ratios are current / paper for seconds per step.

Usage:
  python benchmarks/stacks.py [--pythons=.venv-paper/bin/python,.venv-current/bin/python] [--rounds=2]
      [--demo_steps=300] [--channels=32] [--output=stacks.json]
"""

import json
import os
import pathlib
import re
import statistics
import subprocess
import tempfile


from absl import flags  # noqa: E402

import common  # noqa: E402  (beside this script)
from ylg_tf import command_line  # noqa: E402

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
STEPS_PER_SECOND = re.compile(r"([0-9.]+) steps/s")

flags.DEFINE_string(
    "pythons", ".venv-paper/bin/python,.venv-current/bin/python",
    "Comma-separated interpreters, one per stack's virtual environment.",
)
flags.DEFINE_integer("rounds", 2, "Rounds; each runs every stack once, alternating the order.")
flags.DEFINE_integer("demo_steps", 300, "Demo training steps per run.")
flags.DEFINE_integer("demo_steps_per_loop", 50, "Demo steps per printed loop.")
flags.DEFINE_integer("channels", 32, "gf = df of the 128x128 ylg step (the paper: 64).")
flags.DEFINE_integer("timeout_seconds", 1800, "Give up on one measurement after this long.")
flags.DEFINE_string("output", None, "Write the results as JSON to this file.")
FLAGS = flags.FLAGS


def stack_description(python):
    code = "import sys, tensorflow as tf; print(sys.version.split()[0], tf.__version__)"
    completed = subprocess.run(
        [python, "-c", code], capture_output=True, text=True, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    )
    if completed.returncode != 0:
        raise ValueError(f"--pythons: {python} cannot import tensorflow")
    python_version, tensorflow_version = completed.stdout.split()
    return dict(python=python, python_version=python_version, tensorflow=tensorflow_version)


def demo_steps_per_second(python):
    with tempfile.TemporaryDirectory() as workdir:
        completed = subprocess.run(
            [python, str(REPOSITORY_ROOT / "experiments" / "train.py"), f"--workdir={workdir}",
             f"--train_steps={FLAGS.demo_steps}", f"--steps_per_loop={FLAGS.demo_steps_per_loop}",
             f"--checkpoint_every={FLAGS.demo_steps}"],
            capture_output=True, text=True, timeout=FLAGS.timeout_seconds,
        )
    rates = [float(match) for match in STEPS_PER_SECOND.findall(completed.stdout)]
    if completed.returncode != 0 or len(rates) < 2:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        return dict(status=f"failed (exit {completed.returncode}): {last}")
    return dict(status="ok", loop_steps_per_second=rates, steps_per_second=statistics.median(rates[1:]))


def ylg_step_seconds(python):
    command = [
        python, str(REPOSITORY_ROOT / "benchmarks" / "train_step.py"), "--case=ylg:128", "--presets=ylg",
        "--reference=ylg", "--sizes=128", f"--channels={FLAGS.channels}",
    ]
    return common.run_case_subprocess(command, FLAGS.timeout_seconds)


def main(argv):
    pythons = [path for path in FLAGS.pythons.split(",") if path]
    if len(pythons) < 2:
        raise ValueError(f"--pythons={FLAGS.pythons!r} must name at least two interpreters")
    for python in pythons:
        if not os.path.isfile(python):
            raise ValueError(f"--pythons: {python!r} does not exist (run .ci/run first, or name the venvs)")
    stacks = [stack_description(python) for python in pythons]
    samples = {python: dict(demo=[], ylg_step=[]) for python in pythons}
    for round_index in range(FLAGS.rounds):
        order = pythons if round_index % 2 == 0 else pythons[::-1]
        for python in order:
            print(f"round {round_index + 1}/{FLAGS.rounds}: {python}", flush=True)
            samples[python]["demo"].append(demo_steps_per_second(python))
            samples[python]["ylg_step"].append(ylg_step_seconds(python))

    results = []
    for stack in stacks:
        measured = samples[stack["python"]]
        demo_rates = [run["steps_per_second"] for run in measured["demo"] if run["status"] == "ok"]
        step_times = [second for run in measured["ylg_step"] if run.get("status") == "ok" for second in run["seconds"]]
        results.append(dict(
            stack,
            demo_steps_per_second=statistics.median(demo_rates) if demo_rates else None,
            ylg_128_step_seconds=statistics.median(step_times) if step_times else None,
            runs=measured,
        ))

    reference = results[0]
    print()
    print(f"{'python':>8} {'tensorflow':>11} {'demo steps/s':>13} {'ylg 128 s/step':>15} {'s/step vs first':>16}")
    for result in results:
        ratio = None
        if result["ylg_128_step_seconds"] and reference["ylg_128_step_seconds"]:
            ratio = result["ylg_128_step_seconds"] / reference["ylg_128_step_seconds"]
        result["ylg_step_ratio_to_first"] = ratio
        demo = result["demo_steps_per_second"]
        step = result["ylg_128_step_seconds"]
        print(f"{result['python_version']:>8} {result['tensorflow']:>11} "
              f"{demo if demo is None else round(demo, 2)!s:>13} {step if step is None else round(step, 3)!s:>15} "
              f"{ratio if ratio is None else round(ratio, 3)!s:>16}")
    report = dict(
        machine=common.machine_description(), rounds=FLAGS.rounds, demo_steps=FLAGS.demo_steps,
        channels=FLAGS.channels, stacks=results,
    )
    if FLAGS.output:
        pathlib.Path(FLAGS.output).write_text(json.dumps(report, indent=2))
        print(f"wrote {FLAGS.output}")


if __name__ == "__main__":
    command_line.hide_tensorflow_start_up_messages()
    command_line.run(main)
