"""Benchmark of one full training step (a D update, then a G update) of the `sagan` and `ylg` presets.

Each variant is a preset with its channel widths set by --channels (gf = df, reduced so 128x128 runs on a
CPU) and its image size by --sizes; "NAME_dense" and "NAME_block_sparse" are preset NAME with that
attention_implementation (so "ylg" is the preset as shipped, block-sparse, and "ylg_dense" the original's
masked dense YLG layer). The reference variant (--reference, `sagan`) is what the ratios divide by.
--precision lists `ModelConfig.precision` values: every variant runs in each, labelled "NAME+PRECISION" unless
float32, and each such case is also divided by its float32 twin ("ylg+mixed_bfloat16_vs_ylg").

Timing: `Trainer.run_loop(iterator, --steps_per_loop)` on a synthetic in-memory dataset
(`tf.data.Dataset.from_tensors(batch).repeat()`), as training runs it: the steps inside one `tf.function`,
the host seeing only the loop's mean metrics. After --warmup loops (the first one also optimises the traced
graph), --repeats loops are timed; a loop's time / its steps is one per-step sample, and the report gives
their median (wall and process CPU time). With --rounds=R every case runs R times in fresh processes,
interleaved with the other cases (alternate rounds in reverse order), and the samples of all rounds are pooled.

FLOPs: counted from the traced graph of the train loop: the body of its while loop is one step, and every
Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter, MatMul, BatchMatMul and two-operand Einsum in it (and in
functions it calls) adds 2 x its multiply-accumulates, from the static shapes of the trace; gradient ops
whose results nothing uses are left out, as the runtime prunes them. Elementwise work
(activations, normalisation, softmax, YLG's mask bias, the optimisers' updates) is not counted, so for
memory-bound attention the FLOPs understate the work.

Throughput: each case's process times a float32 --matmul_size^2 matrix product 10 times after its training
loops and keeps the best GFLOP/s (what this machine can reach); the machine's throughput is the median of the
cases' numbers, and every case's utilisation = step FLOPs / step time / the machine's throughput (one
denominator for all, so utilisations compare like the step times).

Every case (variant, size) runs in a fresh subprocess (this script with --case), so its peak resident set
size is its own; "over base" subtracts the high-water mark just before the trainer is built.

Usage:
  python benchmarks/train_step.py [--output=train_step.json] [--sizes=128,32]
      [--presets=sagan,ylg,ylg_dense] [--reference=sagan] [--channels=32] [--batch_size=8]
      [--steps_per_loop=2] [--warmup=1] [--repeats=3] [--rounds=1] [--matmul_size=2048] [--jit_compile=false]
      [--precision=float32,mixed_bfloat16]
"""

import json
import os
import pathlib
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this script's own output is the table

from absl import flags  # noqa: E402

import common  # noqa: E402  (beside this script)
from ylg_tf import command_line  # noqa: E402

# Variant suffix -> the attention_implementation it forces.
IMPLEMENTATION_SUFFIXES = {"_dense": "dense", "_block_sparse": "block_sparse"}
PRECISION_SEPARATOR = "+"  # "ylg+mixed_bfloat16": preset ylg in that precision
# (variant, reference, image size, largest allowed time ratio): the issue's target, "measured side by side
# in one run on a 2-core CPU". It names the `ylg` preset as shipped; `ylg_dense` is reported beside it.
TARGETS = (("ylg", "sagan", 128, 1.05),)
FLOP_COUNTING = (
    "2 x multiply-accumulates of the Conv2D, Conv2DBackpropInput, Conv2DBackpropFilter, MatMul, BatchMatMul and "
    "two-operand Einsum ops of one step (the train loop's while body and the functions it calls), from the "
    "traced graph's static shapes; only ops the step's outputs or state updates depend on (unused gradients "
    "are pruned at run time); elementwise ops are not counted"
)
MATMUL_REPEATS = 10

