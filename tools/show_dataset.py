"""Draws real training examples, one row per class, so that a generator's samples can be judged beside them.

Usage:
  python tools/show_dataset.py [--dataset=builtin] [--data_dir=DIR] [--split=train] [--image_size=32]
      [--labels=0,1,...] [--num=8] [--output=dataset_examples.png]

Prints the class name of every row. The built-in dataset needs nothing else; a TFDS dataset must be prepared
in --data_dir, a `folder` dataset is --data_dir itself.
"""

import os

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

from ylg_tf import latents, pictures  # noqa: E402
from ylg_tf.data import datasets  # noqa: E402
from ylg_tf.storage import files  # noqa: E402

flags.DEFINE_string("dataset", "builtin", f"One of {', '.join(datasets.DATASET_NAMES)}.")
flags.DEFINE_string("data_dir", None, "TFDS data directory, or the folder of a `folder` dataset.")
flags.DEFINE_string("split", "train", "Split to read (in its order, unshuffled).")
flags.DEFINE_integer("image_size", 32, "Side of the drawn images, as training resizes them.", lower_bound=8)
flags.DEFINE_string("labels", "", "Comma-separated classes, one row each; default: the first 10 classes.")
flags.DEFINE_integer("num", 8, "Examples per class (one row).", lower_bound=1, upper_bound=64)
flags.DEFINE_string("output", "dataset_examples.png", "PNG file to write.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    names = datasets.class_names(FLAGS.dataset, FLAGS.data_dir)
    labels = list(range(min(10, len(names))))
    if FLAGS.labels:
        requested = command_line.parse_integer_list(FLAGS.labels, "labels")
        try:
            labels = latents.resolve_labels(requested, len(names))
        except ValueError as error:
            raise ValueError(f"--labels={FLAGS.labels!r}: {error}") from None
    files.check_directory_can_be_made(os.path.dirname(os.path.abspath(FLAGS.output)))
    images = datasets.examples_by_class(
        FLAGS.dataset, split=FLAGS.split, image_size=FLAGS.image_size, classes=labels, per_class=FLAGS.num,
        data_dir=FLAGS.data_dir)
    path = files.write_bytes_atomically(FLAGS.output, pictures.png_bytes(pictures.class_grid_picture(images, FLAGS.num)))
    for row, label in enumerate(labels):
        print(f"row {row}: class {label} {names[label]}")
    print(f"wrote {files.absolute_path(path)}")


if __name__ == "__main__":
    command_line.run(main)
