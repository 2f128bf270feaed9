"""Attention (or residual) blocks at any feature-map size, several per network, and G without spectral norm.

References: the variable names, shapes and checkpoint keys of the default placement stored from the code before
placement existed (tests/assets/default_placement_variables.json); each network's output composed by hand from
its blocks in the documented order; the masked dense YLG layer for the block-sparse one; NumPy's largest
singular value for the spectral norm.
"""

import dataclasses
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from conftest import REPOSITORY_ROOT
from ylg_tf.config import ExperimentConfig, ModelConfig, TrainingConfig, feature_map_sizes
from ylg_tf.models.networks import Discriminator, build_networks, placements
from ylg_tf.normalization.spectral import SpectralNormalizedKernel
from ylg_tf.training.trainer import Trainer

LAYOUT_FILE = REPOSITORY_ROOT / "tests" / "assets" / "default_placement_variables.json"
# The configs the stored layout was written for (num_classes 3, z_dim 8).
LAYOUT_CASES = {
    "128/ylg": dict(image_size=128, attention="ylg", generator_channels=16, discriminator_channels=32),
    "128/sagan_8heads": dict(image_size=128, attention="sagan_8heads", generator_channels=16, discriminator_channels=8),
    "64/sagan": dict(image_size=64, attention="sagan", generator_channels=8, discriminator_channels=8),
    "32/ylg": dict(image_size=32, attention="ylg", generator_channels=32, discriminator_channels=32),
    "32/none": dict(image_size=32, attention="none", generator_channels=8, discriminator_channels=8),
}


def _config(**values):
    values = {"num_classes": 3, "z_dim": 8, **values}
    return ModelConfig(**values)