flags.DEFINE_string("output", None, "Write the results as JSON to this file.")
flags.DEFINE_string("sizes", "128,32", "Image sizes (each of 32, 64, 128).")
flags.DEFINE_string(
    "presets",
    "sagan,ylg,ylg_dense",
    "Comma-separated presets; NAME_dense / NAME_block_sparse is NAME with that YLG attention implementation.",
)
flags.DEFINE_string("reference", "sagan", "The variant the ratios divide by (must be in --presets).")
flags.DEFINE_integer("channels", 32, "Generator and discriminator channel width gf = df (the paper: 64).")
flags.DEFINE_integer("batch_size", 8, "Global batch size (the paper: 256).")
flags.DEFINE_integer("steps_per_loop", 2, "Training steps per timed run_loop call.")
flags.DEFINE_integer("warmup", 1, "Untimed run_loop calls first (the first one optimises the graph).")
flags.DEFINE_integer("repeats", 3, "Timed run_loop calls per case and round.")
flags.DEFINE_integer("rounds", 1, "Fresh processes per case, interleaved with the other cases' (for a busy machine).")
flags.DEFINE_integer("matmul_size", 2048, "Side of the square float32 matrices timed for the throughput.")
flags.DEFINE_bool("jit_compile", False, "Compile the network updates with XLA (Trainer's jit_compile).")
flags.DEFINE_string(
    "precision", "float32", "Comma-separated ModelConfig.precision values (float32, mixed_bfloat16, mixed_float16).")
flags.DEFINE_integer("timeout_seconds", 3600, "Give up on a case after this long.")
flags.DEFINE_string("case", None, "Internal: run one case 'variant:size' here and print it.")
FLAGS = flags.FLAGS


def variant_config(variant, size):
    """The experiment config of a variant ("sagan", "ylg", "ylg_dense", "ylg+mixed_bfloat16", ...) at `size`."""
    from ylg_tf.config import PRECISIONS, PRESETS, get_preset
    from ylg_tf.models.networks import check_attention_channels

    label = variant
    variant, _, precision = variant.partition(PRECISION_SEPARATOR)
    if precision and precision not in PRECISIONS:
        raise ValueError(f"{label!r}: precision {precision!r} is not one of {PRECISIONS}")
    preset, implementation = variant, None
    for suffix, forced in IMPLEMENTATION_SUFFIXES.items():
        if variant.endswith(suffix) and variant not in PRESETS:
            preset, implementation = variant[: -len(suffix)], forced
    config = get_preset(preset)
    model = dict(image_size=size, generator_channels=FLAGS.channels, discriminator_channels=FLAGS.channels,
                 precision=precision or "float32")
    if implementation is not None:
        if not config.model.attention.startswith("ylg"):
            raise ValueError(
                f"--presets: {variant!r} asks for {implementation} YLG attention, but preset {preset!r} has "
                f"attention={config.model.attention!r}; only the ylg kinds have two implementations"
            )
        model["attention_implementation"] = implementation
    config = config.replace(model=model, training=dict(batch_size=FLAGS.batch_size))
    try:
        check_attention_channels(config.model)
    except ValueError as error:
        raise ValueError(f"--channels={FLAGS.channels} does not fit {variant!r} at {size}x{size}: {error}") from None
    return config


def _operation_flops(operation):
    """2 x the multiply-accumulates of one matrix-product-like op; 0 for other ops; None if shapes are unknown."""
    kind = operation.type
    if kind not in ("Conv2D", "Conv2DBackpropInput", "Conv2DBackpropFilter", "MatMul", "Einsum") and not (
        kind.startswith("BatchMatMul")
    ):
        return 0
    shapes = [tensor.shape for tensor in list(operation.inputs) + list(operation.outputs)]
    if not all(shape.rank is not None and shape.is_fully_defined() for shape in shapes):
        return None
    if kind == "Conv2D":
        output, kernel = operation.outputs[0].shape, operation.inputs[1].shape  # [B, H, W, O], [kh, kw, I, O]
        return 2 * output.num_elements() * kernel[0] * kernel[1] * kernel[2]
    if kind == "Conv2DBackpropInput":  # inputs: input sizes, kernel, output gradient
        kernel, output = operation.inputs[1].shape, operation.inputs[2].shape
        return 2 * output.num_elements() * kernel[0] * kernel[1] * kernel[2]
    if kind == "Conv2DBackpropFilter":  # inputs: input, kernel sizes, output gradient; output: kernel gradient
        kernel, output = operation.outputs[0].shape, operation.inputs[2].shape
        return 2 * output.num_elements() * kernel[0] * kernel[1] * kernel[2]
    if kind == "MatMul":
        first = operation.inputs[0].shape
        inner = first[0] if operation.get_attr("transpose_a") else first[1]
        return 2 * operation.outputs[0].shape.num_elements() * inner
    if kind.startswith("BatchMatMul"):
        first = operation.inputs[0].shape
        inner = first[-2] if operation.get_attr("adj_x") else first[-1]
        return 2 * operation.outputs[0].shape.num_elements() * inner
    # Einsum: with two operands, one multiply-accumulate per combination of all the index letters.
    equation = operation.get_attr("equation").decode()
    operands = equation.split("->")[0].split(",")
    if len(operands) != 2:
        return 0  # a transpose or reduction
    if "." in equation:
        return None
    sizes = {}
    for letters, tensor in zip(operands, operation.inputs):
        sizes.update(zip(letters, tensor.shape.as_list()))
    count = 2
    for size in sizes.values():
        count *= size
    return count


