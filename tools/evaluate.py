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
small classifier trained on it once (about 15 s) and cached in $YLG_TF_CACHE_DIR or ~/.cache/ylg_tf;
its held-out accuracy is reported. Its numbers are not comparable with Inception numbers.
"""

import json
import os
import pathlib
import sys
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from absl import flags  # noqa: E402

from ylg_tf import builtin_classifier, command_line, evaluation, export, inception, workdir  # noqa: E402

flags.DEFINE_string("workdir", None, "Work directory written by training or tools/import_original.py.")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory; default: the work directory's latest.")
flags.DEFINE_string(
    "saved_model", None,
    "Score this exported generator (tools/export.py) instead of a checkpoint; the work directory still "
    "provides the config and the statistics cache.")
flags.DEFINE_bool("use_ema", True, "Score the moving average of G's weights when the checkpoint has one.")
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
    f"'{evaluation.BUILTIN_SOURCE}' (the offline classifier of the built-in dataset). Default: "
    f"'{evaluation.BUILTIN_SOURCE}' when the dataset is the built-in one, else {inception.DEFAULT_INCEPTION}.")
flags.DEFINE_bool(
    "resize_to_299", False,
    "Resize images to 299x299 here (tf.image.resize, bilinear, as TF-GAN's CIFAR example) before the "
    "Inception module. Default off: images reach the module at the generator's resolution and the module "
    "resizes them to 299 itself, as in the original SAGAN/YLG evaluation "
    "(tfgan.eval.sample_and_run_inception on 128x128 images). Needed for a module with a fixed 299x299 input.")
flags.DEFINE_string(
    "classifier_cache", None,
    f"Cache of the built-in classifier; default ${builtin_classifier.CACHE_ENVIRONMENT_VARIABLE}, else "
    f"$XDG_CACHE_HOME/ylg_tf, else ~/.cache/ylg_tf.")
flags.DEFINE_float("network_timeout", inception.DEFAULT_NETWORK_TIMEOUT_SECONDS,
                   "Seconds a TF-Hub URL may take to answer before giving up.")
flags.DEFINE_integer("seed", 0, "Seed of the generated latents and labels.")
flags.DEFINE_string("output", None, "JSON result file; default DIR/evaluation/step_<step>.json.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS


class ProgressLine:
    """One status line on stderr: rewritten in place on a terminal, else printed every 10%."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.interactive = stream.isatty()
        self.phase = None

    def __call__(self, phase, done, total):
        now = time.perf_counter()
        if phase != self.phase:
            # The rate is measured from the first report, so tracing the first batch does not skew it.
            self.phase, self.first_time, self.first_done, self.last_tenth = phase, now, done, -1
        line = f"{phase} images: {done}/{total} ({100.0 * done / total:.0f}%)"
        if done > self.first_done and now > self.first_time:
            rate = (done - self.first_done) / (now - self.first_time)
            line += f", {rate:.1f} images/s, {(total - done) / rate:.0f} s left"
        if self.interactive:
            self.stream.write("\r" + line + ("\n" if done >= total else ""))
        elif done * 10 // total > self.last_tenth:
            self.last_tenth = done * 10 // total
            self.stream.write(line + "\n")
        self.stream.flush()


def main(argv):
    del argv
    start = time.perf_counter()
    evaluation.check_sample_counts(FLAGS.num_samples, FLAGS.batch_size)
    if FLAGS.saved_model and FLAGS.checkpoint:
        raise ValueError("give --checkpoint or --saved_model, not both")
    if FLAGS.saved_model:
        config = workdir.load_config(FLAGS.workdir)
        signature = export.load_exported_generator(FLAGS.saved_model)
        sample_fn = evaluation.exported_sample_function(signature, config.model)
        step, checkpoint, generator_name = None, None, "export"
    else:
        config, generator, _, step = workdir.restore_networks(FLAGS.workdir, FLAGS.checkpoint, FLAGS.use_ema)
        checkpoint = workdir.resolve_checkpoint(FLAGS.workdir, FLAGS.checkpoint)
        sample_fn = evaluation.generator_sample_function(generator)
        generator_name = generator.name
    restore_seconds = time.perf_counter() - start

    dataset = FLAGS.dataset or config.data.dataset
    split = FLAGS.split or config.data.eval_split
    data_dir = config.data.data_dir if FLAGS.data_dir is None else FLAGS.data_dir
    source = FLAGS.inception or evaluation.default_classifier_source(dataset)
    loading_start = time.perf_counter()
    print(f"classifier: {source}", file=sys.stderr)
    try:
        classifier = evaluation.load_evaluation_classifier(
            source, image_size=config.model.image_size, resize_to_inception_size=FLAGS.resize_to_299,
            cache_directory=FLAGS.classifier_cache, network_timeout_seconds=FLAGS.network_timeout,
            training_progress=lambda done, loss: print(
                f"training the built-in classifier (once, then cached): step {done}/"
                f"{builtin_classifier.TRAINING_STEPS}, loss {loss:.4f}", file=sys.stderr))
    except inception.InceptionUnavailableError as error:
        command_line.fail(error)
    load_classifier_seconds = time.perf_counter() - loading_start

    result = evaluation.evaluate(
        sample_fn, classifier, workdir=FLAGS.workdir, model_config=config.model, dataset=dataset,
        split=split, num_samples=FLAGS.num_samples, batch_size=FLAGS.batch_size, data_dir=data_dir or None,
        seed=FLAGS.seed, progress=ProgressLine())
    statistics = result["real_statistics"]
    print(f"real-data statistics: {'reused' if statistics['reused'] else 'computed and cached in'} "
          f"{statistics['path']}", file=sys.stderr)

    result.update(
        workdir=os.path.abspath(FLAGS.workdir),
        step=step,
        checkpoint=checkpoint,
        saved_model=os.path.abspath(FLAGS.saved_model) if FLAGS.saved_model else None,
        generator=generator_name,
    )
    result["timings"].update(
        restore_seconds=round(restore_seconds, 3),
        load_classifier_seconds=round(load_classifier_seconds, 3),
        total_seconds=round(time.perf_counter() - start, 3),
    )
    output = FLAGS.output or os.path.join(
        FLAGS.workdir, evaluation.EVALUATION_DIRECTORY,
        "export.json" if FLAGS.saved_model else f"step_{step}.json")
    os.makedirs(os.path.dirname(os.path.abspath(output)), exist_ok=True)
    temporary = output + ".tmp"
    with open(temporary, "w") as file:
        json.dump(result, file, indent=2, sort_keys=True)
        file.write("\n")
    os.replace(temporary, output)

    accuracy = result["classifier"].get("held_out_accuracy")
    classifier_note = f", classifier held-out accuracy {accuracy:.3f}" if accuracy is not None else ""
    generator_note = f"step {step}" if step is not None else f"export {result['saved_model']}"
    print(f"FID {result['fid']:.4f}  IS {result['inception_score']:.4f}  ({result['num_samples']} samples, "
          f"{generator_note}, classifier {classifier.source}{classifier_note})")
    print(f"wrote {output}")


if __name__ == "__main__":
    command_line.run(main)
