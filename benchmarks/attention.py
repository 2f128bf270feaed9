"""Benchmark of the attention layers: forward + backward time and peak memory.

Compares SAGAN's dense attention (`SelfAttention`, 1 head), YLG's masked dense attention
(`LocalSparseAttention`, the original formulation) and YLG's block-sparse attention
(`BlockSparseLocalAttention`) on feature maps of S x S x C (keys and values 2x2-pooled, as in the layers).
Two scopes:

* "layer": the whole layer in training mode (its four 1x1 spectral-norm convolutions, pooling, attention and
  residual), with the gradients of sum(outputs * cotangent) w.r.t. the inputs and every trainable weight;
* "attention": only the layer's `attend` on random queries, keys and values of the layer's shapes, with the
  gradients w.r.t. them - the part the implementations differ in.

One timed step runs inside one `tf.function`; the reported time is the median wall time of --repeats steps
after tracing and one warm-up step (the median process CPU time is recorded too: on a shared machine it is
the steadier number).

Memory: every case runs in a fresh subprocess (this script with --case), so the peak resident set size it
reads (`ru_maxrss`) is its own. "over base" subtracts the process's high-water mark just before the layer is
built (TensorFlow loaded, layer inputs created), leaving what the layer and its step needed. Cases whose
dense score tensors are estimated to exceed --max_memory_gb are reported as skipped instead of run.

Usage:
  python benchmarks/attention.py [--output=attention.json] [--sizes=32,64,128] [--channels=256] [--batch=8]
      [--repeats=5] [--max_memory_gb=8] [--scopes=layer,attention] [--pattern=ylg] [--geometry=original]
      [--jit_compile=false]
"""

import json
import os
import pathlib
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # this script's own output is the table

from absl import flags  # noqa: E402

import common  # noqa: E402  (beside this script)
from ylg_tf import command_line  # noqa: E402

IMPLEMENTATIONS = ("sagan_1head", "ylg_masked_dense", "ylg_block_sparse")
SCOPES = ("layer", "attention")
# A forward + backward step holds about 4 score-sized tensors: logits, probabilities and their gradients.
SCORE_COPIES = 4

flags.DEFINE_string("output", None, "Write the results as JSON to this file.")
flags.DEFINE_string("sizes", "32,64,128", "Feature map sides S (S x S queries, S/2 x S/2 keys).")
flags.DEFINE_integer("channels", 256, "Feature channels C (8 YLG heads must divide C/8).")
flags.DEFINE_integer("batch", 8, "Batch size.")
flags.DEFINE_integer("repeats", 5, "Timed steps per case (after tracing and one warm-up step).")
flags.DEFINE_float("max_memory_gb", 8.0, "Skip cases whose estimated dense attention memory exceeds this.")
flags.DEFINE_string("scopes", "layer,attention", "Comma-separated scopes to measure: layer, attention.")
flags.DEFINE_string("pattern", "ylg", "YLG sparse pattern of both YLG layers.")
flags.DEFINE_string("geometry", "original", "YLG query geometry: original or aligned.")
flags.DEFINE_bool("jit_compile", False, "Compile the step with XLA.")
flags.DEFINE_integer("timeout_seconds", 3600, "Give up on a case after this long.")
flags.DEFINE_string("case", None, "Internal: run one case 'scope:implementation:size' here and print it.")
FLAGS = flags.FLAGS


def estimated_memory_bytes(implementation, size, batch):
    """Rough peak of the attention scores of one forward + backward step (the dominant term when large)."""
    num_queries, num_keys = size * size, size * size // 4
    if implementation == "sagan_1head":
        return SCORE_COPIES * 4 * batch * num_queries * num_keys
    if implementation == "ylg_masked_dense":
        # Plus the layer's constant [heads, Nq, Nk] float32 logit bias and its boolean masks.
        return SCORE_COPIES * 4 * batch * 8 * num_queries * num_keys + 5 * 8 * num_queries * num_keys
    stride = int(num_keys**0.5)
    return SCORE_COPIES * 4 * batch * 8 * num_queries * (2 * stride + 1)


def _make_layer(implementation):
    from ylg_tf.attention.layers import LocalSparseAttention, SelfAttention
    from ylg_tf.attention.block_sparse import BlockSparseLocalAttention

    if implementation == "sagan_1head":
        return SelfAttention(num_heads=1)
    if implementation == "ylg_masked_dense":
        return LocalSparseAttention(pattern=FLAGS.pattern, geometry=FLAGS.geometry)
    return BlockSparseLocalAttention(pattern=FLAGS.pattern, geometry=FLAGS.geometry)


