"""Import of checkpoints written by the original YLG / TF-GAN SAGAN code (TF1 Saver format).

The original names variables by TF1 variable scope, e.g. `Generator/generator/g_block1/snconv1/snconv1/kernel`;
its spectral-norm u vectors repeat the layer path twice (spec section 7). `original_variable_map` pairs each
of our variables with its original name; `load_original_checkpoint` copies them over, failing with the names
of every missing or mis-shaped variable.
"""

import logging
import os

import numpy as np
import tensorflow as tf

from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig
from ylg_tf.models.networks import build_networks

GENERATOR_SCOPE = "Generator/generator"
DISCRIMINATOR_SCOPE = "Discriminator/discriminator"
_U_SUFFIX = "spectral_normalize/spectral_norm/spectral_norm_u"


class OriginalCheckpointError(ValueError):
    """The checkpoint does not hold what the networks need."""


def _add_spectral_layer(mapping, layer, base, kernel_leaf="kernel"):
    mapping[f"{base}/{kernel_leaf}"] = layer.kernel
    if getattr(layer, "bias", None) is not None:
        mapping[f"{base}/bias"] = layer.bias
    mapping[f"{base}/{base}/{kernel_leaf}/{_U_SUFFIX}"] = layer.u


def _add_batch_norm(mapping, layer, base):
    for leaf in ("gamma", "beta", "moving_mean", "moving_variance"):
        mapping[f"{base}/{leaf}"] = getattr(layer, leaf)


def _add_attention(mapping, layer, base):
    for convolution in (layer.conv_theta, layer.conv_phi, layer.conv_g, layer.conv_attn):
        _add_spectral_layer(mapping, convolution, f"{base}/{convolution.name}", kernel_leaf="weights")
    mapping[f"{base}/sigma_ratio"] = layer.sigma_ratio


def original_variable_map(generator, discriminator):
    """{original checkpoint key: our tf.Variable} for built networks (either may be None)."""
    mapping = {}
    if generator is not None:
        scope = GENERATOR_SCOPE
        _add_spectral_layer(mapping, generator.g_snh0, f"{scope}/g_snh0/dense")
        for block in generator.blocks:
            for convolution in (block.snconv1, block.snconv2, block.snconv3):
                name = convolution.name
                _add_spectral_layer(mapping, convolution, f"{scope}/{block.name}/{name}/{name}")
            _add_batch_norm(mapping, block.cbn_0, f"{scope}/{block.name}/cbn_0")
            _add_batch_norm(mapping, block.cbn_1, f"{scope}/{block.name}/cbn_1")
        if generator.g_ops is not None:
            _add_attention(mapping, generator.g_ops, f"{scope}/g_ops")
        _add_batch_norm(mapping, generator.g_bn, f"{scope}/g_bn")
        _add_spectral_layer(mapping, generator.g_snconv_last, f"{scope}/g_snconv_last/g_snconv_last")
    if discriminator is not None:
        scope = DISCRIMINATOR_SCOPE
        for block in discriminator.blocks:
            for convolution in (block.sn_conv1, block.sn_conv2, block.sn_conv3):
                if convolution is not None:
                    name = convolution.name
                    _add_spectral_layer(mapping, convolution, f"{scope}/{block.name}/{name}/{name}")
        if discriminator.d_ops is not None:
            _add_attention(mapping, discriminator.d_ops, f"{scope}/d_ops")
        _add_spectral_layer(mapping, discriminator.d_sn_linear, f"{scope}/d_sn_linear/dense")
        embedding = discriminator.d_embedding
        mapping[f"{scope}/d_embedding/embedding_map"] = embedding.embeddings
        mapping[f"{scope}/d_embedding/{_U_SUFFIX}"] = embedding.u
    return mapping


def _checkpoint_shapes(checkpoint_prefix):
    try:
        reader = tf.train.load_checkpoint(checkpoint_prefix)
    except (tf.errors.NotFoundError, tf.errors.DataLossError, ValueError) as error:
        raise OriginalCheckpointError(
            f"cannot read a checkpoint at {checkpoint_prefix!r}: {str(error).splitlines()[0]}"
        ) from None
    return reader, reader.get_variable_to_shape_map()


def infer_model_sizes(checkpoint_prefix):
    """{"generator_channels", "discriminator_channels", "num_classes", "z_dim"} read from variable shapes."""
    _, shapes = _checkpoint_shapes(checkpoint_prefix)
    required = {
        "g_snh0": f"{GENERATOR_SCOPE}/g_snh0/dense/kernel",
        "embedding": f"{DISCRIMINATOR_SCOPE}/d_embedding/embedding_map",
        "first_conv": f"{DISCRIMINATOR_SCOPE}/d_optimized_block1/sn_conv1/sn_conv1/kernel",
        "last_conv": f"{GENERATOR_SCOPE}/g_snconv_last/g_snconv_last/kernel",
    }
    missing = [key for key in required.values() if key not in shapes]
    if missing:
        raise OriginalCheckpointError(f"not an original YLG/SAGAN checkpoint: missing {missing}")
    return {
        "z_dim": int(shapes[required["g_snh0"]][0]),
        "num_classes": int(shapes[required["embedding"]][0]),
        "discriminator_channels": int(shapes[required["first_conv"]][-1]),
        "generator_channels": int(shapes[required["last_conv"]][2]),
    }


