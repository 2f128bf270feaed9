"""The benchmark scripts: the train-step FLOP counter against hand counts, and one tiny run of each script."""

import json
import subprocess
import sys

import pytest
import tensorflow as tf

import train_step  # benchmarks/train_step.py (pytest.ini puts benchmarks/ on the path)
from conftest import REPOSITORY_ROOT
from fake_inception import write_fake_inception_savedmodel


def _run(script, *arguments):
    return subprocess.run(
        [sys.executable, str(REPOSITORY_ROOT / "benchmarks" / script), *arguments],
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_flop_counter_counts_live_products_in_nested_functions():
    @tf.function(jit_compile=True)
    def inner_product(matrix):
        return tf.matmul(matrix, matrix, transpose_a=True)  # [6, 3]^T [6, 3]: 3 x 3 outputs, inner size 6

    @tf.function
    def step(images, kernel, matrix, queries, keys):
        with tf.GradientTape() as tape:
            tape.watch(kernel)
            features = tf.nn.conv2d(images, kernel, 1, "SAME")  # [2, 8, 8, 5] from 3 x 3 x 4 patches
            loss = tf.reduce_sum(features)
        # Only the kernel's gradient is used: the gradient w.r.t. the images is traced but dead.
        kernel_gradient = tape.gradient(loss, kernel)
        scores = tf.einsum("bqd,bkd->bqk", queries, keys)  # b=2, q=7, k=9, d=4
        return loss, kernel_gradient, inner_product(matrix), scores

    concrete = step.get_concrete_function(
        tf.TensorSpec([2, 8, 8, 4]),
        tf.TensorSpec([3, 3, 4, 5]),
        tf.TensorSpec([6, 3]),
        tf.TensorSpec([2, 7, 4]),
        tf.TensorSpec([2, 9, 4]),
    )
    totals = train_step.graph_flops(concrete.graph, {})
    convolution = 2 * (2 * 8 * 8 * 5) * (3 * 3 * 4)
    assert totals.pop("Conv2D") == convolution
    assert totals.pop("Conv2DBackpropFilter") == convolution
    assert totals.pop("MatMul") == 2 * 3 * 3 * 6
    # The einsum may stay an Einsum or become a batched product: the same 2 * b * q * k * d either way.
    assert sum(totals.values()) == 2 * 2 * 7 * 9 * 4
    assert set(totals) <= {"Einsum", "BatchMatMul"}


def _round(seconds, matmul_gflops, peak_gb):
    return dict(
        status="ok",
        seconds=seconds,
        cpu_seconds=[2 * sample for sample in seconds],
        median_seconds=sorted(seconds)[len(seconds) // 2],
        step_flops=6e9,
        matmul_gflops=matmul_gflops,
        peak_rss_gb=peak_gb + 1,
        peak_over_baseline_gb=peak_gb,
    )


def test_rounds_pool_their_samples_and_ratios_divide_by_the_reference():
    sagan = train_step.merge_rounds("sagan", 128, [_round([1.0, 4.0, 2.0], 50.0, 0.5), _round([3.0], 70.0, 0.4)])
    assert sagan["median_seconds"] == 2.5  # median of the pooled 1, 4, 2, 3
    assert sagan["median_cpu_seconds"] == 5.0
    assert sagan["round_median_seconds"] == [2.0, 3.0]
    assert sagan["matmul_gflops"] == 60.0
    assert sagan["achieved_gflops"] == pytest.approx(6e9 / 2.5 / 1e9)
    assert sagan["peak_over_baseline_gb"] == 0.5
    ylg = train_step.merge_rounds("ylg", 128, [_round([2.6], 60.0, 1.0), _round([2.6], 60.0, 1.0)])
    failed = train_step.merge_rounds("ylg_dense", 128, [_round([1.0], 60.0, 1.0), dict(status="failed: x")])
    assert failed["status"] == "failed: x"
    # One denominator for every case: the median of the cases' matmul throughputs (60 and 60).
    assert train_step.add_utilisation([sagan, ylg, failed]) == 60.0
    assert sagan["utilisation"] == pytest.approx(6e9 / 2.5 / 60e9)
    assert ylg["utilisation"] == pytest.approx(6e9 / 2.6 / 60e9)
    assert "utilisation" not in failed
    summary = train_step.ratios([sagan, ylg, failed], "sagan")
    entry = dict(summary["128"]["ylg_vs_sagan"])
    assert entry.pop("round_time_ratios") == pytest.approx([2.6 / 2.0, 2.6 / 3.0])  # each round's medians
    assert entry == pytest.approx(dict(time_ratio=1.04, cpu_time_ratio=1.04, flop_ratio=1.0, memory_ratio=2.0))
    assert summary["128"]["ylg_dense_vs_sagan"] is None
    assert train_step.check_targets(summary) == [
        dict(variant="ylg", reference="sagan", size=128, limit=1.05, time_ratio=pytest.approx(1.04), met=True)
    ]


def test_a_precision_variant_is_divided_by_the_reference_and_its_float32_twin():
    sagan = train_step.merge_rounds("sagan", 128, [_round([4.0], 60.0, 2.0)])
    ylg = train_step.merge_rounds("ylg", 128, [_round([2.0], 60.0, 1.0)])
    mixed = train_step.merge_rounds("ylg+mixed_bfloat16", 128, [_round([3.0], 60.0, 0.5)])
    summary = train_step.ratios([sagan, ylg, mixed], "sagan")["128"]
    assert sorted(summary) == ["ylg+mixed_bfloat16_vs_sagan", "ylg+mixed_bfloat16_vs_ylg", "ylg_vs_sagan"]
    assert summary["ylg+mixed_bfloat16_vs_ylg"]["time_ratio"] == pytest.approx(1.5)
    assert summary["ylg+mixed_bfloat16_vs_ylg"]["memory_ratio"] == pytest.approx(0.5)
    assert summary["ylg+mixed_bfloat16_vs_sagan"]["time_ratio"] == pytest.approx(0.75)
    # With the twin as the reference, one comparison, not two.
    assert list(train_step.ratios([ylg, mixed], "ylg")["128"]) == ["ylg+mixed_bfloat16_vs_ylg"]


def test_train_step_benchmark_runs_a_variant_in_another_precision(tmp_path):
    output = tmp_path / "train_step.json"
    arguments = ("--sizes=32", "--presets=sagan", "--batch_size=2", "--steps_per_loop=1", "--repeats=1",
                 "--matmul_size=64")
    completed = _run("train_step.py", f"--output={output}", "--precision=mixed_bfloat16", *arguments)
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(output.read_text())
    [result] = report["results"]
    assert result["variant"] == "sagan+mixed_bfloat16" and result["status"] == "ok"
    assert report["settings"]["precision"] == "mixed_bfloat16"
    completed = _run("train_step.py", "--precision=float32,float64", *arguments)
    assert completed.returncode == 2
    assert completed.stderr.strip().splitlines()[-1].startswith("error: --precision='float32,float64'")


def test_train_step_benchmark_writes_its_report(tmp_path):
    output = tmp_path / "train_step.json"
    completed = _run(
        "train_step.py",
        f"--output={output}",
        "--sizes=32",
        "--presets=sagan,ylg_dense",
        "--channels=32",
        "--batch_size=2",
        "--steps_per_loop=1",
        "--warmup=1",
        "--repeats=1",
        "--matmul_size=128",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(output.read_text())
    assert [(result["variant"], result["size"]) for result in report["results"]] == [
        ("sagan", 32),
        ("ylg_dense", 32),
    ]
    for result in report["results"]:
        assert result["status"] == "ok"
        assert result["steps"] == 2  # one warm-up loop and one timed loop of one step
        for key in ("median_seconds", "median_cpu_seconds", "step_flops", "matmul_gflops", "utilisation"):
            assert result[key] > 0, key
        assert result["step_flops"] == sum(result["step_flops_by_op_type"].values())
    ratio = report["ratios"]["32"]["ylg_dense_vs_sagan"]
    assert ratio["time_ratio"] > 0
    # Same convolutions, only the attention differs: the step FLOPs are within a few percent.
    assert ratio["flop_ratio"] == pytest.approx(1.0, abs=0.05)
    assert report["targets"] == []  # the targets are at 128x128
    assert report["machine"]["matmul_gflops"] > 0
    assert "ylg_dense_vs_sagan" in completed.stdout


@pytest.mark.parametrize(
    "arguments, start, detail",
    [
        (("--presets=sagan,ylg", "--channels=16"), "error: --channels=16 does not fit 'ylg' at 128x128", "multiple of 64"),
        (("--presets=sagan,sagan_block_sparse",), "error: --presets: 'sagan_block_sparse' asks for block_sparse YLG",
         "only the ylg kinds"),
    ],
)
def test_train_step_benchmark_names_a_bad_variant_in_one_line(arguments, start, detail):
    completed = _run("train_step.py", "--sizes=128", *arguments)
    assert completed.returncode == 2
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith(start) and detail in last_line, last_line


def test_attention_benchmark_writes_its_report(tmp_path):
    output = tmp_path / "attention.json"
    completed = _run(
        "attention.py", f"--output={output}", "--sizes=8", "--channels=64", "--batch=1", "--repeats=1",
        "--scopes=attention",
    )
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(output.read_text())
    assert [result["implementation"] for result in report["results"]] == [
        "sagan_1head",
        "ylg_masked_dense",
        "ylg_block_sparse",
    ]
    for result in report["results"]:
        assert result["status"] == "ok"
        assert result["median_seconds"] > 0 and result["peak_rss_gb"] > 0
    for ratio in report["ratios"]["attention"]["8"].values():
        assert ratio["speedup"] > 0


@pytest.mark.parametrize(
    "pythons, detail",
    [("/nonexistent/python,/nonexistent/other", "'/nonexistent/python' does not exist"),
     (sys.executable, "must name at least two interpreters")],
)
def test_stacks_benchmark_names_bad_interpreters_in_one_line(pythons, detail):
    completed = _run("stacks.py", f"--pythons={pythons}")
    assert completed.returncode == 2
    last_line = completed.stderr.strip().splitlines()[-1]
    assert last_line.startswith("error: ") and detail in last_line, last_line


def test_demo_quality_benchmark_writes_its_report_and_its_two_accuracies_agree(tmp_path):
    output = tmp_path / "demo_quality.json"
    completed = _run(
        "demo_quality.py", "--seeds=3", f"--root={tmp_path / 'runs'}", f"--output={output}",
        "--train_flag=--train_steps=4", "--train_flag=--steps_per_loop=2", "--train_flag=--batch_size=4")
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(output.read_text())
    (row,) = report["rows"]
    assert row["seed"] == 3 and row["train_seconds"] > 0
    assert json.loads((tmp_path / "runs" / "seed_3" / "config.json").read_text())["training"]["seed"] == 3
    # The run's own last line and tools/evaluate.py classify the same 1000 evaluation samples of one generator.
    assert row["demo_line_accuracy"] == round(row["class_accuracy"], 2)
    assert len(row["per_class_accuracy"]) == 10
    assert report["summary"]["minimum_accuracy"] == row["class_accuracy"]
    assert report["train_flags"] == ["--train_steps=4", "--steps_per_loop=2", "--batch_size=4"]


def test_input_pipeline_benchmark_reads_both_sources_and_estimates_the_host_cores(tmp_path):
    output = tmp_path / "input_pipeline.json"
    classifier = write_fake_inception_savedmodel(tmp_path / "inception")  # a small stand-in, 299x299 inputs
    completed = _run(
        "input_pipeline.py", f"--output={output}", "--num_images=16", "--width=40", "--height=30",
        "--image_size=16", "--batch=4", "--batches=2", "--preset=test", "--eval_samples=4", "--eval_batch=2",
        f"--classifier={classifier}")
    assert completed.returncode == 0, completed.stderr[-2000:]
    report = json.loads(output.read_text())
    rows = report["input_pipeline"]
    assert [(row["source"], row["setting"]) for row in rows] == [
        (source, setting) for source in ("folder", "tfds") for setting in ("autotune", "no autotune", "1 thread")]
    for row in rows:
        assert row["images"] == 8 and row["images_per_second"] > 0 and row["images_per_cpu_second"] > 0
    estimate = report["tpu_v3_8"]
    # cores = batch 256 x (peak x utilisation / step FLOPs) / the slowest one-thread rate
    steps_per_second = 4 * 123.0 * estimate["assumed_utilisation"] / estimate["assumed_step_tflop"]
    one_core = min(row["images_per_cpu_second"] for row in rows if row["setting"] == "1 thread")
    assert estimate["host_cores_needed"] == pytest.approx(256 * steps_per_second / one_core)
    evaluation = report["evaluation"]
    for field in ("loop_images_per_second", "generator_images_per_second", "classifier_images_per_second"):
        assert evaluation[field] > 0
    assert "host cores" in completed.stdout and "evaluation loop" in completed.stdout
