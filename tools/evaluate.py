"""Scores a work directory's generator with the Inception Score and FID (TF-GAN's pipeline).

Usage:
  python tools/evaluate.py --workdir=DIR [--checkpoint=PATH | --saved_model=DIR] [--num_samples=50000]
      [--batch_size=64] [--dataset=NAME --split=NAME --data_dir=DIR] [--inception=URL|DIR|builtin]
      [--resize_to_299] [--output=FILE.json]

Samples come from G in inference mode with z ~ N(0, I) and uniform random classes. IS (one split, as
the originals) uses the classifier's `logits`, FID its `pool_3`, in float64, streamed in batches so
memory does not depend on --num_samples. 50,000 samples is the community standard; the SAGAN/YLG papers
used TF-GAN's pipeline with the TF-Hub Inception module, which this tool follows (see --resize_to_299).
Fewer samples bias FID upwards, so compare runs at the same count.

Real-data statistics are computed once per dataset, split, resolution, sample count and classifier and
cached in DIR/evaluation/real_statistics/. The result is written as JSON (default:
DIR/evaluation/step_<step>.json, or export.json for --saved_model) with fid, inception_score,
num_samples, step, the checkpoint, the classifier source and timings.

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
from ylg_tf.evaluation import classifiers, evaluate
from ylg_tf.storage import files
from ylg_tf.evaluation import inception
from ylg_tf import progress

command_line.define_model_source_flags(use_ema_verb="Score")
flags.DEFINE_string(
    "saved_model", None,
    "Score this exported generator (tools/export.py) instead of a checkpoint; the work directory still "
    "provides the config and the statistics cache.")
flags.DEFINE_integer(
    "num_samples", 50000,
    "Generated (and real) images scored. 50,000 is the community standard, and the papers used TF-GAN's "
    "pipeline; must be at least --batch_size.")
flags.DEFINE_integer("batch_size", 64, "Images per generator/classifier call.")
flags.DEFINE_string("dataset", None, "Real-data dataset; default: the work directory config's data.dataset.")
flags.DEFINE_string("split", None, "Real-data split; default: the config's data.eval_split.")
flags.DEFINE_string("data_dir", None, "TFDS data directory or image folder; default: the config's data.data_dir.")
flags.DEFINE_string(
    "inception", None,
    f"Classifier: a TF-Hub URL, a directory holding the unpacked module (SavedModel), or "
    f"'{classifiers.BUILTIN_SOURCE}' (the offline classifier of the built-in dataset). Default: "
    f"'{classifiers.BUILTIN_SOURCE}' when the dataset is the built-in one, else {inception.DEFAULT_INCEPTION}.")
flags.DEFINE_bool(
    "resize_to_299", False,
    "Resize images to 299x299 here (tf.image.resize, bilinear, as TF-GAN's CIFAR example) before the "
    "Inception module. Default off: images reach the module at the generator's resolution and the module "
    "resizes them to 299 itself, as in the original SAGAN/YLG evaluation "
    "(tfgan.eval.sample_and_run_inception on 128x128 images). Needed for a module with a fixed 299x299 input.")
flags.DEFINE_string(
    "classifier_cache", None,
    f"Cache of the built-in classifier (one per user, so every run is scored by the same classifier); "
    f"default ${command_line.CLASSIFIER_CACHE_ENVIRONMENT_VARIABLE}, else $XDG_CACHE_HOME/ylg_tf, else "
    f"~/.cache/ylg_tf.")
flags.DEFINE_float("network_timeout", inception.DEFAULT_NETWORK_TIMEOUT_SECONDS,
                   "Seconds a TF-Hub URL may take to answer before giving up.")
flags.DEFINE_integer("seed", 0, "Seed of the generated latents and labels.")
flags.DEFINE_string("output", None, "JSON result file; default DIR/evaluation/step_<step>.json (export.json "
                    "for --saved_model).")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    if FLAGS.output:
        files.check_directory_can_be_made(os.path.dirname(FLAGS.output))  # now, not after the sampling
    if FLAGS.dataset is not None:
        datasets.dataset_info(FLAGS.dataset)  # an unknown name fails before any classifier is fetched
    if FLAGS.classifier_cache:
        try:
            files.check_directory_can_be_made(FLAGS.classifier_cache)
        except NotADirectoryError as error:
            raise NotADirectoryError(f"--classifier_cache={FLAGS.classifier_cache!r}: {error}") from None
    result = evaluate.evaluate_workdir(
        FLAGS.workdir, num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size, checkpoint=FLAGS.checkpoint,
        saved_model=FLAGS.saved_model, use_ema=FLAGS.use_ema, classifier_source=FLAGS.inception,
        classifier_cache_directory=FLAGS.classifier_cache or command_line.default_classifier_cache_directory(),
        resize_to_inception_size=FLAGS.resize_to_299, network_timeout_seconds=FLAGS.network_timeout,
        dataset=FLAGS.dataset, split=FLAGS.split, data_dir=FLAGS.data_dir, seed=FLAGS.seed,
        progress=progress.ProgressLine(sys.stderr), log=lambda message: print(message, file=sys.stderr))
    output = evaluate.write_result(result, FLAGS.output)
    print(evaluate.result_summary(result))
    print(f"wrote {output}")


if __name__ == "__main__":
    command_line.run(main)