def checkpoint_global_step(checkpoint_prefix):
    reader, shapes = _checkpoint_shapes(checkpoint_prefix)
    return int(reader.get_tensor("global_step")) if "global_step" in shapes else 0


def load_original_checkpoint(checkpoint_prefix, generator, discriminator):
    """Copies every variable of the networks from an original checkpoint. Returns its global step.

    Raises OriginalCheckpointError naming all missing and mis-shaped variables; assigns nothing then.
    """
    reader, shapes = _checkpoint_shapes(checkpoint_prefix)
    mapping = original_variable_map(generator, discriminator)
    missing = sorted(key for key in mapping if key not in shapes)
    misshaped = sorted(
        f"{key} (checkpoint {list(shapes[key])}, model {mapping[key].shape.as_list()})"
        for key, variable in mapping.items()
        if key in shapes and list(shapes[key]) != variable.shape.as_list()
    )
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {', '.join(missing)}")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped: {', '.join(misshaped)}")
    if problems:
        raise OriginalCheckpointError(f"checkpoint {checkpoint_prefix!r} does not fit the model: " + "; ".join(problems))
    values = {}
    for key in mapping:
        try:
            values[key] = reader.get_tensor(key)
        except (tf.errors.OpError, LookupError, ValueError) as error:  # LookupError: a short read
            detail = " ".join(str(error).split())[:200]
            raise OriginalCheckpointError(
                f"checkpoint {checkpoint_prefix!r} is truncated or corrupt: cannot read {key} ({detail})"
            ) from None
    for key, variable in mapping.items():
        variable.assign(np.asarray(values[key], dtype=variable.dtype.as_numpy_dtype))
    unused = sorted(set(shapes) - set(mapping) - {"global_step"})
    if unused:
        logging.info("ignored %d checkpoint variables not used by the networks (e.g. %s)", len(unused), unused[0])
    return checkpoint_global_step(checkpoint_prefix)


# Sub-folders that belong to the model a work directory held; an overwriting import removes them.
_MODEL_SUBDIRECTORIES = (
    workdirs.CHECKPOINT_DIRECTORY,
    workdirs.EXPORT_DIRECTORY,
    workdirs.SAMPLES_DIRECTORY,
    workdirs.SUMMARIES_DIRECTORY,
)


def check_workdir_free(workdir, overwrite=False):
    if tf.io.gfile.exists(os.path.join(workdir, workdirs.CONFIG_FILE)) and not overwrite:
        raise FileExistsError(
            f"{workdir!r} already holds a work directory ({workdirs.CONFIG_FILE}); pass --overwrite to replace it"
        )


def import_into_workdir(checkpoint_prefix, workdir, image_size=128, attention="ylg", overwrite=False):
    """Builds our networks from an original checkpoint and writes them as a new work directory.

    Sizes (channels, classes, z_dim) are read from the checkpoint. Returns (ExperimentConfig, checkpoint path, global step, number of variables loaded).
    """
    check_workdir_free(workdir, overwrite)
    sizes = infer_model_sizes(checkpoint_prefix)
    model_config = ModelConfig(image_size=image_size, attention=attention, **sizes)
    if attention == "none":
        # Loading ignores checkpoint variables the networks lack, which would silently drop the attention.
        _, shapes = _checkpoint_shapes(checkpoint_prefix)
        attention_keys = sorted(key for key in shapes if "/g_ops/" in key or "/d_ops/" in key)
        if attention_keys:
            raise OriginalCheckpointError(
                f"attention='none', but the checkpoint has attention variables (e.g. {attention_keys[0]}); "
                "pass the attention it was trained with"
            )
    generator, discriminator = build_networks(model_config)
    step = load_original_checkpoint(checkpoint_prefix, generator, discriminator)
    if overwrite:
        for name in _MODEL_SUBDIRECTORIES:
            if tf.io.gfile.isdir(os.path.join(workdir, name)):
                tf.io.gfile.rmtree(os.path.join(workdir, name))
    config = ExperimentConfig(model=model_config, data=DataConfig(dataset="imagenet2012"))
    workdirs.save_config(config, workdir)
    path = workdirs.write_checkpoint(workdir, generator, discriminator, step)
    return config, path, step, len(original_variable_map(generator, discriminator))
