"""Imports a checkpoint of the original YLG/SAGAN code (TF1 layout) into a new work directory.

Sizes are read from the checkpoint's variable shapes; size flags, when given, must agree with them.
Usage:
  python tools/import_original.py --checkpoint=PATH/model.ckpt-900000 --workdir=DIR
      --attention=ylg [--gf_dim=64 --df_dim=64 --num_classes=1000 --z_dim=128] [--image_size=128]
      [--overwrite]
"""


from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

from ylg_tf.config import ATTENTION_KINDS, IMAGE_SIZES  # noqa: E402
from ylg_tf.storage.original_checkpoint import check_workdir_free, import_into_workdir, infer_model_sizes  # noqa: E402

flags.DEFINE_string("checkpoint", None, "Prefix of the original checkpoint, e.g. DIR/model.ckpt-900000.")
flags.DEFINE_string("workdir", None, "Work directory to create.")
flags.DEFINE_integer("gf_dim", None, "Generator channels; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("df_dim", None, "Discriminator channels; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("num_classes", None, "Number of classes; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_integer("z_dim", None, "Latent size; default: read from the checkpoint.", lower_bound=1)
flags.DEFINE_enum(
    "attention", None, ATTENTION_KINDS,
    "Attention the checkpoint was trained with (the released one: ylg). Required: SAGAN's and YLG's attention "
    "have the same variables and shapes, so the checkpoint cannot tell.")
flags.DEFINE_enum("image_size", "128", [str(size) for size in IMAGE_SIZES], "Image size of the checkpoint.")
flags.DEFINE_bool("overwrite", False, "Replace an existing work directory's config and checkpoints.")
flags.mark_flags_as_required(["checkpoint", "workdir"])
FLAGS = flags.FLAGS


# Size flag -> ModelConfig field read from the checkpoint.
SIZE_FLAGS = {"gf_dim": "generator_channels", "df_dim": "discriminator_channels", "num_classes": "num_classes",
              "z_dim": "z_dim"}


def main(argv):
    del argv
    if FLAGS.attention is None:
        raise ValueError(
            "--attention is required: the checkpoint cannot tell it, since SAGAN's and YLG's attention layers "
            f"have the same variables and shapes; pass the one it was trained with ({', '.join(ATTENTION_KINDS)}; "
            "the released checkpoint: --attention=ylg)"
        )
    check_workdir_free(FLAGS.workdir, FLAGS.overwrite)
    sizes = infer_model_sizes(FLAGS.checkpoint)
    for flag_name, field in SIZE_FLAGS.items():
        given = getattr(FLAGS, flag_name)
        if given is not None and given != sizes[field]:
            raise ValueError(
                f"--{flag_name}={given} disagrees with the checkpoint {FLAGS.checkpoint!r}, which has "
                f"{flag_name}={sizes[field]}"
            )
    config, path, step, count = import_into_workdir(
        FLAGS.checkpoint, FLAGS.workdir, image_size=int(FLAGS.image_size), attention=FLAGS.attention,
        overwrite=FLAGS.overwrite,
    )
    model = config.model
    print(
        f"imported {count} variables at step {step} (image_size={model.image_size}, "
        f"gf_dim={model.generator_channels}, df_dim={model.discriminator_channels}, "
        f"num_classes={model.num_classes}, z_dim={model.z_dim}, attention={model.attention})"
    )
    print(f"work directory: {FLAGS.workdir} (checkpoint {path})")


if __name__ == "__main__":
    command_line.run(main)
