"""Scores a work directory's generator with the Inception Score and FID (TF-GAN's pipeline).

Usage:
  python tools/evaluate.py --workdir=DIR [--checkpoint=PATH | --saved_model=DIR] [--protocol=standard|ylg]
      [--num_samples=N] [--batch_size=64] [--dataset=NAME --split=NAME --data_dir=DIR]
      [--inception=URL|DIR|builtin] [--resize_to_299] [--metrics=kid,precision_recall,density_coverage]
      [--per_class] [--output=FILE.json]

Samples come from G in inference mode with z ~ N(0, I) and uniform random classes. IS (one split, as
the originals) uses the classifier's `logits`, FID its `pool_3`, in float64, streamed in batches so
memory does not depend on --num_samples.

--protocol names how the scores are measured (`ylg_tf.evaluation.protocols`): "standard" (default) scores
50,000 samples against the first 50,000 real images of the evaluation split and lets the Inception module
resize them to 299 (TF-GAN 2.x's self-attention example); "ylg" does what the YLG code did (giannisdaras/ylg,
branch `train`, ylg/eval_lib.py and ylg/train_experiment.py): 32,768 samples, the first 32,768 images of
the validation split, both resized to 299x299 here with TF1's bilinear resize (`tf.compat.v1.image.resize`,
no half-pixel centres). The protocol's parameters go into the result JSON; a --num_samples, --split or
resize other than the protocol's prints a one-line warning and records `"comparable": false` with the
`deviations`, since FID depends on the sample count (fewer samples bias it upwards).

--metrics adds scores that need every feature row, on the same images (`ylg_tf.evaluation.sample_metrics`):
kid (Kernel Inception Distance, unbiased, mean and spread over 100 subsets of min(1000, N) images),
precision_recall (improved precision and recall, k = 3) and density_coverage (k = 5), all in the
classifier's pool_3 features; --per_class adds FID per class of a class-conditional generator. They hold
N x 2048 features of each side in memory (400 MB each at 50,000) and classify the real images once more.

Real-data statistics are computed once per dataset, split, resolution, sample count and classifier (its
resize included) and cached in DIR/evaluation/real_statistics/. The result is written as JSON (default:
DIR/evaluation/step_<step>.json, or export.json for --saved_model) with fid, inception_score,
num_samples, step, the checkpoint, the classifier source, the protocol and timings.

Classifier: the TF-Hub Inception module by default (needs internet, or a pre-filled TFHUB_CACHE_DIR, or
--inception=DIR with the unpacked module), except for the built-in dataset, which is scored offline by a
small classifier trained on it once (about 15 s) and cached per user in --classifier_cache (default
$YLG_TF_CACHE_DIR, else $XDG_CACHE_HOME/ylg_tf, else ~/.cache/ylg_tf); its held-out accuracy is reported.
Its numbers are not comparable with Inception numbers.

DIR, --output and the caches may be gs:// paths.
"""

import os
import sys

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

from ylg_tf import command_line  # noqa: E402
from ylg_tf.data import datasets
from ylg_tf.evaluation import classifiers, evaluate, protocols, resizing
from ylg_tf.storage import files
from ylg_tf.evaluation import inception
from ylg_tf import progress

command_line.define_model_source_flags(use_ema_verb="Score")
flags.DEFINE_string(
    "saved_model", None,
    "Score this exported generator (tools/export.py) instead of a checkpoint; the work directory still "
    "provides the config and the statistics cache.")
flags.DEFINE_enum(
    "protocol", protocols.DEFAULT_PROTOCOL, list(protocols.PROTOCOLS),
    "How the scores are measured: 'standard' (50,000 samples, the Inception module resizes) or 'ylg' (as the "
    "YLG code: 32,768 samples, the first 32,768 validation images, TF1's bilinear resize to 299 here).")
flags.DEFINE_integer(
    "num_samples", None,
    "Generated (and real) images scored; default: the protocol's count (standard 50,000, ylg 32,768). "
    "Another count is recorded as not comparable with the protocol's scores; must be at least --batch_size.")
