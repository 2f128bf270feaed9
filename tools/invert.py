"""Attention-guided inversion of an image (YLG's inverse_image.py, spec section 6) with a trained or imported model.

Usage:
  python tools/invert.py --workdir=DIR [--image=PATH --label=K] [--restarts=8] [--steps=1000] [--lr=0.07]
      [--heads=0,1,2,3] [--lookahead] [--pixel_loss_weight=0] [--per_restart_objective] [--seed=0]
      [--output_dir=DIR]

With --image (JPEG, PNG, grayscale, RGBA, any size: bilinear resize of the whole image to the model's size,
as the original; --center_crop crops the central square first),
--label is its class. Without --image, the tool inverts a sample of the model itself, drawn from a known
latent (class --label, or one drawn from --seed), and reports how close the found latents get to it.

Writes to --output_dir (default <workdir>/inversion/<image name, or self_<time>>): target.png, reconstruction_<i>.png,
best.png, comparison.png (target | best | restarts), saliency_head<h>.png and saliency_mean.png (D's
attention saliency over the target), latents.npy (the optimised latents [restarts, z_dim]),
loss_curve.png and inversion.json (initial and final loss of every restart, and the best).

As the original, Adam minimises one L2 norm over the whole batch of restarts per head (summed over the
heads); every restart's own loss is what the curves and the report show and what picks the best restart.
--per_restart_objective (a deviation) minimises the sum of the restarts' own losses instead.
"""

import datetime
import io
import json
import os
import pathlib

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

import numpy as np  # noqa: E402
import tf_keras  # noqa: E402
from absl import flags  # noqa: E402

from ylg_tf import command_line  # noqa: E402
from ylg_tf.storage import files
from ylg_tf.inversion import invert
from ylg_tf import latents
from ylg_tf import pictures
from ylg_tf.storage import workdir

command_line.define_model_source_flags()
flags.DEFINE_string("image", None, "Image to invert; default: a sample of the model from a known latent.")
flags.DEFINE_bool(
    "center_crop", False,
    "Crop the central square before resizing, as the training data; the original squeezes the whole image.",
)
flags.DEFINE_integer("label", None, "Class of the image (required with --image).")
flags.DEFINE_integer("restarts", 8, "Random restarts, optimised together as one batch.", lower_bound=1)
flags.DEFINE_integer("steps", 1000, "Adam steps.", lower_bound=1)
flags.DEFINE_float("lr", 0.07, "Adam learning rate.")
flags.DEFINE_string("heads", "", "Comma-separated D attention heads to weigh the loss; default 0,1,2,3 (RTL).")
flags.DEFINE_integer(
    "attention_layer", None, "Feature-map side of D's attention layer to use (models with several); default the original's."
)
flags.DEFINE_bool("lookahead", False, "Wrap Adam in Lookahead (k=5, alpha=0.5); the original did not.")
flags.DEFINE_float("pixel_loss_weight", 0.0, "Weight of ||x - G(z)||_2 added to the loss; the original used 0.")
flags.DEFINE_bool(
    "per_restart_objective", False,
    "Deviation from the original: optimise the sum of each restart's own loss instead of one norm over the "
    "batch of restarts per head.",
)
flags.DEFINE_integer("seed", 0, "Seed of the initial latents (and of the self-inversion target).")
flags.DEFINE_string("output_dir", None, "Where to write the results; default <workdir>/inversion/<name>.")
FLAGS = flags.FLAGS


def inversion_config():
    heads = command_line.parse_integer_list(FLAGS.heads, "heads") if FLAGS.heads else None
    return invert.InversionConfig(
        restarts=FLAGS.restarts,
        steps=FLAGS.steps,
        learning_rate=FLAGS.lr,
        heads=heads,
        lookahead=FLAGS.lookahead,
        pixel_loss_weight=FLAGS.pixel_loss_weight,
        per_restart_objective=FLAGS.per_restart_objective,
        seed=FLAGS.seed,
        attention_resolution=FLAGS.attention_layer,
    )


def write_outputs(result, report, output_dir):
    """latents.npy (the optimised latents [R, z_dim]), the pictures of `pictures.inversion_pictures` and
    inversion.json (the report) in output_dir."""
    files.make_directory(output_dir)
    buffer = io.BytesIO()
    np.save(buffer, result.latents)
    files.write_bytes_atomically(os.path.join(output_dir, "latents.npy"), buffer.getvalue())
    for name, data in pictures.inversion_pictures(result).items():
        files.write_bytes_atomically(os.path.join(output_dir, f"{name}.png"), data)
    files.write_text_atomically(os.path.join(output_dir, "inversion.json"), json.dumps(report, indent=2))


def main(argv):
    del argv
    config = inversion_config()
    model_config = workdir.load_config(FLAGS.workdir).model
    if FLAGS.image is not None:  # bad input fails before the model loads
        if FLAGS.label is None:
            raise ValueError(f"--label is required with --image: the class (0 to {model_config.num_classes - 1})")
        image, label = invert.load_target(FLAGS.image, FLAGS.label, model_config, FLAGS.center_crop)
        name = pathlib.Path(FLAGS.image).stem
    elif FLAGS.label is not None:
        latents.check_label(FLAGS.label, model_config.num_classes)
    _, generator, discriminator, step = workdir.restore_networks(FLAGS.workdir, FLAGS.checkpoint, FLAGS.use_ema)
    true_latent = None
    if FLAGS.image is None:
        image, label, true_latent = invert.self_inversion_target(generator, FLAGS.seed, FLAGS.label)
        name = "self_" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.workdir, "inversion", name)
    files.check_directory_can_be_made(output_dir)  # now, not after the inversion
    print(f"inverting {'a model sample' if true_latent is not None else FLAGS.image} (class {label}) "
          f"with {config.restarts} restarts x {config.steps} steps")

    progress_bar = tf_keras.utils.Progbar(config.steps, stateful_metrics=["best loss"])
    result = invert.invert(
        generator,
        discriminator,
        image,
        label,
        config,
        progress=lambda done, losses: progress_bar.update(done, [("best loss", float(np.min(losses)))]),
    )
    provenance = {
        "workdir": os.path.abspath(FLAGS.workdir),
        "checkpoint_step": step,
        "image": os.path.abspath(FLAGS.image) if FLAGS.image else None,
    }
    report = invert.inversion_report(result, config, provenance, true_latent)
    write_outputs(result, report, output_dir)

    best = report["best"]
    print(f"best restart {best['restart']}: loss {best['initial_loss']:.4g} -> {best['final_loss']:.4g}")
    if true_latent is not None:
        distances = report["self_inversion"]
        print(
            f"distance to the true latent: {distances['best_initial_latent_distance']:.4g} at the start -> "
            f"{distances['best_final_latent_distance']:.4g}"
        )
    print(f"results in {output_dir}")


if __name__ == "__main__":
    command_line.run(main)