def _called_graphs(operation):
    """Graphs of the functions an op calls (while bodies, branches, nested tf.functions)."""
    graphs = []
    for attribute in ("body", "cond", "then_branch", "else_branch", "f"):
        try:
            function = operation.get_attr(attribute)
        except ValueError:
            continue
        # Function bodies live in the outermost graph's library; AtomicFunction.graph holds their shapes.
        graph = operation.graph
        while graph is not None:
            if function.name in graph._functions:
                graphs.append(graph._functions[function.name].graph)
                break
            graph = getattr(graph, "outer_graph", None)
        else:
            raise ValueError(f"cannot find function {function.name!r} called by {operation.name!r}")
    return graphs


def _live_operations(graph):
    """The ops of a function graph that its outputs or state updates depend on.

    A gradient op computes every input's gradient; those nobody uses (e.g. D's kernel gradients in the G
    update) stay in the trace but the runtime prunes them, so they are not counted.
    """
    live, pending = set(), [tensor.op for tensor in graph.outputs] + list(graph.control_outputs)
    while pending:
        operation = pending.pop()
        if operation not in live:
            live.add(operation)
            pending.extend(tensor.op for tensor in operation.inputs)
            pending.extend(operation.control_inputs)
    return [operation for operation in graph.get_operations() if operation in live]


def graph_flops(graph, totals):
    """Adds the FLOPs of `graph` and the graphs it calls to `totals` ({op type: FLOPs, "unknown_shapes": ops})."""
    for operation in _live_operations(graph):
        flops = _operation_flops(operation)
        if flops is None:
            totals["unknown_shapes"] = totals.get("unknown_shapes", 0) + 1
        elif flops:
            kind = "BatchMatMul" if operation.type.startswith("BatchMatMul") else operation.type
            totals[kind] = totals.get(kind, 0) + flops
        for called in _called_graphs(operation):
            graph_flops(called, totals)
    return totals


def step_flops(trainer, iterator, num_steps):
    """{op type: FLOPs} of one training step, from the trace of `trainer.train_loop`."""
    import tensorflow as tf

    concrete = trainer.train_loop.get_concrete_function(iterator, tf.constant(num_steps, tf.int64))
    loops = [operation for operation in concrete.graph.get_operations() if operation.type in ("While", "StatelessWhile")]
    if len(loops) != 1:
        raise RuntimeError(f"expected one while loop (the steps) in the train loop, found {len(loops)}")
    return graph_flops(_called_graphs(loops[0])[0], {})  # the body: one step


