"""What the default demo learns in the time a newcomer waits: its wall time and the built-in classifier's
class-conditional accuracy, over several seeds.

Each seed runs the README's command, `python experiments/train.py` (the `demo` preset), as a newcomer would,
with --seed=S and its own work directory, and is timed from the process's start to its end (start-up,
tracing, training, the final summaries and the export, and the demo's own accuracy line; the install and the
built-in classifier's one-off training, which this script does first, excluded). Then `tools/evaluate.py`
scores the run's final generator with the built-in classifier: class-conditional accuracy (the share of
samples classified as the class they were drawn for; chance 10%), per class, FID and IS, on --num_samples
samples. The demo's own line ("built-in classifier recognises N% ...") is read back too; it scores other
latents (the training seed's) so it differs from the evaluation's by sampling noise only.

Usage:
  python benchmarks/demo_quality.py [--seeds=0,1,2] [--output=demo_quality.json] [--num_samples=1000]
      [--root=DIR] [--train_flag=--config.training.train_steps=1500 ...]

--train_flag adds a flag to every training command (to try other settings than the preset's).
"""

import argparse
import json
import os
import pathlib
import re
import subprocess
import sys
import tempfile
import time

REPOSITORY = pathlib.Path(__file__).resolve().parent.parent

import common  # noqa: E402  (beside this script)

DEMO_LINE = re.compile(r"built-in classifier recognises (\d+)% of samples")


def run(command, log_path):
    """Runs `command` (stdout and stderr to `log_path`); its wall seconds and stdout text."""
    environment = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
    start = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True, env=environment, cwd=REPOSITORY)
    seconds = time.perf_counter() - start
    log_path.write_text(completed.stdout + completed.stderr)
    if completed.returncode != 0:
        last = (completed.stderr.strip().splitlines() or ["no output"])[-1]
        raise RuntimeError(f"{' '.join(command)} failed (exit {completed.returncode}): {last}; see {log_path}")
    return seconds, completed.stdout


def measure_seed(seed, root, train_flags, num_samples):
    workdir = root / f"seed_{seed}"
    train_seconds, output = run(
        [sys.executable, "experiments/train.py", f"--workdir={workdir}", f"--seed={seed}", *train_flags],
        root / f"train_seed_{seed}.log")
    match = DEMO_LINE.search(output)
    result_path = root / f"evaluation_seed_{seed}.json"
    run([sys.executable, "tools/evaluate.py", f"--workdir={workdir}", f"--num_samples={num_samples}",
         "--batch_size=250", f"--output={result_path}"], root / f"evaluate_seed_{seed}.log")
    evaluation = json.loads(result_path.read_text())
    return {
        "seed": seed,
        "train_seconds": round(train_seconds, 1),
        "demo_line_accuracy": int(match.group(1)) / 100 if match else None,
        "class_accuracy": evaluation["class_accuracy"]["accuracy"],
        "per_class_accuracy": evaluation["class_accuracy"]["per_class"],
        "fid": evaluation["fid"],
        "inception_score": evaluation["inception_score"],
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--num_samples", type=int, default=1000)
    parser.add_argument("--output", default="demo_quality.json")
    parser.add_argument("--root", default=None, help="Where the work directories go (default: a new temporary one).")
    parser.add_argument("--train_flag", action="append", default=[], help="A flag added to every training command.")
    arguments = parser.parse_args()
    seeds = [int(seed) for seed in arguments.seeds.split(",")]
    root = pathlib.Path(arguments.root or tempfile.mkdtemp(prefix="demo_quality_"))
    root.mkdir(parents=True, exist_ok=True)

    # The built-in classifier trains once per user cache (about 15 s); not part of any seed's time.
    run([sys.executable, "-c", "from ylg_tf import command_line; from ylg_tf.evaluation import builtin_classifier; "
         "builtin_classifier.load_or_train(command_line.default_classifier_cache_directory())"],
        root / "classifier.log")
    from ylg_tf import command_line

    command_line.hide_tensorflow_start_up_messages()
    from ylg_tf.data.builtin_shapes import CLASS_NAMES

    rows = []
    print(f"{'seed':>4}  {'train s':>7}  {'accuracy':>8}  {'demo line':>9}  {'FID':>7}  {'IS':>5}  weakest class")
    for seed in seeds:
        row = measure_seed(seed, root, arguments.train_flag, arguments.num_samples)
        rows.append(row)
        weakest = min(range(len(CLASS_NAMES)), key=lambda label: row["per_class_accuracy"][label] or 0.0)
        demo_line = "-" if row["demo_line_accuracy"] is None else f"{row['demo_line_accuracy']:.0%}"
        print(f"{seed:>4}  {row['train_seconds']:>7.1f}  {row['class_accuracy']:>8.1%}  {demo_line:>9}  "
              f"{row['fid']:>7.3f}  {row['inception_score']:>5.2f}  {CLASS_NAMES[weakest]} "
              f"{row['per_class_accuracy'][weakest]:.0%}", flush=True)
    accuracies = [row["class_accuracy"] for row in rows]
    seconds = [row["train_seconds"] for row in rows]
    summary = {
        "minimum_accuracy": min(accuracies),
        "mean_accuracy": sum(accuracies) / len(accuracies),
        "maximum_train_seconds": max(seconds),
        "mean_train_seconds": sum(seconds) / len(seconds),
    }
    print(f"accuracy: min {summary['minimum_accuracy']:.1%}, mean {summary['mean_accuracy']:.1%}; "
          f"train time: mean {summary['mean_train_seconds']:.0f} s, max {summary['maximum_train_seconds']:.0f} s")
    report = {
        "rows": rows,
        "summary": summary,
        "train_flags": arguments.train_flag,
        "num_samples": arguments.num_samples,
        "class_names": list(CLASS_NAMES),
        "machine": common.machine_description(),
        "work_directories": str(root),
    }
    pathlib.Path(arguments.output).write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {arguments.output}")


if __name__ == "__main__":
    main()
