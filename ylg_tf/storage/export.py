"""Export of a trained generator as a SavedModel that maps (z, labels) to uint8 images.

The SavedModel has one signature, `serving_default`:
  inputs  z       float32 [None, z_dim]
          labels  int32   [None]           (class ids in [0, num_classes); others raise an error)
  output  images  uint8   [None, S, S, 3]  round((G(z, labels) + 1) * 127.5), clipped to [0, 255]

G runs in inference mode: batch norm uses its moving statistics, and the spectral-norm layers run their power
iteration without storing u. The exported function therefore writes no variable; `export_generator` checks
this on the traced graph and refuses to export otherwise, so serving the same inputs twice gives the same
images.

The export is written to a temporary sibling directory and then renamed into place, so a reader never sees
a half-written SavedModel and an older export is replaced only once the new one is complete. Every file
operation goes through tf.io.gfile, so the output may be on gs:// (training on TPUs writes its export into a
gs:// work directory). On a local disk the renames are atomic. On an object store a directory rename is a
copy of each object then a delete, not atomic: a reader during the replacement may find the directory
missing or incomplete, and a crash part-way can leave a `.export.writing-*` or `.export.previous-*` sibling.
"""

import logging
import os
import uuid

import tensorflow as tf

from ylg_tf.config import ModelConfig
from ylg_tf.storage.files import absolute_path, make_directory

SIGNATURE_NAME = "serving_default"
SAVED_MODEL_FILE = "saved_model.pb"
# Graph ops that would make serving stateful (for example a spectral-norm u or a moving statistic update).
_VARIABLE_WRITE_OPS = frozenset(
    {
        "AssignVariableOp",
        "AssignAddVariableOp",
        "AssignSubVariableOp",
        "ResourceScatterUpdate",
        "ResourceScatterAdd",
        "ResourceScatterSub",
        "Assign",
        "AssignAdd",
        "AssignSub",
    }
)


class ExportError(ValueError):
    """The generator cannot be exported, or a directory does not hold an export."""


def images_to_uint8(images):
    """[B, S, S, 3] float in [-1, 1] -> uint8 in [0, 255] by round((x + 1) * 127.5), clipped."""
    scaled = tf.round((tf.cast(images, tf.float32) + 1.0) * 127.5)
    return tf.cast(tf.clip_by_value(scaled, 0.0, 255.0), tf.uint8)


class _GeneratorServer(tf.Module):
    """Holds the generator (and so its variables) and the serving function."""

    def __init__(self, generator, model_config: ModelConfig):
        super().__init__(name="generator_server")
        # Track the variables, not the Keras model: saving the model would also trace every layer's call.
        self.generator_variables = list(generator.variables)
        self.num_classes = model_config.num_classes

        @tf.function(
            input_signature=[
                tf.TensorSpec([None, model_config.z_dim], tf.float32, name="z"),
                tf.TensorSpec([None], tf.int32, name="labels"),
            ]
        )
        def serve(z, labels):
            # On some devices tf.gather returns zeros for an out-of-range id instead of failing.
            checks = [
                tf.debugging.assert_equal(
                    tf.shape(z)[0], tf.shape(labels)[0], message="z and labels must have the same batch size"
                ),
                tf.debugging.assert_greater_equal(labels, 0, message="labels must be >= 0"),
                tf.debugging.assert_less(
                    labels, self.num_classes, message=f"labels must be < num_classes={self.num_classes}"
                ),
            ]
            with tf.control_dependencies(checks):
                labels = tf.identity(labels)
            images = generator((z, labels), training=False)  # [B, S, S, 3] in [-1, 1]
            return {"images": images_to_uint8(images)}

        self.serve = serve


def _variable_writes(concrete_function):
    """Names of variable-writing ops in a concrete function's graph, including nested function bodies."""
    graph_def = concrete_function.graph.as_graph_def()
    nodes = list(graph_def.node)
    for function in graph_def.library.function:
        nodes.extend(function.node_def)
    return sorted(node.name for node in nodes if node.op in _VARIABLE_WRITE_OPS)


def _validate_generator(generator, model_config):
    if not isinstance(model_config, ModelConfig):
        raise ExportError(f"model_config must be a ModelConfig, got {type(model_config).__name__}")
    if not generator.built:
        raise ExportError("the generator has no variables yet: build it (Generator.build_for_config) first")
    generator_config = getattr(generator, "model_config", None)
    if generator_config is not None and generator_config != model_config:
        raise ExportError(f"the generator was built for {generator_config}, not for {model_config}")


