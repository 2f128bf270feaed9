"""Trains SAGAN / YLG. With no flags: the offline `demo` preset (built-in shapes, 32x32, CPU, minutes).

  python experiments/train.py                                   # demo into runs/demo
  python experiments/train.py --preset=ylg --tpu=NAME --workdir=gs://bucket/ylg --data_dir=gs://bucket/tfds

Flags override the preset; the resolved config is written to WORKDIR/config.json. Rerunning with the same
--workdir resumes from its latest checkpoint (changed training settings apply; another dataset needs
--allow_data_change). One run holds a work directory at a time (WORKDIR/lock). Ctrl-C or SIGTERM saves a
checkpoint after the step in progress; a second Ctrl-C exits at once.
"""

import os
import sys

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

flags.DEFINE_string("preset", "demo", "Named config (README, 'Presets'): demo, test, ylg, sagan, sagan_feat64, ylg_feat64, ...")
flags.DEFINE_string("workdir", None, "Work directory (default: runs/<preset>).")
flags.DEFINE_integer("train_steps", None, "Total training steps.")
flags.DEFINE_integer("batch_size", None, "Global batch size (split over the replicas).")
flags.DEFINE_string("dataset", None, "builtin, imagenet2012, cifar10, imagenet_resized/32x32, imagenet_resized/64x64 or folder.")
flags.DEFINE_string("data_dir", None, "TFDS data directory, or the image folder for --dataset=folder.")
flags.DEFINE_integer("image_size", None, "Resolution: 32, 64 or 128.")
flags.DEFINE_integer("num_classes", None, "Number of classes of the model.")
flags.DEFINE_string("attention", None, "sagan, sagan_8heads, ylg, ylg_no_esa, ylg_strided or none.")
flags.DEFINE_string(
    "attention_implementation", None, "block_sparse (every preset's) or dense (the original's masked scores)."
)
flags.DEFINE_string("attention_geometry", None, "original (the original's query folding) or aligned.")
flags.DEFINE_integer("generator_channels", None, "gf_dim.")
flags.DEFINE_integer("discriminator_channels", None, "df_dim.")
flags.DEFINE_string(
    "generator_attention_resolutions", None, "Feature-map sides of G's attention (or residual) blocks, e.g. 32 or 16,64."
)
flags.DEFINE_string(
    "discriminator_attention_resolutions", None, "Feature-map sides of D's attention (or residual) blocks, e.g. 32."
)
flags.DEFINE_string("attention_block", None, "attention, or residual (a residual block in its place; attention=none).")
flags.DEFINE_bool("generator_spectral_norm", None, "Spectral norm in G (--nogenerator_spectral_norm: SN on D only).")
flags.DEFINE_integer("discriminator_steps", None, "D updates per G update, each on its own batch.")
flags.DEFINE_string("tpu", None, "TPU name, 'local' or grpc://host:port. Default: GPUs if any, else CPU.")
flags.DEFINE_integer("steps_per_loop", None, "Steps inside one tf.function between host updates.")
flags.DEFINE_integer("checkpoint_every", None, "Checkpoint period in steps.")
flags.DEFINE_integer("eval_every", None, "Evaluate FID/IS every N steps (0: off).")
flags.DEFINE_string("inception", None, "Classifier for --eval_every: TF-Hub URL, local SavedModel dir or 'builtin'.")
flags.DEFINE_integer("seed", None, "Seed of latents, data order and initial weights.")
flags.DEFINE_float("generator_learning_rate", None, "Adam rate of G (applied on resume too).")
flags.DEFINE_float("discriminator_learning_rate", None, "Adam rate of D (applied on resume too).")
flags.DEFINE_bool("jit_compile", False, "Compile each replica's step with XLA (TPUs always compile).")
flags.DEFINE_bool("allow_data_change", False, "Continue a work directory on another dataset or split.")
flags.DEFINE_bool(
    "force_unlock", False,
    "Take over the work directory's lock even when its holder cannot be checked (a run on another host).")
FLAGS = flags.FLAGS

_OVERRIDES = {
    "model": (
        "image_size", "num_classes", "attention", "attention_implementation", "attention_geometry",
        "generator_channels", "discriminator_channels", "generator_attention_resolutions",
        "discriminator_attention_resolutions", "attention_block", "generator_spectral_norm",
    ),
    "training": (
        "train_steps", "batch_size", "steps_per_loop", "checkpoint_every", "eval_every", "seed",
        "discriminator_steps", "generator_learning_rate", "discriminator_learning_rate",
    ),
    "data": ("dataset", "data_dir"),
}
_SIZE_LISTS = ("generator_attention_resolutions", "discriminator_attention_resolutions")


def _flag_value(name):
    value = FLAGS[name].value
    if name in _SIZE_LISTS:
        return tuple(command_line.parse_integer_list(value, name))
    return value


def resolved_config():
    from ylg_tf.config import get_preset

    config = get_preset(FLAGS.preset)
    changes = {
        section: {name: _flag_value(name) for name in names if FLAGS[name].value is not None}
        for section, names in _OVERRIDES.items()
    }
    return config.replace(**changes)


def main(argv):
    config = resolved_config()
    workdir = FLAGS.workdir or os.path.join("runs", FLAGS.preset)

    import tf_keras

    from ylg_tf.training.distribution import create_strategy
    from ylg_tf.storage.files import absolute_path
    from ylg_tf.training.experiment import CheckpointUnreadableError, TrainingDivergedError, run_training

    tf_keras.utils.set_random_seed(config.training.seed)
    strategy = create_strategy(FLAGS.tpu)
    evaluator = None
    if config.training.eval_every:
        from ylg_tf.evaluation.periodic import make_periodic_evaluator

        evaluator = make_periodic_evaluator(
            config, workdir, FLAGS.inception, cache_directory=command_line.default_classifier_cache_directory()
        )
    log = lambda message: print(message, flush=True)  # noqa: E731
    try:
        result = run_training(
            config, workdir, strategy, log=log, evaluator=evaluator, jit_compile=FLAGS.jit_compile,
            allow_data_change=FLAGS.allow_data_change, force_unlock=FLAGS.force_unlock,
        )
    except (TrainingDivergedError, CheckpointUnreadableError) as error:
        print(f"error: {error}", file=sys.stderr)
        sys.exit(1)
    if result.preempted:
        return  # run_training said what it saved, in one line
    log(f"done at step {result.step}: samples in {absolute_path(result.samples_path)}, "
        f"checkpoint {result.checkpoint}, SavedModel in {result.export_directory}")


if __name__ == "__main__":
    command_line.run(main)
