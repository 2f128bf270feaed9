"""Pictures from a trained or imported model: class grids, latent interpolations, attention of query points.

Usage:
  python tools/generate.py --workdir=DIR [--labels=0,1,2] [--num=8] [--truncation=T] [--seed=0]
      [--interpolate [--interpolation_steps=8]] [--attention_at=ROW,COLUMN] [--output_dir=DIR]

Writes to --output_dir (default <workdir>/generated/):
  class_grid.png                  one row per label, --num samples each
  interpolation.png / .gif        with --interpolate: per label, a straight line between two latents
  attention_r<R>_c<C>.png         with --attention_at: per label (rows), the first sample with the query
                                  point marked, then the generator's attention of that point over the keys,
                                  one column per head (magma overlay)
--truncation=T resamples latent entries with |z| > T (0: no truncation). ROW,COLUMN are pixel coordinates
of the generated image; they are mapped to the attention layer's query grid.
"""

import os
import pathlib
import sys

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from absl import flags  # noqa: E402

from ylg_tf import command_line, inversion, saliency, visualization, workdir  # noqa: E402

flags.DEFINE_string("workdir", None, "Work directory written by training or tools/import_original.py.")
flags.DEFINE_string("checkpoint", None, "Checkpoint prefix or directory; default: the work directory's latest.")
flags.DEFINE_bool("use_ema", True, "Use the moving average of G's weights when the checkpoint has one.")
flags.DEFINE_string("labels", "", "Comma-separated classes, one grid row each; default: the first 8 classes.")
flags.DEFINE_integer("num", 8, "Samples per label.", lower_bound=1)
flags.DEFINE_float("truncation", 0.0, "Resample latent entries with |z| above this; 0 turns truncation off.")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_bool("interpolate", False, "Also write interpolation strips (PNG) and an animation (GIF).")
flags.DEFINE_integer("interpolation_steps", 8, "Images along each interpolation.", lower_bound=2)
flags.DEFINE_string("attention_at", "", "ROW,COLUMN pixel whose generator attention is drawn, e.g. 16,8.")
flags.DEFINE_string("output_dir", None, "Where to write; default <workdir>/generated.")
flags.mark_flag_as_required("workdir")
FLAGS = flags.FLAGS

BATCH_SIZE = 16
DISPLAY_SIZE = 128  # small images are enlarged (nearest) to at least this size


def parse_labels(num_classes):
    if not FLAGS.labels:
        return list(range(min(num_classes, 8)))
    labels = command_line.parse_integer_list(FLAGS.labels, "labels")
    if not labels:
        raise ValueError(f"--labels={FLAGS.labels!r} names no class")
    return [inversion.check_label(label, num_classes) for label in labels]


def parse_point(image_size):
    values = command_line.parse_integer_list(FLAGS.attention_at, "attention_at")
    if len(values) != 2:
        raise ValueError(f"--attention_at={FLAGS.attention_at!r} must be ROW,COLUMN (two integers)")
    saliency.query_index(values, image_size, (1, 1))  # validates the range
    return tuple(values)


def generate(generator, latents, labels, progress=None):
    """Images [N, S, S, 3] of G in inference mode, in batches."""
    images = []
    for start in range(0, len(latents), BATCH_SIZE):
        batch = slice(start, start + BATCH_SIZE)
        images.append(generator((latents[batch], tf.constant(labels[batch], tf.int32)), training=False).numpy())
        if progress is not None:
            progress.add(len(latents[batch]))
    return np.concatenate(images)


