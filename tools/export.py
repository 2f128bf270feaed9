"""Exports the generator of a work directory as a SavedModel (z, labels) -> uint8 images.

Usage:
  python tools/export.py --workdir=DIR [--checkpoint=PATH] [--output=DIR/export] [--use_ema=true]

DIR and --output may be gs:// paths (a TPU run's work directory). An existing export is replaced only with
--overwrite, and then only once the new one is complete (atomically on a local disk).
"""

import os

from ylg_tf import command_line  # noqa: E402

command_line.hide_tensorflow_start_up_messages()  # TF_CPP_MIN_LOG_LEVEL=0 shows them

from absl import flags  # noqa: E402

from ylg_tf import command_line  # noqa: E402
from ylg_tf.storage import export
from ylg_tf.storage import files
from ylg_tf.storage import workdir

command_line.define_model_source_flags(use_ema_verb="Export")
flags.DEFINE_string("output", None, "Where to write the SavedModel; default: <workdir>/export.")
flags.DEFINE_bool("overwrite", False, "Replace an existing export at --output.")
FLAGS = flags.FLAGS


def main(argv):
    del argv
    output = FLAGS.output or os.path.join(FLAGS.workdir, workdir.EXPORT_DIRECTORY)
    try:  # before the work, and named as given rather than as the temporary directory
        files.check_writable(os.path.dirname(files.absolute_path(output).rstrip("/")))
    except (PermissionError, NotADirectoryError) as error:
        raise PermissionError(f"--output={output!r} cannot be written: {error}") from None
    config, generator, _, step = workdir.restore_networks(FLAGS.workdir, FLAGS.checkpoint, use_ema=FLAGS.use_ema)
    written = export.export_generator(generator, config.model, output, overwrite=FLAGS.overwrite)
    signature = export.load_exported_generator(written)
    print(f"exported {generator.name} (step {step}) to {written}")
    print(f"signature {export.SIGNATURE_NAME}:")
    for line in export.describe_signature(signature):
        print(f"  {line}")


if __name__ == "__main__":
    command_line.run(main)