def matmul_throughput(size):
    """Best float32 GFLOP/s of a [size, size] x [size, size] product over MATMUL_REPEATS runs."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(1)
    first, second = (tf.constant(rng.normal(size=(size, size)).astype(np.float32)) for _ in range(2))

    @tf.function
    def product(first, second):
        return tf.reduce_sum(tf.matmul(first, second))

    float(product(first, second))  # trace and warm up
    seconds = []
    for _ in range(MATMUL_REPEATS):
        start = time.perf_counter()
        float(product(first, second))
        seconds.append(time.perf_counter() - start)
    return 2 * size**3 / min(seconds) / 1e9


def run_case(variant, size):
    """Times one case in this process; returns a JSON-serialisable dict."""
    import numpy as np
    import tensorflow as tf

    from ylg_tf.training.distribution import create_strategy
    from ylg_tf.training.trainer import Trainer

    config = variant_config(variant, size)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1.0, 1.0, size=(FLAGS.batch_size, size, size, 3)).astype(np.float32)
    labels = rng.integers(0, config.model.num_classes, size=FLAGS.batch_size).astype(np.int32)
    iterator = iter(tf.data.Dataset.from_tensors((images, labels)).repeat())
    float(tf.reduce_sum(tf.ones([8, 8])))  # start the runtime before the baseline
    baseline = common.peak_rss_bytes()

    trainer = Trainer(config, create_strategy(), jit_compile=FLAGS.jit_compile)
    start = time.perf_counter()
    flops_by_type = step_flops(trainer, iterator, FLAGS.steps_per_loop)  # traces the loop run_loop calls
    trace_seconds = time.perf_counter() - start
    start = time.perf_counter()
    for _ in range(FLAGS.warmup):
        trainer.run_loop(iterator, FLAGS.steps_per_loop)
    warmup_seconds = time.perf_counter() - start
    wall, cpu = [], []
    for _ in range(FLAGS.repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        metrics = trainer.run_loop(iterator, FLAGS.steps_per_loop)
        wall.append((time.perf_counter() - start_wall) / FLAGS.steps_per_loop)
        cpu.append((time.process_time() - start_cpu) / FLAGS.steps_per_loop)
    peak = common.peak_rss_bytes()
    if not np.isfinite([metrics.discriminator_loss, metrics.generator_loss]).all():
        return dict(status=f"failed: non-finite losses {metrics}")
    throughput = matmul_throughput(FLAGS.matmul_size)
    median_seconds = float(np.median(wall))
    flops = sum(value for name, value in flops_by_type.items() if name != "unknown_shapes")
    return dict(
        status="ok",
        median_seconds=median_seconds,
        median_cpu_seconds=float(np.median(cpu)),
        seconds=wall,
        cpu_seconds=cpu,
        trace_seconds=trace_seconds,
        warmup_seconds=warmup_seconds,
        steps=int(metrics.step),
        step_flops=flops,
        step_flops_by_op_type=flops_by_type,
        achieved_gflops=flops / median_seconds / 1e9,
        matmul_gflops=throughput,
        parameters=dict(
            generator=int(sum(np.prod(variable.shape) for variable in trainer.generator.trainable_variables)),
            discriminator=int(sum(np.prod(variable.shape) for variable in trainer.discriminator.trainable_variables)),
        ),
        peak_rss_gb=peak / 1e9,
        baseline_rss_gb=baseline / 1e9,
        peak_over_baseline_gb=(peak - baseline) / 1e9,
    )


def _child_command(variant, size):
    return [
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        f"--case={variant}:{size}",
        f"--presets={variant}",
        f"--reference={variant}",
        f"--sizes={size}",
        f"--channels={FLAGS.channels}",
        f"--batch_size={FLAGS.batch_size}",
        f"--steps_per_loop={FLAGS.steps_per_loop}",
        f"--warmup={FLAGS.warmup}",
        f"--repeats={FLAGS.repeats}",
        f"--matmul_size={FLAGS.matmul_size}",
        f"--jit_compile={str(FLAGS.jit_compile).lower()}",
        "--precision=float32",  # the variant's label carries its precision
    ]


def merge_rounds(variant, size, rounds):
    """One case's result from its rounds (fresh processes): their per-step samples pooled, and their median."""
    failed = [result for result in rounds if result["status"] != "ok"]
    if failed:
        return dict(variant=variant, size=size, **failed[0])
    merged = dict(variant=variant, size=size, **rounds[0])
    merged["seconds"] = [sample for result in rounds for sample in result["seconds"]]
    merged["cpu_seconds"] = [sample for result in rounds for sample in result["cpu_seconds"]]
    merged["median_seconds"] = statistics.median(merged["seconds"])
    merged["median_cpu_seconds"] = statistics.median(merged["cpu_seconds"])
    merged["round_median_seconds"] = [result["median_seconds"] for result in rounds]
    merged["matmul_gflops"] = statistics.median(result["matmul_gflops"] for result in rounds)
    merged["achieved_gflops"] = merged["step_flops"] / merged["median_seconds"] / 1e9
    for name in ("peak_rss_gb", "peak_over_baseline_gb"):
        merged[name] = max(result[name] for result in rounds)
    return merged


def add_utilisation(results):
    """Sets every ok result's utilisation against the machine's throughput (the median of the cases'), returned."""
    measured = [result["matmul_gflops"] for result in results if result["status"] == "ok"]
    if not measured:
        return None
    machine_gflops = statistics.median(measured)
    for result in results:
        if result["status"] == "ok":
            result["utilisation"] = result["achieved_gflops"] / machine_gflops
    return machine_gflops