def display(images):
    """[N, S, S, 3] in [-1, 1] -> uint8, each image enlarged (nearest) to at least DISPLAY_SIZE."""
    images = visualization.to_uint8(images)
    factor = max(1, -(-DISPLAY_SIZE // images.shape[1]))
    return np.repeat(np.repeat(images, factor, axis=1), factor, axis=2)


def class_grid(generator, model_config, labels, truncation, output_dir):
    count = len(labels) * FLAGS.num
    latents = inversion.sample_latents(count, model_config.z_dim, [FLAGS.seed, 0], truncation)
    repeated = np.repeat(labels, FLAGS.num)
    print(f"class grid: {len(labels)} labels x {FLAGS.num} samples")
    images = generate(generator, latents, repeated, tf.keras.utils.Progbar(count))
    grid = visualization.image_grid(display(images), columns=FLAGS.num)
    return visualization.save_png(grid, os.path.join(output_dir, "class_grid.png"))


def interpolations(generator, model_config, labels, truncation, output_dir):
    steps = FLAGS.interpolation_steps
    ends = inversion.sample_latents(2 * len(labels), model_config.z_dim, [FLAGS.seed, 1], truncation)
    latents = np.concatenate(
        [inversion.interpolate_latents(ends[2 * row], ends[2 * row + 1], steps) for row in range(len(labels))]
    )
    print(f"interpolations: {len(labels)} labels x {steps} steps")
    images = display(generate(generator, latents, np.repeat(labels, steps), tf.keras.utils.Progbar(len(latents))))
    strip = visualization.image_grid(images, columns=steps)
    strip_path = visualization.save_png(strip, os.path.join(output_dir, "interpolation.png"))
    by_label = images.reshape((len(labels), steps) + images.shape[1:])
    frames = [visualization.image_grid(by_label[:, step], columns=len(labels)) for step in range(steps)]
    frames += frames[-2:0:-1]  # there and back again, so the loop has no jump
    gif_path = visualization.save_gif(frames, os.path.join(output_dir, "interpolation.gif"), seconds_per_frame=0.15)
    return strip_path, gif_path


def attention_maps(generator, model_config, labels, truncation, point, output_dir):
    if generator.g_ops is None:
        raise ValueError("--attention_at needs a generator with attention; this model has attention='none'")
    row, column = point
    size = model_config.image_size
    query = saliency.query_index(point, size, generator.g_ops.query_grid)
    # The first sample of each label's row of the class grid.
    latents = inversion.sample_latents(len(labels) * FLAGS.num, model_config.z_dim, [FLAGS.seed, 0], truncation)
    latents = latents[:: FLAGS.num]
    images, probabilities = generator((latents, tf.constant(labels, tf.int32)), training=False, return_attention=True)
    maps = saliency.query_attention(probabilities.numpy(), query, generator.g_ops.key_grid)  # [L, heads, hk, wk]
    pictures = display(images.numpy())
    scale = pictures.shape[1] // size
    marked_row, marked_column = row * scale + scale // 2, column * scale + scale // 2
    panels = []
    for picture, label_maps in zip(pictures, maps):
        panels.append(visualization.mark_point(picture, marked_row, marked_column))
        for head_map in label_maps:
            overlay = visualization.attention_overlay(picture, head_map)
            panels.append(visualization.mark_point(overlay, marked_row, marked_column))
    grid = visualization.image_grid(np.stack(panels), columns=1 + maps.shape[1])
    print(f"attention of pixel ({row}, {column}) = query {query} of the {generator.g_ops.query_grid} grid, "
          f"{maps.shape[1]} heads")
    return visualization.save_png(grid, os.path.join(output_dir, f"attention_r{row}_c{column}.png"))


def main(argv):
    del argv
    model_config = workdir.load_config(FLAGS.workdir).model
    labels = parse_labels(model_config.num_classes)
    if FLAGS.truncation < 0:
        raise ValueError(f"--truncation={FLAGS.truncation} must be >= 0 (0 turns truncation off)")
    truncation = FLAGS.truncation or None
    point = parse_point(model_config.image_size) if FLAGS.attention_at else None
    _, generator, _, step = workdir.restore_networks(FLAGS.workdir, FLAGS.checkpoint, FLAGS.use_ema)
    output_dir = FLAGS.output_dir or os.path.join(FLAGS.workdir, "generated")
    os.makedirs(output_dir, exist_ok=True)
    written = [class_grid(generator, model_config, labels, truncation, output_dir)]
    if FLAGS.interpolate:
        written.extend(interpolations(generator, model_config, labels, truncation, output_dir))
    if point is not None:
        written.append(attention_maps(generator, model_config, labels, truncation, point, output_dir))
    print(f"{generator.name} at step {step}: wrote")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    command_line.run(main)
