"""Imports a checkpoint of the original YLG/SAGAN code (TF1 layout) into a new work directory.

Sizes are read from the checkpoint's variable shapes; size flags, when given, must agree with them.
Usage:
  python tools/import_original.py --checkpoint=PATH/model.ckpt-900000 --workdir=DIR
      [--gf_dim=64 --df_dim=64 --num_classes=1000 --z_dim=128] [--attention=ylg] [--image_size=128]
      [--overwrite]
"""

import os
import pathlib
import shutil
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from ylg_tf import command_line, workdir  # noqa: E402
from ylg_tf.config import ATTENTION_KINDS, IMAGE_SIZES, DataConfig, ExperimentConfig, ModelConfig  # noqa: E402
from ylg_tf.networks import build_networks  # noqa: E402
from ylg_tf.original_checkpoint import (  # noqa: E402
    infer_model_sizes,
    load_original_checkpoint,
    original_variable_map,
)

flags.DEFINE_string("checkpoint", None, "Prefix of the original checkpoint, e.g. DIR/model.ckpt-900000.")
flags.DEFINE_string("workdir", None, "Work directory to create.")
flags.DEFINE_integer("gf_dim", None, "Generator channels; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("df_dim", None, "Discriminator channels; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("num_classes", None, "Number of classes; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("z_dim", None, "Latent size; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_enum("attention", "ylg", ATTENTION_KINDS, "Attention of the checkpoint (the released one is YLG).")
flags.DEFINE_enum("image_size", "128", [str(size) for size in IMAGE_SIZES], "Image size of the checkpoint.")
flags.DEFINE_bool("overwrite", False, "Replace an existing work directory's config and checkpoints.")
flags.mark_flags_as_required(["checkpoint", "workdir"])
FLAGS = flags.FLAGS

# Size flag -> ModelConfig field inferred from the checkpoint.
SIZE_FLAGS = {
    "gf_dim": "generator_channels",
    "df_dim": "discriminator_channels",
    "num_classes": "num_classes",
    "z_dim": "z_dim",
}
# Subdirectories that belong to the model a work directory held; --overwrite removes them.
MODEL_SUBDIRECTORIES = (
    workdir.CHECKPOINT_DIRECTORY,
    workdir.EXPORT_DIRECTORY,
    workdir.SAMPLES_DIRECTORY,
    workdir.SUMMARIES_DIRECTORY,
)


def model_config_for(checkpoint):
    sizes = infer_model_sizes(checkpoint)
    for flag_name, field in SIZE_FLAGS.items():
        given = getattr(FLAGS, flag_name)
        if given is not None and given != sizes[field]:
            raise ValueError(
                f"--{flag_name}={given} disagrees with the checkpoint {checkpoint!r}, which has "
                f"{flag_name}={sizes[field]}"
            )
    return ModelConfig(image_size=int(FLAGS.image_size), attention=FLAGS.attention, **sizes)


def check_workdir_free(directory):
    if os.path.isfile(os.path.join(directory, workdir.CONFIG_FILE)) and not FLAGS.overwrite:
        raise FileExistsError(
            f"{directory!r} already holds a work directory ({workdir.CONFIG_FILE}); pass --overwrite to replace it"
        )


def check_no_attention(checkpoint):
    # Loading ignores checkpoint variables the networks lack, which would silently drop the attention layers.
    keys = tf.train.load_checkpoint(checkpoint).get_variable_to_shape_map()
    attention_keys = sorted(key for key in keys if "/g_ops/" in key or "/d_ops/" in key)
    if attention_keys:
        raise ValueError(
            f"--attention=none, but the checkpoint has attention variables (e.g. {attention_keys[0]}); "
            "pass the attention it was trained with"
        )


def main(argv):
    del argv
    check_workdir_free(FLAGS.workdir)
    model_config = model_config_for(FLAGS.checkpoint)
    generator, discriminator = build_networks(model_config)
    if model_config.attention == "none":
        check_no_attention(FLAGS.checkpoint)
    step = load_original_checkpoint(FLAGS.checkpoint, generator, discriminator)
    if FLAGS.overwrite:
        for name in MODEL_SUBDIRECTORIES:
            shutil.rmtree(os.path.join(FLAGS.workdir, name), ignore_errors=True)
    config = ExperimentConfig(model=model_config, data=DataConfig(dataset="imagenet2012"))
    workdir.save_config(config, FLAGS.workdir)
    path = workdir.write_checkpoint(FLAGS.workdir, generator, discriminator, step)
    variables = len(original_variable_map(generator, discriminator))
    print(
        f"imported {variables} variables at step {step} "
        f"(image_size={model_config.image_size}, gf_dim={model_config.generator_channels}, "
        f"df_dim={model_config.discriminator_channels}, num_classes={model_config.num_classes}, "
        f"z_dim={model_config.z_dim}, attention={model_config.attention})"
    )
    print(f"work directory: {FLAGS.workdir} (checkpoint {path})")


if __name__ == "__main__":
    command_line.run(main)