flags.DEFINE_integer("batch_size", 64, "Images per generator/classifier call.")
flags.DEFINE_string("dataset", None, "Real-data dataset; default: the work directory config's data.dataset.")
flags.DEFINE_string(
    "split", None, "Real-data split; default: the protocol's (ylg: validation), else the config's data.eval_split.")
flags.DEFINE_string("data_dir", None, "TFDS data directory or image folder; default: the config's data.data_dir.")
flags.DEFINE_string(
    "inception", None,
    f"Classifier: a TF-Hub URL, a directory holding the unpacked module (SavedModel), or "
    f"'{classifiers.BUILTIN_SOURCE}' (the offline classifier of the built-in dataset). Default: "
    f"'{classifiers.BUILTIN_SOURCE}' when the dataset is the built-in one, else {inception.DEFAULT_INCEPTION}.")
flags.DEFINE_bool(
    "resize_to_299", False,
    "Resize images to 299x299 here with TF2's bilinear resize (tf.image.resize, half-pixel centres, as "
    "TF-GAN's CIFAR example) instead of the protocol's resize (standard: inside the Inception module; ylg: "
    "TF1's bilinear resize here); recorded as a deviation from the protocol. Needed for a module with a fixed "
    "299x299 input under the standard protocol.")
flags.DEFINE_string(
    "classifier_cache", None,
    f"Cache of the built-in classifier (one per user, so every run is scored by the same classifier); "
    f"default ${command_line.CLASSIFIER_CACHE_ENVIRONMENT_VARIABLE}, else $XDG_CACHE_HOME/ylg_tf, else "
    f"~/.cache/ylg_tf.")
flags.DEFINE_float("network_timeout", inception.DEFAULT_NETWORK_TIMEOUT_SECONDS,
                   "Seconds a TF-Hub URL may take to answer before giving up.")
flags.DEFINE_integer("seed", 0, "Seed of the generated latents and labels.")
flags.DEFINE_list("metrics", [], "More scores on the same images, comma-separated: kid, precision_recall, "
                  "density_coverage.")
flags.DEFINE_bool("per_class", False, "Also FID per class (class-conditional generators).")
flags.DEFINE_string("output", None, "JSON result file; default DIR/evaluation/step_<step>.json (export.json "
                    "for --saved_model).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.output:
        files.check_directory_can_be_made(os.path.dirname(FLAGS.output))  # now, not after the sampling
    if FLAGS.dataset is not None:
        datasets.dataset_info(FLAGS.dataset)  # an unknown name fails before any classifier is fetched
    metric_names = FLAGS.metrics + (["per_class_fid"] if FLAGS.per_class else [])
    try:
        evaluate.check_metric_names(metric_names)
    except classifiers.EvaluationError as error:
        raise classifiers.EvaluationError(f"--metrics={','.join(FLAGS.metrics)}: {error}") from None
    if FLAGS.classifier_cache:
        try:
            files.check_directory_can_be_made(FLAGS.classifier_cache)
        except NotADirectoryError as error:
            raise NotADirectoryError(f"--classifier_cache={FLAGS.classifier_cache!r}: {error}") from None
    result = evaluate.evaluate_workdir(
        FLAGS.workdir, protocol=FLAGS.protocol, num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size,
        checkpoint=FLAGS.checkpoint, saved_model=FLAGS.saved_model, use_ema=FLAGS.use_ema,
        classifier_source=FLAGS.inception,
        classifier_cache_directory=FLAGS.classifier_cache or command_line.default_classifier_cache_directory(),
        resize=resizing.RESIZE_BILINEAR_299 if FLAGS.resize_to_299 else None,
        network_timeout_seconds=FLAGS.network_timeout,
        dataset=FLAGS.dataset, split=FLAGS.split, data_dir=FLAGS.data_dir, seed=FLAGS.seed,
        extra_metrics=metric_names, progress=progress.ProgressLine(sys.stderr), log=lambda message: print(message, file=sys.stderr))
    output = evaluate.write_result(result, FLAGS.output)
    print(evaluate.result_summary(result))
    print(f"wrote {output}")


if __name__ == "__main__":
    command_line.run(main)