def _inputs(config, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    z = tf.constant(rng.standard_normal((batch, config.z_dim)), tf.float32)
    labels = tf.constant(rng.integers(0, config.num_classes, batch), tf.int32)
    size = config.image_size
    images = tf.constant(rng.uniform(-1, 1, (batch, size, size, 3)), tf.float32)
    return z, labels, images


def _layer_names(network):
    return [layer.name for layer in network.layers]


# ---------------------------------------------------------------------------------------------------------
# The default placement is today's architecture


@pytest.mark.parametrize("case", sorted(LAYOUT_CASES))
def test_default_placement_keeps_the_variable_names_and_shapes(case):
    stored = json.loads(LAYOUT_FILE.read_text())
    generator, discriminator = build_networks(_config(**LAYOUT_CASES[case]))
    for network in (generator, discriminator):
        now = [f"{variable.name} {list(variable.shape)}" for variable in network.variables]
        assert now == stored[f"{case}/{network.name}"]


def test_default_placement_keeps_the_checkpoint_keys(tmp_path):
    stored = json.loads(LAYOUT_FILE.read_text())["32/ylg/checkpoint_keys"]
    config = ExperimentConfig(
        model=_config(**LAYOUT_CASES["32/ylg"]), training=TrainingConfig(batch_size=2, generator_ema_decay=0.5)
    )
    trainer = Trainer(config, tf.distribute.get_strategy())
    path = trainer.checkpoint.write(os.path.join(tmp_path, "ckpt"))
    assert sorted(name for name, _ in tf.train.list_variables(path)) == stored


def test_an_explicit_default_place_is_the_default_model():
    implicit = _config(**LAYOUT_CASES["32/ylg"])
    explicit = _config(
        **LAYOUT_CASES["32/ylg"], generator_attention_resolutions=(16,), discriminator_attention_resolutions=(8,)
    )
    for network in ("generator", "discriminator"):
        assert placements(implicit, network) == placements(explicit, network)


# ---------------------------------------------------------------------------------------------------------
# Where the blocks go


def test_feature_map_sizes_per_network_and_image_size():
    assert feature_map_sizes(128, "generator") == (8, 16, 32, 64, 128)
    assert feature_map_sizes(128, "discriminator") == (4, 8, 16, 32, 64)
    assert feature_map_sizes(32, "generator") == (8, 16, 32)
    assert feature_map_sizes(32, "discriminator") == (4, 8, 16)
    config = _config(
        image_size=128, attention="sagan", generator_attention_resolutions=(64, 8),
        discriminator_attention_resolutions=(8, 64),
    )
    # Network order: G's maps grow, D's shrink; the block follows the network block with that output size.
    assert [(p.resolution, p.after, p.multiplier, p.name) for p in placements(config, "generator")] == [
        (8, 1, 16, "g_ops_8"), (64, 4, 2, "g_ops_64")
    ]
    assert [(p.resolution, p.after, p.multiplier, p.name) for p in placements(config, "discriminator")] == [
        (64, 1, 1, "d_ops_64"), (8, 4, 8, "d_ops_8")
    ]


def _generator_by_hand(generator, z, labels, extra):
    """G's output composed from its blocks: `extra` maps a block index to the block placed after it."""
    hidden = tf.reshape(generator.g_snh0(z, training=False), [-1, 4, 4, generator.initial_channels])
    for index, block in enumerate(generator.blocks, start=1):
        hidden = block(hidden, labels, training=False)
        if index in extra:
            placed = extra[index]
            hidden = placed(hidden, labels, training=False) if "residual" in placed.name else placed(hidden)
    return tf.nn.tanh(generator.g_snconv_last(tf.nn.relu(generator.g_bn(hidden, training=False))))


def _discriminator_by_hand(discriminator, images, labels, extra):
    hidden = images
    for index, block in enumerate(discriminator.blocks, start=1):
        hidden = block(hidden)
        if index in extra:
            hidden = extra[index](hidden)
    pooled = tf.reduce_sum(tf.nn.relu(hidden), axis=[1, 2])
    return discriminator.d_sn_linear(pooled) + tf.reduce_sum(
        pooled * discriminator.d_embedding(labels), axis=1, keepdims=True
    )


@pytest.mark.parametrize("block", ["attention", "residual"])
def test_attention_and_residual_blocks_sit_at_the_same_place(block):
    config = _config(
        image_size=32, attention="sagan" if block == "attention" else "none", attention_block=block,
        generator_channels=4, discriminator_channels=8,
        generator_attention_resolutions=(8,), discriminator_attention_resolutions=(16,),
    )
    generator, discriminator = build_networks(config)
    (generator_place,), (discriminator_place,) = generator.placements, discriminator.placements
    assert (generator_place.after, generator_place.resolution) == (1, 8)
    assert (discriminator_place.after, discriminator_place.resolution) == (1, 16)
    placed_generator = getattr(generator, generator_place.name)
    placed_discriminator = getattr(discriminator, discriminator_place.name)
    if block == "attention":
        assert generator.g_ops is None and set(generator.attention_layers) == {8}
        for layer in (placed_generator, placed_discriminator):
            layer.sigma_ratio.assign(0.8)  # 0 would make the attention an identity, invisible to this test
    else:
        assert generator.attention_layers == {} and generator_place.name == "g_residual_8"
        assert placed_generator.filters == 4 * 4 and not placed_generator.upsample
        assert placed_discriminator.filters == 8 and not placed_discriminator.downsample
    # The block is in the network's layer order right after the blocks it follows.
    assert _layer_names(generator).index(generator_place.name) > _layer_names(generator).index("g_block1")

    z, labels, images = _inputs(config)
    expected = _generator_by_hand(generator, z, labels, {1: placed_generator})
    np.testing.assert_allclose(generator((z, labels), training=False), expected, atol=1e-6)
    without = _generator_by_hand(generator, z, labels, {})
    assert np.max(np.abs(expected - without)) > 1e-4  # the placed block changes the output

    # D's u vectors move on every call: both computations start from the same values.
    before = [variable.numpy() for variable in discriminator.variables]
    expected = _discriminator_by_hand(discriminator, images, labels, {1: placed_discriminator})
    for variable, value in zip(discriminator.variables, before):
        variable.assign(value)
    np.testing.assert_allclose(discriminator((images, labels)), expected, atol=1e-5)


def test_several_attention_layers_and_reading_one_of_them():
    config = _config(
        image_size=32, attention="sagan", generator_channels=8, discriminator_channels=8,
        generator_attention_resolutions=(32, 8, 16), discriminator_attention_resolutions=(4, 16),
    )
    generator, discriminator = build_networks(config)
    assert [(side, layer.name) for side, layer in generator.attention_layers.items()] == [
        (8, "g_ops_8"), (16, "g_ops"), (32, "g_ops_32")
    ]
    assert [(side, layer.name) for side, layer in discriminator.attention_layers.items()] == [
        (16, "d_ops_16"), (4, "d_ops_4")
    ]
    z, labels, images = _inputs(config, batch=1)
    _, probabilities = generator((z, labels), return_attention=True)
    assert probabilities.shape == (1, 1, 16 * 16, 8 * 8)  # the default place (16x16)
    for side in (8, 32):
        _, probabilities = generator((z, labels), return_attention=True, attention_resolution=side)
        assert probabilities.shape == (1, 1, side * side, side * side // 4)
        np.testing.assert_allclose(tf.reduce_sum(probabilities, -1), 1.0, atol=1e-5)
    # D has no layer at its default place (8x8): its first attention layer is read.
    outputs = discriminator((images, labels), return_features=True, return_attention=True)
    assert outputs["features"].shape == (1, 16, 16, 8) and outputs["attention"].shape == (1, 1, 256, 64)
    outputs = discriminator((images, labels), return_features=True, return_attention=True, attention_resolution=4)
    assert outputs["features"].shape == (1, 4, 4, 32) and outputs["attention"].shape == (1, 1, 16, 4)
    with pytest.raises(ValueError, match="no attention layer on 64x64 maps; its attention layers are on 8x8, 16x16"):
        generator((z, labels), return_attention=True, attention_resolution=64)


@pytest.mark.parametrize(
    "image_size, generator_sides, discriminator_sides, channels",
    [(32, (8, 16, 32), (4, 8, 16), (64, 64)), (64, (8, 16, 32, 64), (4, 8, 16, 32), (64, 64)), (128, (64,), (64,), (32, 64))],
)
def test_block_sparse_networks_equal_masked_dense_networks_at_every_place(
    image_size, generator_sides, discriminator_sides, channels
):
    """Outputs and gradients of YLG networks with attention on every map side used, 4x4 to 64x64."""
    values = dict(
        image_size=image_size, attention="ylg", generator_channels=channels[0], discriminator_channels=channels[1],
        generator_attention_resolutions=generator_sides, discriminator_attention_resolutions=discriminator_sides,
    )
    dense_config = _config(**values, attention_implementation="dense")
    sparse_config = _config(**values, attention_implementation="block_sparse")
    dense = build_networks(dense_config)
    sparse = build_networks(sparse_config)
    for dense_network, sparse_network in zip(dense, sparse):
        sparse_network.set_weights(dense_network.get_weights())
        for layer_dense, layer_sparse in zip(
            dense_network.attention_layers.values(), sparse_network.attention_layers.values()
        ):
            layer_dense.sigma_ratio.assign(0.7)
            layer_sparse.sigma_ratio.assign(0.7)
    z, labels, _ = _inputs(dense_config, batch=1, seed=3)

    def outputs_and_gradients(generator, discriminator):
        with tf.GradientTape() as tape:
            images = generator((z, labels), training=False)
            logits = discriminator((images, labels))
        variables = generator.trainable_variables + discriminator.trainable_variables
        gradients = tape.gradient(logits, variables)  # embeddings get IndexedSlices
        return images, logits, [tf.convert_to_tensor(gradient).numpy() for gradient in gradients]

    dense_images, dense_logits, dense_gradients = outputs_and_gradients(*dense)
    sparse_images, sparse_logits, sparse_gradients = outputs_and_gradients(*sparse)
    np.testing.assert_allclose(sparse_images, dense_images, atol=1e-5)
    np.testing.assert_allclose(sparse_logits, dense_logits, rtol=1e-4, atol=1e-4)
    for sparse_gradient, dense_gradient in zip(sparse_gradients, dense_gradients):
        scale = max(1.0, float(np.abs(dense_gradient).max()))
        np.testing.assert_allclose(sparse_gradient, dense_gradient, rtol=0, atol=1e-4 * scale)


# ---------------------------------------------------------------------------------------------------------
# Spectral norm in G switched off


def _largest_singular_value(kernel):
    return float(np.linalg.svd(np.reshape(kernel, (-1, kernel.shape[-1])), compute_uv=False)[0])


def _kernel_layers(network):
    found = []
    for module in network.submodules:
        if isinstance(module, SpectralNormalizedKernel):
            found.append(module)
    return found


@pytest.mark.parametrize("spectral_norm", [True, False])
def test_generator_spectral_norm_switch(spectral_norm):
    config = _config(image_size=32, attention="sagan", generator_channels=4, discriminator_channels=4,
                     generator_spectral_norm=spectral_norm)
    generator, discriminator = build_networks(config)
    layers = _kernel_layers(generator)
    assert len(layers) == 1 + 3 * 3 + 4 + 1  # dense, 3 blocks x 3 convs, attention's 4 convs, last conv
    has_u = ["spectral_norm_u" in variable.name for variable in generator.variables]
    assert any(has_u) == spectral_norm
    assert all(layer.u is not None for layer in _kernel_layers(discriminator))  # D keeps its spectral norm

    dense = generator.g_snh0
    # Far from unit norm, with a clear gap below the top singular value (~20 against ~2): the power
    # iteration's error shrinks like (2/20)^2 per call, so 60 calls converge whatever the random kernel is.
    # (A random kernel alone has its top singular values close together: 60 calls left 1.3e-3 once in CI.)
    rng = np.random.default_rng(0)
    rows, columns = dense.kernel.shape
    left, right = rng.standard_normal(rows), rng.standard_normal(columns)
    spike = 20.0 * np.outer(left / np.linalg.norm(left), right / np.linalg.norm(right))
    dense.kernel.assign(dense.kernel + spike.astype(np.float32))
    raw = dense.kernel.numpy()
    assert _largest_singular_value(raw) > 15.0
    identity = tf.eye(config.z_dim)
    for _ in range(60):  # power iterations: u converges in training mode
        dense(identity, training=True)
    effective = (dense(identity, training=False) - dense.bias).numpy()  # rows of the kernel G uses
    if spectral_norm:
        np.testing.assert_allclose(_largest_singular_value(effective), 1.0, rtol=1e-5)
    else:
        np.testing.assert_allclose(effective, raw, rtol=1e-6, atol=1e-6)
        for layer in layers:
            np.testing.assert_array_equal(layer.normalized_kernel(layer.kernel, training=True), layer.kernel)


# ---------------------------------------------------------------------------------------------------------
# Bad placements


@pytest.mark.parametrize(
    "values, message",
    [
        (dict(generator_attention_resolutions=(64,)), r"generator_attention_resolutions=\(64,\): the generator at "
         r"image_size=32 has no 64x64 feature map; choose from \(8, 16, 32\)"),
        (dict(discriminator_attention_resolutions=(32,)), r"discriminator at image_size=32 has no 32x32 feature "
         r"map; choose from \(4, 8, 16\)"),
        (dict(generator_attention_resolutions=()), r"must name one or more feature-map sizes of the generator at "
         r"image_size=32: \(8, 16, 32\)"),
        (dict(generator_attention_resolutions=(16, 16)), "names a feature-map size twice"),
        (dict(attention_block="residual"), "it needs attention='none', got attention='ylg'"),
        (dict(attention_block="dense"), r"attention_block='dense' is not one of \('attention', 'residual'\)"),
        (dict(generator_spectral_norm="yes"), "generator_spectral_norm='yes' must be true or false"),
    ],
)
def test_bad_placements_name_the_field_and_the_allowed_values(values, message):
    with pytest.raises(ValueError, match=message):
        _config(image_size=32, attention="ylg", **values)


def test_channels_too_few_for_the_heads_at_a_place_name_that_place():
    config = _config(image_size=128, attention="ylg", generator_channels=32, discriminator_channels=32,
                     discriminator_attention_resolutions=(64,))
    with pytest.raises(ValueError, match=r"discriminator_channels=32: .* at 64x64 \(1 x discriminator_channels = 32\)"):
        Discriminator(config)
    # D's default place (32x32) has 2 x 32 = 64 channels: fine.
    Discriminator(dataclasses.replace(config, discriminator_attention_resolutions=None))


def test_config_json_round_trip_keeps_the_places():
    config = ExperimentConfig(model=_config(image_size=32, attention="sagan", generator_attention_resolutions=(8, 32)))
    restored = ExperimentConfig.from_dict(json.loads(config.to_json()))
    assert restored == config and restored.model.generator_attention_resolutions == (8, 32)


def test_inversion_takes_saliency_and_features_at_the_chosen_discriminator_layer():
    from ylg_tf.inversion.invert import InversionConfig, invert

    config = _config(image_size=32, attention="sagan", generator_channels=4, discriminator_channels=8,
                     discriminator_attention_resolutions=(8, 4))
    generator, discriminator = build_networks(config)
    image = np.zeros((32, 32, 3), np.float32)
    for side in (None, 4):
        result = invert(generator, discriminator, image, 0,
                        InversionConfig(restarts=1, steps=2, steps_per_call=2, attention_resolution=side))
        expected = 8 if side is None else 4  # None: D's layer at the original place (8x8 at image size 32)
        assert result.saliency.shape == (1, expected, expected)
        assert np.isfinite(result.loss_history).all()
    with pytest.raises(ValueError, match="no attention layer on 16x16 maps; its attention layers are on 8x8, 4x4"):
        invert(generator, discriminator, image, 0, InversionConfig(restarts=1, steps=1, attention_resolution=16))