def export_generator(generator, model_config: ModelConfig, output_directory, overwrite=False):
    """Writes `generator` as a SavedModel (see the module docstring) to `output_directory`.

    An existing export is replaced only with `overwrite`. Returns the output directory. Raises ExportError
    when the directory holds an export and not `overwrite`, when it holds something other than an export,
    or when the traced serving function would write a variable.
    """
    _validate_generator(generator, model_config)
    output_directory = absolute_path(os.fspath(output_directory).rstrip("/"))
    if tf.io.gfile.exists(output_directory):
        if not tf.io.gfile.isdir(output_directory):
            raise ExportError(f"{output_directory!r} exists and is not a directory")
        if _is_export(output_directory) and not overwrite:
            raise ExportError(f"{output_directory!r} already holds an export; pass --overwrite to replace it")
        if tf.io.gfile.listdir(output_directory) and not _is_export(output_directory):
            raise ExportError(
                f"{output_directory!r} is a non-empty directory without {SAVED_MODEL_FILE}; "
                "refusing to replace something that is not an export"
            )

    server = _GeneratorServer(generator, model_config)
    concrete_function = server.serve.get_concrete_function()
    writes = _variable_writes(concrete_function)
    if writes:
        raise ExportError(f"the inference-mode generator writes variables ({', '.join(writes[:5])}); export refused")

    make_directory(os.path.dirname(output_directory))  # a bad path is named as given, not as the temporary
    temporary = _unique_sibling(output_directory, "writing")
    make_directory(temporary)
    try:
        tf.saved_model.save(server, temporary, signatures={SIGNATURE_NAME: concrete_function})
        _replace_directory(temporary, output_directory)
    except BaseException:
        _remove_directory(temporary)
        raise
    logging.info("exported the generator to %s", output_directory)
    return output_directory


def _is_export(directory):
    return tf.io.gfile.exists(os.path.join(directory, SAVED_MODEL_FILE))


def _unique_sibling(path, purpose):
    """A free name beside `path`: <parent>/.<name>.<purpose>-<random>."""
    parent, name = os.path.split(path)
    return os.path.join(parent, f".{name}.{purpose}-{uuid.uuid4().hex[:12]}")


def _remove_directory(path):
    try:
        if tf.io.gfile.exists(path):
            tf.io.gfile.rmtree(path)
    except tf.errors.OpError as error:  # cleanup only: the original error matters more
        logging.warning("could not remove %s: %s", path, error)


def _replace_directory(source, target):
    """Renames `source` to `target`; an existing `target` is moved aside first and deleted afterwards."""
    if not tf.io.gfile.exists(target):
        tf.io.gfile.rename(source, target)
        return
    previous = _unique_sibling(target, "previous")
    tf.io.gfile.rename(target, previous)
    try:
        tf.io.gfile.rename(source, target)
    except BaseException:
        tf.io.gfile.rename(previous, target)
        raise
    _remove_directory(previous)


def load_exported_generator(directory):
    """The `serving_default` function of an export: call it as fn(z=..., labels=...)["images"]."""
    directory = os.fspath(directory)
    if not _is_export(directory):
        raise ExportError(f"{directory!r} is not an exported generator (no {SAVED_MODEL_FILE})")
    loaded = tf.saved_model.load(directory)
    if SIGNATURE_NAME not in loaded.signatures:
        raise ExportError(
            f"{directory!r} has no {SIGNATURE_NAME!r} signature (it has {sorted(loaded.signatures)})"
        )
    signature = loaded.signatures[SIGNATURE_NAME]
    # The signature reads variables owned by `loaded`; keep it alive as long as the function.
    signature.loaded_module = loaded
    return signature


def describe_signature(signature):
    """One line per input and output: `name: dtype shape`."""
    inputs = signature.structured_input_signature[1]
    outputs = signature.structured_outputs
    lines = [f"input  {name}: {spec.dtype.name} {spec.shape}" for name, spec in sorted(inputs.items())]
    lines += [f"output {name}: {tensor.dtype.name} {tensor.shape}" for name, tensor in sorted(outputs.items())]
    return lines