def _comparisons(variant, reference):
    """The variants `variant` is divided by: the reference, and its float32 twin when it has a precision."""
    twin = variant.partition(PRECISION_SEPARATOR)[0]
    return [other for other in dict.fromkeys([reference, twin]) if other != variant]


def ratios(results, reference):
    """Per size, every other variant against `reference` (and a "NAME+PRECISION" one also against NAME): time,
    CPU time, FLOP and memory ratios.

    time_ratio divides the pooled medians; round_time_ratios divides each round's medians (their spread shows
    how far the machine's noise moves the ratio).
    """
    by_case = {(result["variant"], result["size"]): result for result in results}
    summary = {}
    pairs = [(variant, other, size) for variant, size in by_case for other in _comparisons(variant, reference)]
    for variant, other, size in pairs:
        mine, theirs = by_case[(variant, size)], by_case.get((other, size))
        entry = None
        if theirs and mine["status"] == "ok" and theirs["status"] == "ok":
            entry = dict(
                time_ratio=mine["median_seconds"] / theirs["median_seconds"],
                cpu_time_ratio=mine["median_cpu_seconds"] / theirs["median_cpu_seconds"],
                flop_ratio=mine["step_flops"] / theirs["step_flops"],
                memory_ratio=mine["peak_over_baseline_gb"] / theirs["peak_over_baseline_gb"],
                round_time_ratios=[
                    own / other for own, other in zip(mine["round_median_seconds"], theirs["round_median_seconds"])
                ],
            )
        summary.setdefault(str(size), {})[f"{variant}_vs_{other}"] = entry
    return summary


def check_targets(summary):
    """The issue's targets that this run measured, each with its ratio and whether it is met."""
    checked = []
    for variant, reference, size, limit in TARGETS:
        entry = summary.get(str(size), {}).get(f"{variant}_vs_{reference}")
        if entry is None:
            continue
        ratio = entry["time_ratio"]
        checked.append(
            dict(variant=variant, reference=reference, size=size, limit=limit, time_ratio=ratio, met=ratio <= limit)
        )
    return checked


def format_table(results, summary, targets, machine_gflops):
    header = (
        f"{'variant':<22}{'image':>9} {'wall ms':>9} {'cpu ms':>9} {'GFLOP':>8} {'GFLOP/s':>8} "
        f"{'matmul GFLOP/s':>15} {'util %':>7} {'over base GB':>13}  status"
    )
    lines = [header]
    for result in results:
        size = result["size"]
        case = f"{result['variant']:<22}{size:>4}x{size:<4}"
        if result["status"] == "ok":
            numbers = (
                f"{1000 * result['median_seconds']:9.1f} {1000 * result['median_cpu_seconds']:9.1f} "
                f"{result['step_flops'] / 1e9:8.2f} {result['achieved_gflops']:8.1f} {result['matmul_gflops']:15.1f} "
                f"{100 * result['utilisation']:7.1f} {result['peak_over_baseline_gb']:13.3f}"
            )
        else:
            numbers = " ".join(f"{'-':>{width}}" for width in (9, 9, 8, 8, 15, 7, 13))
        lines.append(f"{case} {numbers}  {result['status']}")
    if machine_gflops:
        lines.append(
            f"utilisation: achieved GFLOP/s / {machine_gflops:.1f} GFLOP/s, this machine's float32 "
            f"{FLAGS.matmul_size}x{FLAGS.matmul_size} matmul (median over the cases)"
        )
    lines.append("")
    lines.append(
        f"{'image':>9} {'ratio':<30} {'time':>7} {'cpu time':>9} {'FLOPs':>7} {'memory':>7}  rounds' time ratios"
    )
    for size, entries in summary.items():
        for name, entry in entries.items():
            start = f"{size:>4}x{size:<4} {name:<30}"
            if entry is None:
                lines.append(f"{start} {'-':>7} {'-':>9} {'-':>7} {'-':>7}")
            else:
                lines.append(
                    f"{start} {entry['time_ratio']:7.3f} {entry['cpu_time_ratio']:9.3f} {entry['flop_ratio']:7.3f} "
                    f"{entry['memory_ratio']:7.3f}  " + " ".join(f"{ratio:.3f}" for ratio in entry["round_time_ratios"])
                )
    for target in targets:
        verdict = "met" if target["met"] else "NOT met"
        lines.append(
            f"target: {target['variant']} / {target['reference']} step time at {target['size']}x{target['size']} "
            f"<= {target['limit']}: {target['time_ratio']:.3f}, {verdict}"
        )
    return "\n".join(lines)


