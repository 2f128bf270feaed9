"""Trains SAGAN / YLG. With no flags: the offline `demo` preset (built-in shapes, 32x32, CPU, minutes).

  python experiments/train.py                                   # demo into runs/demo
  python experiments/train.py --preset=ylg --tpu=NAME --workdir=gs://bucket/ylg --data_dir=gs://bucket/tfds
  python experiments/train.py --preset=test --config.training.generator_ema_decay=0.999 --workdir=runs/ema
  python experiments/train.py --config_file=runs/demo/config.json --workdir=runs/demo_again
  python experiments/train.py --list_presets

The config starts from --preset (default demo) or --config_file (a JSON config, as a work directory's
config.json); then --config.SECTION.FIELD=VALUE sets any field (`--help` lists them, with the type each
takes), and --train_steps, --batch_size, ... are shortcuts for the fields they name. A field is set once.
The resolved config is written to WORKDIR/config.json, and how the run ran (strategy, replicas, --tpu,
--jit_compile) to WORKDIR/runtime.json at every start. Rerunning with the same --workdir resumes from its
latest checkpoint (changed training settings apply; another dataset needs --allow_data_change). One run
holds a work directory at a time (WORKDIR/lock). Ctrl-C or SIGTERM saves a checkpoint after the step in
progress; a second Ctrl-C exits at once.
"""

import os
import sys

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

from ylg_tf import config as configs  # noqa: E402
from ylg_tf import config_overrides  # noqa: E402

flags.DEFINE_string("preset", "demo", "Named config (--list_presets lists them): demo, test, ylg, sagan, ...")
flags.DEFINE_string(
    "config_file", None, "Start from this JSON config (a work directory's config.json) instead of --preset; "
    "needs --workdir.")
flags.DEFINE_bool("list_presets", False, "Print the presets, one line each, and exit.")
flags.DEFINE_string("workdir", None, "Work directory (default: runs/<preset>).")
flags.DEFINE_string("tpu", None, "TPU name, 'local' or grpc://host:port. Default: GPUs if any, else CPU.")
flags.DEFINE_string("inception", None, "Classifier for --eval_every: TF-Hub URL, local SavedModel dir or 'builtin'.")
flags.DEFINE_bool("jit_compile", False, "Compile each replica's step with XLA (TPUs always compile).")
flags.DEFINE_bool("allow_data_change", False, "Continue a work directory on another dataset or split.")
flags.DEFINE_bool(
    "force_unlock", False,
    "Take over the work directory's lock even when its holder cannot be checked (a run on another host).")
# Shortcuts for the settings of a launch (how long, how often, which seed, where the data is); what is
# trained comes from the preset or --config.model.*.
SHORTCUTS = {
    "train_steps": "training.train_steps",
    "batch_size": "training.batch_size",
    "steps_per_loop": "training.steps_per_loop",
    "checkpoint_every": "training.checkpoint_every",
    "eval_every": "training.eval_every",
    "seed": "training.seed",
    "dataset": "data.dataset",
    "data_dir": "data.data_dir",
}
CONFIG_FLAGS = command_line.define_config_flags(SHORTCUTS)
FLAGS = flags.FLAGS


def resolved_config():
    """The preset's or --config_file's config with the --config.* and shortcut flags applied."""
    if FLAGS.config_file is None:
        config = configs.get_preset(FLAGS.preset)
    elif FLAGS["preset"].present:
        raise ValueError(f"--preset={FLAGS.preset!r} and --config_file={FLAGS.config_file!r} both name the "
                         "config to start from; give one")
    elif not FLAGS.workdir:
        raise ValueError(f"--config_file={FLAGS.config_file!r} needs --workdir: where this run goes")
    else:
        config = config_overrides.load_config_file(FLAGS.config_file, "--config_file")
    return config_overrides.apply_overrides(config, CONFIG_FLAGS.overrides())


def list_presets():
    width = max(map(len, configs.PRESETS))
    for name in configs.PRESETS:
        print(f"{name:<{width}}  {configs.PRESET_DESCRIPTIONS[name]}")


def main(argv):
    if FLAGS.list_presets:
        return list_presets()
    config = resolved_config()
    workdir = FLAGS.workdir or os.path.join("runs", FLAGS.preset)

    import tensorflow as tf
    import tf_keras

    from ylg_tf.training.distribution import create_strategy
    from ylg_tf.data.datasets import class_names
    from ylg_tf.storage.files import absolute_path
    from ylg_tf.training.experiment import CheckpointUnreadableError, TrainingDivergedError, run_training

    tf_keras.utils.set_random_seed(config.training.seed)
    strategy = create_strategy(FLAGS.tpu)
    evaluator = None
    if config.training.eval_every:
        from ylg_tf.evaluation.periodic import make_periodic_evaluator

        try:
            evaluator = make_periodic_evaluator(
                config, workdir, FLAGS.inception, cache_directory=command_line.default_classifier_cache_directory()
            )
        except OSError as error:  # the classifier cannot be reached: say how to train without it
            command_line.fail(f"{error} (training evaluates every eval_every={config.training.eval_every} "
                              "steps; --eval_every=0 trains without evaluating)")
    from ylg_tf.evaluation.class_accuracy import make_class_accuracy_scorer, recognition_line

    # A built-in-data run is also scored by the built-in classifier: how many samples show their class.
    log = lambda message: print(message, flush=True)  # noqa: E731
    cache_directory = command_line.default_classifier_cache_directory()
    try:
        class_scorer = make_class_accuracy_scorer(config, cache_directory, training_progress=lambda step, loss: log(
            f"training the built-in classifier (once; cached in {cache_directory}): step {step}, loss {loss:.4f}"))
    except (OSError, tf.errors.OpError) as error:  # e.g. an unwritable cache: train anyway
        log(f"warning: the samples will not be scored by the built-in classifier ({error})")
        class_scorer = None
    try:
        result = run_training(
            config, workdir, strategy, log=log, evaluator=evaluator, jit_compile=FLAGS.jit_compile,
            allow_data_change=FLAGS.allow_data_change, force_unlock=FLAGS.force_unlock,
            runtime_choices={"tpu": FLAGS.tpu, "command_line": sys.argv}, class_scorer=class_scorer,
        )
    except (TrainingDivergedError, CheckpointUnreadableError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if result.preempted:
        return  # run_training said what it saved, in one line
    if result.class_accuracy is not None:
        log(recognition_line(result.class_accuracy, class_names(config.data.dataset)))
    log(f"done at step {result.step}: samples in {absolute_path(result.samples_path)} (a row per class: "
        f"{os.path.basename(result.class_grid_path)}), checkpoint {result.checkpoint}, "
        f"SavedModel in {result.export_directory}")


if __name__ == "__main__":
    command_line.run(main, explain_unknown_flag=CONFIG_FLAGS.explain_unknown_flag)
