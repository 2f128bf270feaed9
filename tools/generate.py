"""Pictures from a trained or imported model: class grids, latent interpolations, attention of query points.

Usage:
  python tools/generate.py --workdir=DIR [--labels=0,1,2] [--num=8] [--truncation=T] [--seed=0]
      [--interpolate [--interpolation_steps=8]] [--attention_at=ROW,COLUMN [--attention_layer=SIDE]]
      [--output_dir=DIR]

Writes to --output_dir (default <workdir>/generated/):
  class_grid.png                  one row per label, --num samples each
  interpolation.png / .gif        with --interpolate: per label, a straight line between two latents
  attention_r<R>_c<C>.png         with --attention_at: per label (rows), the first sample with the query
                                  point marked, then the generator's attention of that point over the keys,
                                  one column per head (magma overlay)
--truncation=T resamples latent entries with |z| > T (0: no truncation). ROW,COLUMN are pixel coordinates
of the generated image; they are mapped to the attention layer's query grid. A model with several attention
layers (e.g. --generator_attention_resolutions=16,32) draws the one on SIDE x SIDE maps (--attention_layer).
"""

import os

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

import tf_keras  # noqa: E402
from absl import flags  # noqa: E402

from ylg_tf import command_line  # noqa: E402
from ylg_tf import latents
from ylg_tf.attention import analytics, saliency
from ylg_tf import pictures
from ylg_tf.storage import files
from ylg_tf.storage import workdir

command_line.define_model_source_flags()
flags.DEFINE_string("labels", "", "Comma-separated classes, one grid row each; default: the first 8 classes.")
flags.DEFINE_integer("num", 8, "Samples per label (one grid row; at most 256).", lower_bound=1, upper_bound=256)
flags.DEFINE_float("truncation", 0.0, "Resample latent entries with |z| above this; 0 turns truncation off.")
flags.DEFINE_integer("seed", 0, "Seed of the latents.")
flags.DEFINE_bool("interpolate", False, "Also write interpolation strips (PNG) and an animation (GIF).")
flags.DEFINE_integer("interpolation_steps", 8, "Images along each interpolation.", lower_bound=2)
flags.DEFINE_string("attention_at", "", "ROW,COLUMN pixel whose generator attention is drawn, e.g. 16,8.")
flags.DEFINE_integer(
    "attention_layer", None, "With --attention_at: feature-map side of G's attention layer to draw; default the original's."
)
flags.DEFINE_string("output_dir", None, "Where to write; default <workdir>/generated.")
FLAGS = flags.FLAGS


def parse_labels(num_classes):
    if not FLAGS.labels:
        return latents.resolve_labels(None, num_classes)
    labels = command_line.parse_integer_list(FLAGS.labels, "labels")
    if not labels:
        raise ValueError(f"--labels={FLAGS.labels!r} names no class")
    return latents.resolve_labels(labels, num_classes)


def parse_point(image_size):
    values = command_line.parse_integer_list(FLAGS.attention_at, "attention_at")
    if len(values) != 2:
        raise ValueError(f"--attention_at={FLAGS.attention_at!r} must be ROW,COLUMN (two integers)")
    saliency.query_index(values, image_size, (1, 1))  # validates the range
    return tuple(values)


def class_grid(generator, labels, truncation):
    """The class grid: one row per label, FLAGS.num samples each."""
    z, repeated = latents.class_grid_inputs(labels, FLAGS.num, generator.model_config.z_dim, FLAGS.seed, truncation)
    progress = tf_keras.utils.Progbar(len(labels) * FLAGS.num).add
    return pictures.class_grid_picture(latents.generate_images(generator, z, repeated, progress=progress), FLAGS.num)


def interpolations(generator, labels, truncation):
    """(strip, GIF frames) of the interpolations: per label, a straight line between two latents."""
    steps = FLAGS.interpolation_steps
    z, repeated = latents.interpolation_inputs(labels, steps, generator.model_config.z_dim, FLAGS.seed, truncation)
    images = latents.generate_images(generator, z, repeated, progress=tf_keras.utils.Progbar(len(labels) * steps).add)
    return pictures.interpolation_pictures(pictures.enlarge_for_display(images), len(labels), steps)


def query_attention(generator, labels, truncation, point):
    """(picture, query index, query grid, statistics): G's attention of the pixel `point` over the keys, for
    the first sample of each class-grid row; statistics is the layer's per-head entropy and distance over
    those samples (`ylg_tf.attention.analytics`)."""
    z, _ = latents.class_grid_inputs(labels, FLAGS.num, generator.model_config.z_dim, FLAGS.seed, truncation)
    images, probabilities, layer = latents.generate_with_attention(
        generator, z[:: FLAGS.num], labels, FLAGS.attention_layer
    )
    query = saliency.query_index(point, generator.model_config.image_size, layer.query_grid)
    maps = saliency.query_attention(probabilities, query, layer.key_grid)  # [L, heads, hk, wk]
    statistics = analytics.attention_statistics(probabilities, layer.query_grid, layer.key_grid)
    return pictures.query_attention_picture(images, maps, point), query, tuple(layer.query_grid), statistics


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

    def write(name, data):
        return files.write_bytes_atomically(os.path.join(output_dir, name), data)

    print(f"class grid: {len(labels)} labels x {FLAGS.num} samples")
    written = [write("class_grid.png", pictures.png_bytes(class_grid(generator, labels, truncation)))]
    if FLAGS.interpolate:
        print(f"interpolations: {len(labels)} labels x {FLAGS.interpolation_steps} steps")
        strip, frames = interpolations(generator, labels, truncation)
        written.append(write("interpolation.png", pictures.png_bytes(strip)))
        written.append(write("interpolation.gif", pictures.gif_bytes(frames, seconds_per_frame=0.15)))
    if point is not None:
        row, column = point
        picture, query, query_grid, statistics = query_attention(generator, labels, truncation, point)
        written.append(write(f"attention_r{row}_c{column}.png", pictures.png_bytes(picture)))
        print(f"attention of pixel ({row}, {column}) = query {query} of the {query_grid} grid, "
              f"{len(statistics.entropy)} heads")
        print("  head  entropy (nats)  distance (key-grid pixels), over every query of these samples")
        for head, (entropy, distance) in enumerate(zip(statistics.entropy, statistics.distance)):
            print(f"  {head:4d}  {entropy:14.3f}  {distance:10.2f}")
    print(f"{generator.name} at step {step}: wrote")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    command_line.run(main)