def _validate_flags():
    from ylg_tf.config import IMAGE_SIZES, PRECISIONS

    sizes = command_line.parse_integer_list(FLAGS.sizes, "sizes")
    if not sizes or any(size not in IMAGE_SIZES for size in sizes):
        raise ValueError(f"--sizes={FLAGS.sizes!r} must list sizes of {IMAGE_SIZES}")
    presets = [variant.strip() for variant in FLAGS.presets.split(",") if variant.strip()]
    if not presets or len(set(presets)) != len(presets):
        raise ValueError(f"--presets={FLAGS.presets!r} must list distinct presets")
    precisions = [precision.strip() for precision in FLAGS.precision.split(",") if precision.strip()]
    if not precisions or len(set(precisions)) != len(precisions) or set(precisions) - set(PRECISIONS):
        raise ValueError(f"--precision={FLAGS.precision!r} must list distinct values of {PRECISIONS}")
    variants = [
        preset if precision == "float32" else f"{preset}{PRECISION_SEPARATOR}{precision}"
        for preset in presets
        for precision in precisions
    ]
    if FLAGS.reference not in presets:
        raise ValueError(f"--reference={FLAGS.reference!r} is not one of --presets={presets}")
    for name in ("channels", "batch_size", "steps_per_loop", "warmup", "repeats", "rounds"):
        if getattr(FLAGS, name) < 1:
            raise ValueError(f"--{name}={getattr(FLAGS, name)} must be positive")
    if FLAGS.matmul_size < 64:
        raise ValueError(f"--matmul_size={FLAGS.matmul_size} must be at least 64")
    for variant in variants:
        for size in sizes:
            variant_config(variant, size)  # unknown presets and unfit channel widths fail here, before any run
    return sizes, variants


def main(argv):
    del argv
    sizes, variants = _validate_flags()
    if FLAGS.case:
        variant, _, size = FLAGS.case.rpartition(":")
        if variant not in variants or not size.isdigit() or int(size) not in sizes:
            raise ValueError(f"--case={FLAGS.case!r} must be 'variant:size' with a variant and size of the flags")
        common.print_result(run_case(variant, int(size)))
        return

    rounds = {}
    for round_index in range(FLAGS.rounds):
        # Every other round runs the variants in reverse, so a slow drift of the machine hits them alike.
        ordered = variants if round_index % 2 == 0 else variants[::-1]
        for size in sizes:
            for variant in ordered:
                result = common.run_case_subprocess(_child_command(variant, size), FLAGS.timeout_seconds)
                rounds.setdefault((variant, size), []).append(result)
                ok = result["status"] == "ok"
                shown = f"{1000 * result['median_seconds']:.1f} ms per step" if ok else result["status"]
                print(f"round {round_index + 1}: {variant} {size}x{size}: {shown}", file=sys.stderr, flush=True)
    results = [merge_rounds(variant, size, rounds[(variant, size)]) for size in sizes for variant in variants]
    machine_gflops = add_utilisation(results)
    summary = ratios(results, FLAGS.reference)
    targets = check_targets(summary)
    print(format_table(results, summary, targets, machine_gflops))
    if FLAGS.output:
        report = dict(
            settings=dict(
                sizes=sizes,
                presets=variants,
                reference=FLAGS.reference,
                channels=FLAGS.channels,
                batch_size=FLAGS.batch_size,
                steps_per_loop=FLAGS.steps_per_loop,
                warmup=FLAGS.warmup,
                repeats=FLAGS.repeats,
                rounds=FLAGS.rounds,
                matmul_size=FLAGS.matmul_size,
                jit_compile=FLAGS.jit_compile,
                precision=FLAGS.precision,
            ),
            machine=dict(
                common.machine_description(),
                matmul_gflops=machine_gflops,
            ),
            flop_counting=FLOP_COUNTING,
            results=results,
            ratios=summary,
            targets=targets,
        )
        pathlib.Path(FLAGS.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    command_line.run(main)