def _attention_inputs(layer, size, rng):
    """Random queries, keys, values and output cotangent of `layer.attend` for an S x S map."""
    import numpy as np
    import tensorflow as tf

    heads, channels = layer.num_heads, FLAGS.channels
    num_queries, num_keys = size * size, size * size // 4
    shapes = [
        (FLAGS.batch, heads, num_queries, channels // 8 // heads),
        (FLAGS.batch, heads, num_keys, channels // 8 // heads),
        (FLAGS.batch, heads, num_keys, channels // 2 // heads),
        (FLAGS.batch, heads, num_queries, channels // 2 // heads),
    ]
    return [tf.constant(rng.normal(size=shape).astype(np.float32)) for shape in shapes]


def run_case(scope, implementation, size):
    """Times one case in this process; returns a JSON-serialisable dict."""
    import numpy as np
    import tensorflow as tf

    rng = np.random.default_rng(0)
    shape = (FLAGS.batch, size, size, FLAGS.channels)
    if scope == "layer":
        inputs = tf.constant(rng.normal(size=shape).astype(np.float32))
        cotangent = tf.constant(rng.normal(size=shape).astype(np.float32))
    float(tf.reduce_sum(tf.ones([8, 8])))  # start the runtime before the baseline
    baseline = common.peak_rss_bytes()

    layer = _make_layer(implementation)
    if scope == "layer":
        layer(inputs[:1])
        layer.sigma_ratio.assign(0.5)
        arguments = (inputs, cotangent)

        def loss_and_sources(inputs, cotangent):
            with tf.GradientTape() as tape:
                tape.watch(inputs)
                loss = tf.reduce_sum(layer(inputs, training=True) * cotangent)
            return tape, loss, [inputs] + layer.trainable_weights

    else:
        layer.build(tf.TensorShape(shape))  # the layer's masks or block-sparse tables
        arguments = tuple(_attention_inputs(layer, size, rng))

        def loss_and_sources(queries, keys, values, cotangent):
            with tf.GradientTape() as tape:
                tape.watch([queries, keys, values])
                outputs, _ = layer.attend(queries, keys, values)
                loss = tf.reduce_sum(outputs * cotangent)
            return tape, loss, [queries, keys, values]

    @tf.function(jit_compile=FLAGS.jit_compile)
    def step(*arguments):
        tape, loss, sources = loss_and_sources(*arguments)
        gradients = tape.gradient(loss, sources)
        return tf.add_n([tf.reduce_sum(gradient) for gradient in gradients])

    start = time.perf_counter()
    float(step(*arguments))
    first_step_seconds = time.perf_counter() - start
    float(step(*arguments))  # warm-up
    wall, cpu = [], []
    for _ in range(FLAGS.repeats):
        start_wall, start_cpu = time.perf_counter(), time.process_time()
        float(step(*arguments))
        wall.append(time.perf_counter() - start_wall)
        cpu.append(time.process_time() - start_cpu)
    peak = common.peak_rss_bytes()
    return dict(
        status="ok",
        median_seconds=float(np.median(wall)),
        median_cpu_seconds=float(np.median(cpu)),
        seconds=wall,
        cpu_seconds=cpu,
        first_step_seconds=first_step_seconds,
        peak_rss_gb=peak / 1e9,
        baseline_rss_gb=baseline / 1e9,
        peak_over_baseline_gb=(peak - baseline) / 1e9,
    )


def _child_command(scope, implementation, size):
    return [
        sys.executable,
        str(pathlib.Path(__file__).resolve()),
        f"--case={scope}:{implementation}:{size}",
        f"--channels={FLAGS.channels}",
        f"--batch={FLAGS.batch}",
        f"--repeats={FLAGS.repeats}",
        f"--pattern={FLAGS.pattern}",
        f"--geometry={FLAGS.geometry}",
        f"--jit_compile={str(FLAGS.jit_compile).lower()}",
    ]


def measure(scope, implementation, size):
    """Runs one case in a fresh subprocess, or reports it skipped when it would not fit the memory budget."""
    estimate = estimated_memory_bytes(implementation, size, FLAGS.batch)
    base = dict(scope=scope, implementation=implementation, size=size, estimated_gb=estimate / 1e9)
    if estimate > FLAGS.max_memory_gb * 1e9:
        return dict(base, status=f"skipped: needs ~{estimate / 1e9:.1f} GB")
    result = common.run_case_subprocess(_child_command(scope, implementation, size), FLAGS.timeout_seconds)
    return dict(base, **result)


def ratios(results):
    """Per scope and size: block-sparse's speed-ups and memory fraction against masked dense YLG and SAGAN.

    speedup and cpu_speedup are reference time / block-sparse time (wall and process CPU); memory_fraction is
    block-sparse peak over baseline / the reference's.
    """
    by_case = {(result["scope"], result["implementation"], result["size"]): result for result in results}
    summary = {}
    for scope, _, size in by_case:
        sparse = by_case.get((scope, "ylg_block_sparse", size))
        entry = {}
        for reference in ("ylg_masked_dense", "sagan_1head"):
            other = by_case.get((scope, reference, size))
            if not (sparse and other and sparse["status"] == "ok" and other["status"] == "ok"):
                entry[f"block_sparse_vs_{reference}"] = None
                continue
            entry[f"block_sparse_vs_{reference}"] = dict(
                speedup=other["median_seconds"] / sparse["median_seconds"],
                cpu_speedup=other["median_cpu_seconds"] / sparse["median_cpu_seconds"],
                memory_fraction=sparse["peak_over_baseline_gb"] / other["peak_over_baseline_gb"],
            )
        summary.setdefault(scope, {})[str(size)] = entry
    return summary


def format_table(results, summary):
    header = (
        f"{'scope':<10}{'map':>9} {'implementation':<18} {'wall ms':>9} {'cpu ms':>9} {'peak RSS GB':>12} "
        f"{'over base GB':>13}  status"
    )
    lines = [header]
    for result in results:
        size = result["size"]
        if result["status"] == "ok":
            numbers = (
                f"{1000 * result['median_seconds']:9.1f} {1000 * result['median_cpu_seconds']:9.1f} "
                f"{result['peak_rss_gb']:12.2f} {result['peak_over_baseline_gb']:13.3f}"
            )
        else:
            numbers = f"{'-':>9} {'-':>9} {'-':>12} {'-':>13}"
        case = f"{result['scope']:<10}{size:>4}x{size:<4} {result['implementation']:<18}"
        lines.append(f"{case} {numbers}  {result['status']}")
    lines.append("")
    lines.append(
        f"{'scope':<10}{'map':>9} {'block-sparse vs':<18} {'wall speed-up':>14} {'cpu speed-up':>13} "
        f"{'memory fraction':>16}"
    )
    for scope, sizes in summary.items():
        for size, entry in sizes.items():
            for reference, ratio in entry.items():
                name = reference.replace("block_sparse_vs_", "")
                start = f"{scope:<10}{size:>4}x{size:<4} {name:<18}"
                if ratio is None:
                    lines.append(f"{start} {'-':>14} {'-':>13} {'-':>16}")
                else:
                    lines.append(
                        f"{start} {ratio['speedup']:13.1f}x {ratio['cpu_speedup']:12.1f}x "
                        f"{ratio['memory_fraction']:16.3f}"
                    )
    return "\n".join(lines)


def _validate_flags():
    sizes = command_line.parse_integer_list(FLAGS.sizes, "sizes")
    if not sizes or any(size < 4 or size % 2 for size in sizes):
        raise ValueError(f"--sizes={FLAGS.sizes!r} must list even sizes >= 4")
    if FLAGS.channels <= 0 or FLAGS.channels % 64:
        raise ValueError(
            f"--channels={FLAGS.channels} must be a positive multiple of 64 (8 heads must divide C/8)"
        )
    scopes = [scope.strip() for scope in FLAGS.scopes.split(",") if scope.strip()]
    if not scopes or any(scope not in SCOPES for scope in scopes):
        raise ValueError(f"--scopes={FLAGS.scopes!r} must list some of {SCOPES}")
    for name in ("batch", "repeats"):
        if getattr(FLAGS, name) <= 0:
            raise ValueError(f"--{name}={getattr(FLAGS, name)} must be positive")
    from ylg_tf.attention.layers import LOCAL_PATTERNS
    from ylg_tf.attention.masks import GEOMETRIES

    if FLAGS.pattern not in LOCAL_PATTERNS:
        raise ValueError(f"--pattern={FLAGS.pattern!r} is not one of {LOCAL_PATTERNS}")
    if FLAGS.geometry not in GEOMETRIES:
        raise ValueError(f"--geometry={FLAGS.geometry!r} is not one of {GEOMETRIES}")
    return sizes, scopes


def main(argv):
    del argv
    sizes, scopes = _validate_flags()
    if FLAGS.case:
        scope, implementation, size = (FLAGS.case.split(":") + ["", "", ""])[:3]
        if scope not in SCOPES or implementation not in IMPLEMENTATIONS or not size.isdigit():
            raise ValueError(
                f"--case={FLAGS.case!r} must be 'scope:implementation:size' with a scope of {SCOPES} and an "
                f"implementation of {IMPLEMENTATIONS}"
            )
        common.print_result(run_case(scope, implementation, int(size)))
        return

    results = []
    for scope in scopes:
        for size in sizes:
            for implementation in IMPLEMENTATIONS:
                result = measure(scope, implementation, size)
                results.append(result)
                ok = result["status"] == "ok"
                shown = f"{1000 * result['median_seconds']:.1f} ms" if ok else result["status"]
                print(f"{scope} {size}x{size} {implementation}: {shown}", file=sys.stderr, flush=True)
    summary = ratios(results)
    print(format_table(results, summary))
    if FLAGS.output:
        report = dict(
            settings=dict(
                sizes=sizes,
                scopes=scopes,
                channels=FLAGS.channels,
                batch=FLAGS.batch,
                repeats=FLAGS.repeats,
                max_memory_gb=FLAGS.max_memory_gb,
                pattern=FLAGS.pattern,
                geometry=FLAGS.geometry,
                jit_compile=FLAGS.jit_compile,
            ),
            machine=common.machine_description(),
            results=results,
            ratios=summary,
        )
        pathlib.Path(FLAGS.output).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    command_line.run(main)
