"""Attention-guided inversion of an image (YLG's inverse_image.py, spec section 6) with a trained or imported model.

Usage:
  python tools/invert.py --workdir=DIR [--image=PATH --label=K] [--restarts=8] [--steps=1000] [--lr=0.07]
      [--heads=0,1,2,3] [--lookahead] [--pixel_loss_weight=0] [--seed=0] [--output_dir=DIR]

With --image (JPEG, PNG, grayscale, RGBA, any size: bilinear resize of the whole image to the model's size,
as the original; --center_crop crops the central square first),
--label is its class. Without --image, the tool inverts a sample of the model itself, drawn from a known
latent (class --label, or one drawn from --seed), and reports how close the found latents get to it.

Writes to --output_dir (default <workdir>/inversion/<image name, or self_<time>>): target.png, reconstruction_<i>.png,
best.png, comparison.png (target | best | restarts), saliency_head<h>.png and saliency_mean.png (D's
attention saliency over the target), latents.npy (the optimised latents [restarts, z_dim]),
loss_curve.png and inversion.json (initial and final loss of every restart, and the best).
"""

import datetime
import json
import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from ylg_tf import command_line, image_io, inversion, visualization, workdir  # noqa: E402

flags.DEFINE_string("workdir", None, "Work directory written by training or tools/import_original.py.")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory; default: the work directory's latest.")
flags.DEFINE_bool("use_ema", True, "Use the moving average of G's weights when the checkpoint has one.")
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
flags.DEFINE_bool("lookahead", False, "Wrap Adam in Lookahead (k=5, alpha=0.5); the original did not.")
flags.DEFINE_float("pixel_loss_weight", 0.0, "Weight of ||x - G(z)||_2 added to the loss; the original used 0.")
flags.DEFINE_integer("seed", 0, "Seed of the initial latents (and of the self-inversion target).")
flags.DEFINE_string("output_dir", None, "Where to write the results; default <workdir>/inversion/<name>.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS

OVERLAY_SIZE = 256  # overlays are drawn at least this large so small models stay readable


def inversion_config():
    heads = command_line.parse_integer_list(FLAGS.heads, "heads") if FLAGS.heads else None
    return inversion.InversionConfig(
        restarts=FLAGS.restarts,
        steps=FLAGS.steps,
        learning_rate=FLAGS.lr,
        heads=heads,
        lookahead=FLAGS.lookahead,
        pixel_loss_weight=FLAGS.pixel_loss_weight,
        seed=FLAGS.seed,
    )


def target_from_image(model_config):
    if FLAGS.label is None:
        raise ValueError(f"--label is required with --image: the class (0 to {model_config.num_classes - 1})")
    label = inversion.check_label(FLAGS.label, model_config.num_classes)
    image = image_io.load_image(FLAGS.image, model_config.image_size, center_crop=FLAGS.center_crop)
    return image, label, pathlib.Path(FLAGS.image).stem


def self_inversion_target(generator, model_config):
    """A sample of the model from a known latent: (image, label, true latent [z_dim])."""
    random = np.random.default_rng([FLAGS.seed, 1])
    label = FLAGS.label if FLAGS.label is not None else int(random.integers(model_config.num_classes))
    label = inversion.check_label(label, model_config.num_classes)
    true_latent = inversion.sample_latents(1, model_config.z_dim, seed=[FLAGS.seed, 2])
    image = generator((true_latent, tf.constant([label])), training=False).numpy()[0]
    return image, label, true_latent[0]


def write_pictures(result, output_dir):
    best = result.best_index
    visualization.save_png(result.target_image, os.path.join(output_dir, "target.png"))
    for index, image in enumerate(result.images):
        visualization.save_png(image, os.path.join(output_dir, f"reconstruction_{index}.png"))
    visualization.save_png(result.images[best], os.path.join(output_dir, "best.png"))
    final = result.final_loss
    visualization.save_side_by_side(
        [result.target_image, result.images[best]] + list(result.images),
        ["target", f"best (restart {best})"] + [f"restart {i}\nloss {final[i]:.3g}" for i in range(len(final))],
        os.path.join(output_dir, "comparison.png"),
    )
    size = result.target_image.shape[0]
    target = visualization.upscale(visualization.to_uint8(result.target_image), max(1, -(-OVERLAY_SIZE // size)))
    for head, saliency in enumerate(result.saliency):
        picture = visualization.attention_overlay(target, saliency)
        visualization.save_png(picture, os.path.join(output_dir, f"saliency_head{head}.png"))
    mean = visualization.attention_overlay(target, result.saliency.mean(axis=0))
    visualization.save_png(mean, os.path.join(output_dir, "saliency_mean.png"))
    visualization.save_loss_curve(
        result.loss_history,
        os.path.join(output_dir, "loss_curve.png"),
        highlight=best,
        title=f"saliency-weighted feature loss, heads {list(result.heads)}",
    )


def summary(result, config, step, true_latent):
    best = result.best_index
    report = {
        "workdir": os.path.abspath(FLAGS.workdir),
        "checkpoint_step": step,
        "image": os.path.abspath(FLAGS.image) if FLAGS.image else None,
        "label": result.label,
        "heads": list(result.heads),
        "restarts": config.restarts,
        "steps": config.steps,
        "learning_rate": config.learning_rate,
        "lookahead": config.lookahead,
        "pixel_loss_weight": config.pixel_loss_weight,
        "seed": config.seed,
        "initial_loss": result.initial_loss.tolist(),
        "final_loss": result.final_loss.tolist(),
        "initial_pixel_loss": result.pixel_loss_history[0].tolist(),
        "final_pixel_loss": result.pixel_loss_history[-1].tolist(),
        "best": {
            "restart": best,
            "initial_loss": float(result.initial_loss[best]),
            "final_loss": float(result.final_loss[best]),
            "image": "best.png",
        },
    }
    if true_latent is not None:
        initial = inversion.latent_distances(result.initial_latents, true_latent)
        final = inversion.latent_distances(result.latents, true_latent)
        report["self_inversion"] = {
            "initial_latent_distance": initial.tolist(),
            "final_latent_distance": final.tolist(),
            "best_initial_latent_distance": float(initial[best]),
            "best_final_latent_distance": float(final[best]),
        }
    return report


def main(argv):
    del argv
    config = inversion_config()
    model_config = workdir.load_config(FLAGS.workdir).model
    if FLAGS.image is not None:
        image, label, name = target_from_image(model_config)  # bad input fails before the model loads
    elif FLAGS.label is not None:
        inversion.check_label(FLAGS.label, model_config.num_classes)
    _, generator, discriminator, step = workdir.restore_networks(FLAGS.workdir, FLAGS.checkpoint, FLAGS.use_ema)
    true_latent = None
    if FLAGS.image is None:
        image, label, true_latent = self_inversion_target(generator, model_config)
        name = "self_" + datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.workdir, "inversion", name)
    os.makedirs(output_dir, exist_ok=True)
    print(f"inverting {'a model sample' if true_latent is not None else FLAGS.image} (class {label}) "
          f"with {config.restarts} restarts x {config.steps} steps")

    progress_bar = tf.keras.utils.Progbar(config.steps, stateful_metrics=["best loss"])
    result = inversion.invert(
        generator,
        discriminator,
        image,
        label,
        config,
        progress=lambda done, losses: progress_bar.update(done, [("best loss", float(np.min(losses)))]),
    )
    np.save(os.path.join(output_dir, "latents.npy"), result.latents)
    write_pictures(result, output_dir)
    report = summary(result, config, step, true_latent)
    with open(os.path.join(output_dir, "inversion.json"), "w") as file:
        json.dump(report, file, indent=2)

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
