"""Tests for ylg_tf.models.networks: shapes and ranges per image size, parameter counts, attention kinds, config
round trips, the discriminator's features, and which variables each kind of call changes.

Numerical equality with the original code is tests/storage/test_original_conformance.py's job; this file checks the
structure and the state semantics (spec section 1) on tiny models.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from layer_contract import check_layer_contract
from ylg_tf.attention import masks
from ylg_tf.attention.layers import LocalPatternAttention, LocalSparseAttention, SelfAttention
from ylg_tf.attention.block_sparse import BlockSparseLocalAttention
from ylg_tf.config import ATTENTION_KINDS, ModelConfig
from ylg_tf.normalization.batch import ConditionalBatchNormalization
from ylg_tf.models.networks import (
    ARCHITECTURES,
    Discriminator,
    DiscriminatorBlock,
    Generator,
    GeneratorBlock,
    build_networks,
    placements,
)

NUM_CLASSES = 3
ATTENTION_CHANNELS = 64  # YLG attention needs C/8 divisible by its 8 heads


def attention_sites(image_size):
    """(generator grid, generator multiplier, discriminator grid, discriminator multiplier) of the attention."""
    architecture = ARCHITECTURES[image_size]
    generator_after = {128: 3, 64: 3, 32: 2}[image_size]  # the original's places (module docstring)
    discriminator_after = {128: 2, 64: 1, 32: 2}[image_size]
    return (
        4 * 2**generator_after,
        architecture.generator_multipliers[generator_after - 1],
        image_size // 2**discriminator_after,
        architecture.discriminator_multipliers[discriminator_after - 1],
    )


def small_config(image_size=32, attention="ylg", **overrides):
    """The narrowest networks whose attention layers get 64 channels (e.g. 32x32: gf 32 -> 2gf at 16x16)."""
    _, generator_multiplier, _, discriminator_multiplier = attention_sites(image_size)
    values = dict(
        image_size=image_size,
        num_classes=NUM_CLASSES,
        z_dim=16,
        attention=attention,
        generator_channels=ATTENTION_CHANNELS // generator_multiplier,
        discriminator_channels=ATTENTION_CHANNELS // discriminator_multiplier,
    )
    values.update(overrides)
    return ModelConfig(**values)


def generator_inputs(config, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal((batch, config.z_dim)).astype(np.float32)
    labels = rng.integers(0, config.num_classes, batch).astype(np.int32)
    return z, labels


def discriminator_inputs(config, batch=2, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.uniform(-1.0, 1.0, (batch, config.image_size, config.image_size, 3)).astype(np.float32)
    labels = rng.integers(0, config.num_classes, batch).astype(np.int32)
    return images, labels


def count_trainable(model):
    return int(sum(np.prod(weight.shape) for weight in model.trainable_weights))


def snapshot(model):
    return {variable.name: variable.numpy() for variable in model.variables}


def restore(model, values):
    for variable in model.variables:
        variable.assign(values[variable.name])


def changed_names(model, before):
    return {variable.name for variable in model.variables if not np.array_equal(variable.numpy(), before[variable.name])}


@pytest.fixture(scope="module")
def small_networks():
    tf_keras.utils.set_random_seed(0)
    config = small_config(32)
    generator, discriminator = build_networks(config)
    # A non-zero attention scale, so that the attention output differs from its input.
    generator.g_ops.sigma_ratio.assign(0.7)
    discriminator.d_ops.sigma_ratio.assign(0.7)
    return config, generator, discriminator


# ---------------------------------------------------------------------------------------------------------
# Shapes and ranges


@pytest.mark.parametrize("image_size", [32, 64, 128])
def test_output_shapes_and_ranges(image_size):
    tf_keras.utils.set_random_seed(1)
    config = small_config(image_size)
    generator, discriminator = build_networks(config)
    z, labels = generator_inputs(config)
    generator_grid, _, discriminator_grid, _ = attention_sites(image_size)

    images, probabilities = generator((z, labels), training=True, return_attention=True)
    assert images.shape == (2, image_size, image_size, 3)
    assert np.all(np.abs(images.numpy()) <= 1.0) and np.std(images.numpy()) > 1e-3
    assert probabilities.shape == (2, 8, generator_grid**2, generator_grid**2 // 4)
    assert generator((z, labels), training=False).shape == (2, image_size, image_size, 3)

    outputs = discriminator((images, labels), return_features=True, return_attention=True)
    assert outputs["logits"].shape == (2, 1) and np.all(np.isfinite(outputs["logits"].numpy()))
    assert outputs["features"].shape == (2, discriminator_grid, discriminator_grid, ATTENTION_CHANNELS)
    assert outputs["attention"].shape == (2, 8, discriminator_grid**2, discriminator_grid**2 // 4)
    assert discriminator((images, labels)).shape == (2, 1)


def test_architectures_table_matches_the_spec():
    # Generator 128: blocks to 16, 8, 4, 2, 1 x gf with attention after block 3 (32x32); D: df .. 16df.
    assert ARCHITECTURES[128].generator_multipliers == (16, 8, 4, 2, 1)
    assert ARCHITECTURES[128].discriminator_multipliers == (1, 2, 4, 8, 16)
    config = ModelConfig(image_size=128)
    assert [(p.after, p.resolution, p.name) for p in placements(config, "generator")] == [(3, 32, "g_ops")]
    assert [(p.after, p.resolution, p.name) for p in placements(config, "discriminator")] == [(2, 32, "d_ops")]
    for image_size, architecture in ARCHITECTURES.items():
        # Each G block doubles 4x4; each D block halves the image, and a flat block follows.
        assert 4 * 2 ** len(architecture.generator_multipliers) == image_size
        assert image_size // 2 ** len(architecture.discriminator_multipliers) == 4
        assert architecture.generator_multipliers[-1] == 1


def test_parameter_counts_of_the_paper_model():
    config = ModelConfig(image_size=128, num_classes=1000, generator_channels=64, discriminator_channels=64)
    assert config.attention == "ylg" and config.z_dim == 128
    generator, discriminator = build_networks(config)
    assert count_trainable(generator) == 42_078_852
    assert count_trainable(discriminator) == 39_463_618


# ---------------------------------------------------------------------------------------------------------
# Attention kinds


@pytest.mark.parametrize("attention", ATTENTION_KINDS)
def test_every_attention_kind_builds_the_documented_layers(attention):
    tf_keras.utils.set_random_seed(2)
    config = small_config(32, attention=attention)
    generator, discriminator = build_networks(config)
    z, labels = generator_inputs(config)
    images, generator_probabilities = generator((z, labels), return_attention=True)
    outputs = discriminator((images, labels), return_attention=True, return_features=True)
    assert outputs["logits"].shape == (2, 1)
    generator_grid, _, discriminator_grid, _ = attention_sites(32)
    grids = {"generator": generator_grid, "discriminator": discriminator_grid}
    assert outputs["features"].shape == (2, discriminator_grid, discriminator_grid, ATTENTION_CHANNELS)

    layers = {"generator": generator.g_ops, "discriminator": discriminator.d_ops}
    probabilities = {"generator": generator_probabilities, "discriminator": outputs["attention"]}
    for network, layer in layers.items():
        if attention == "none":
            assert layer is None and probabilities[network] is None
            continue
        if attention == "sagan" or (attention == "sagan_8heads" and network == "discriminator"):
            expected_type, expected_heads = SelfAttention, 1
        elif attention == "sagan_8heads":
            expected_type, expected_heads = SelfAttention, 8
        else:  # the default implementation
            expected_type, expected_heads = BlockSparseLocalAttention, 8
        assert type(layer) is expected_type, network
        assert layer.num_heads == expected_heads
        assert layer.u_update == ("training" if network == "generator" else "always")
        side = grids[network]
        assert probabilities[network].shape == (2, expected_heads, side * side, side * side // 4)
        if isinstance(layer, LocalPatternAttention):  # both YLG layers
            assert layer.pattern == attention and layer.geometry == "original"
            expected_masks = masks.attention_masks(
                attention, (side, side), (side // 2, side // 2), geometry="original"
            )
            np.testing.assert_array_equal(layer.masks, expected_masks)
            assert np.all(probabilities[network].numpy()[:, ~expected_masks] == 0.0)


def test_dense_implementation_builds_the_original_masked_layer_with_the_same_weights():
    config = small_config(32, attention="ylg")
    dense_config = small_config(32, attention="ylg", attention_implementation="dense")
    for network, layer_name in ((Generator, "g_ops"), (Discriminator, "d_ops")):
        block_sparse, dense = network(config).build_for_config(), network(dense_config).build_for_config()
        assert type(getattr(block_sparse, layer_name)) is BlockSparseLocalAttention
        assert type(getattr(dense, layer_name)) is LocalSparseAttention
        assert [(v.name, v.shape) for v in block_sparse.variables] == [(v.name, v.shape) for v in dense.variables]


def test_aligned_geometry_reaches_the_attention_layers():
    config = small_config(32, attention="ylg_no_esa", attention_geometry="aligned")
    generator, discriminator = Generator(config), Discriminator(config)
    for layer in (generator.g_ops, discriminator.d_ops):
        assert (layer.pattern, layer.geometry) == ("ylg_no_esa", "aligned")


# ---------------------------------------------------------------------------------------------------------
# Layer contract (tests/layer_contract.py): config round trips, weights, symbolic, eager and traced calls

# Trainable / non-trainable weights of small_config(32)'s networks. A spectrally normalised kernel brings one
# u vector, a batch normalisation gamma, beta (trainable) and its moving mean and variance; attention four
# kernels, four u vectors and sigma_ratio.
GENERATOR_WEIGHTS = (
    2 + 3 * (2 * 2 + 3 * 2) + 5 + 2 + 2,  # g_snh0, 3 blocks (2 batch norms, 3 convolutions), g_ops, g_bn, last
    1 + 3 * (2 * 2 + 3) + 4 + 2 + 1,
)
DISCRIMINATOR_WEIGHTS = (
    3 * 3 * 2 + 2 * 2 + 5 + 2 + 1,  # 3 downsampling blocks (3 convolutions), d_block4 (2), d_ops, linear, embedding
    3 * 3 + 2 + 4 + 1 + 1,
)


def test_generator_layer_contract():
    tf_keras.utils.set_random_seed(0)
    config = small_config(32)
    contract = check_layer_contract(
        lambda: Generator(config),
        (generator_inputs(config, batch=3, seed=3),),
        output_shapes=[(None, 32, 32, 3)],
        trainable_weights=GENERATOR_WEIGHTS[0],
        non_trainable_weights=GENERATOR_WEIGHTS[1],
        prepare=lambda generator: generator.g_ops.sigma_ratio.assign(0.7),  # else attention is the identity
        rtol=1e-5,
        atol=1e-5,
        training_modes=(False,),  # training mode: tests/training/test_trainer.py (a trace costs ~10 s here)
        symbolic=False,  # only ever called eagerly or in a tf.function (layer_contract.py)
    )
    clone, generator = contract.clone, contract.layer
    assert clone.model_config == config and clone.name == generator.name


def test_discriminator_layer_contract():
    tf_keras.utils.set_random_seed(0)
    config = small_config(32)
    contract = check_layer_contract(
        lambda: Discriminator(config),
        (discriminator_inputs(config, batch=3, seed=4),),
        output_shapes=[(None, 1)],
        trainable_weights=DISCRIMINATOR_WEIGHTS[0],
        non_trainable_weights=DISCRIMINATOR_WEIGHTS[1],
        prepare=lambda discriminator: discriminator.d_ops.sigma_ratio.assign(0.7),
        rtol=1e-4,
        atol=1e-4,
        training_modes=(False,),  # D's calls do the same in every mode (test_discriminator_changes_every_u...)
        symbolic=False,
    )
    clone, discriminator = contract.clone, contract.layer
    assert clone.model_config == config and clone.name == discriminator.name


@pytest.mark.parametrize(
    "make, input_shape, output_shape, weight_shapes",
    [
        (
            lambda: GeneratorBlock(8, NUM_CLASSES, name="g_block"),
            (2, 4, 4, 16),
            (2, 8, 8, 8),
            {
                "cbn_0/gamma": (NUM_CLASSES, 1, 1, 16), "cbn_0/beta": (NUM_CLASSES, 1, 1, 16),
                "cbn_0/moving_mean": (16,), "cbn_0/moving_variance": (16,),
                "cbn_1/gamma": (NUM_CLASSES, 1, 1, 8), "cbn_1/beta": (NUM_CLASSES, 1, 1, 8),
                "cbn_1/moving_mean": (8,), "cbn_1/moving_variance": (8,),
                "snconv1/kernel": (3, 3, 16, 8), "snconv1/bias": (8,), "snconv1/spectral_norm_u": (144, 1),
                "snconv2/kernel": (3, 3, 8, 8), "snconv2/bias": (8,), "snconv2/spectral_norm_u": (72, 1),
                "snconv3/kernel": (1, 1, 16, 8), "snconv3/bias": (8,), "snconv3/spectral_norm_u": (16, 1),
            },
        ),
        (
            lambda: DiscriminatorBlock(8, optimized=True, name="d_block"),
            (2, 8, 8, 3),
            (2, 4, 4, 8),
            {
                "sn_conv1/kernel": (3, 3, 3, 8), "sn_conv1/bias": (8,), "sn_conv1/spectral_norm_u": (27, 1),
                "sn_conv2/kernel": (3, 3, 8, 8), "sn_conv2/bias": (8,), "sn_conv2/spectral_norm_u": (72, 1),
                "sn_conv3/kernel": (1, 1, 3, 8), "sn_conv3/bias": (8,), "sn_conv3/spectral_norm_u": (3, 1),
            },
        ),
        (
            lambda: DiscriminatorBlock(8, downsample=False, name="d_block"),
            (2, 4, 4, 8),
            (2, 4, 4, 8),
            {
                "sn_conv1/kernel": (3, 3, 8, 8), "sn_conv1/bias": (8,), "sn_conv1/spectral_norm_u": (72, 1),
                "sn_conv2/kernel": (3, 3, 8, 8), "sn_conv2/bias": (8,), "sn_conv2/spectral_norm_u": (72, 1),
            },
        ),
    ],
    ids=["generator_block", "optimized_discriminator_block", "flat_discriminator_block"],
)
def test_blocks_weights_and_layer_contract(make, input_shape, output_shape, weight_shapes):
    tf_keras.utils.set_random_seed(5)
    rng = np.random.default_rng(6)
    inputs = rng.standard_normal(input_shape).astype(np.float32)
    labels = np.array([0, 2], np.int32)
    block = make()
    arguments = (inputs, labels) if isinstance(block, GeneratorBlock) else (inputs,)

    assert block(*arguments, training=False).shape == output_shape
    shapes = {"/".join(w.name.split(":")[0].split("/")[-2:]): tuple(w.shape) for w in block.weights}
    assert shapes == weight_shapes

    state = [name for name in weight_shapes if name.endswith(("spectral_norm_u", "moving_mean", "moving_variance"))]
    check_layer_contract(
        make,
        arguments,
        output_shapes=[(None, *output_shape[1:])],
        trainable_weights=len(weight_shapes) - len(state),
        non_trainable_weights=len(state),
        rtol=1e-5,
        atol=1e-5,
    )


# ---------------------------------------------------------------------------------------------------------
# Discriminator features


def test_discriminator_features_are_the_attention_input(small_networks):
    config, _, discriminator = small_networks
    images, labels = discriminator_inputs(config, seed=7)
    before = snapshot(discriminator)
    outputs = discriminator((images, labels), return_features=True, return_attention=True)
    restore(discriminator, before)

    hidden = tf.constant(images)
    (placement,) = discriminator.placements
    for block in discriminator.blocks[: placement.after]:
        hidden = block(hidden)
    np.testing.assert_allclose(outputs["features"], hidden, rtol=1e-5, atol=1e-5)
    attended, probabilities = discriminator.d_ops(hidden, return_attention=True)
    np.testing.assert_allclose(outputs["attention"], probabilities, rtol=1e-5, atol=1e-6)
    # Features are taken before attention, not after it.
    assert np.max(np.abs(attended.numpy() - outputs["features"].numpy())) > 1e-2
    restore(discriminator, before)


def test_discriminator_returns_only_what_is_asked(small_networks):
    config, _, discriminator = small_networks
    images, labels = discriminator_inputs(config, seed=8)
    assert set(discriminator((images, labels), return_features=True)) == {"logits", "features"}
    assert set(discriminator((images, labels), return_attention=True)) == {"logits", "attention"}


# ---------------------------------------------------------------------------------------------------------
# Which calls change which variables


def _kind(variable_name):
    if "spectral_norm_u" in variable_name:
        return "u"
    if "moving_" in variable_name:
        return "moving"
    return "other"


@pytest.mark.parametrize("training", [None, False])
def test_generator_inference_changes_no_variable(small_networks, training):
    config, generator, _ = small_networks
    before = snapshot(generator)
    first = generator(generator_inputs(config, seed=9), training=training).numpy()
    assert changed_names(generator, before) == set()
    np.testing.assert_array_equal(generator(generator_inputs(config, seed=9), training=training), first)


def test_generator_training_changes_every_u_and_moving_statistic_and_nothing_else(small_networks):
    config, generator, _ = small_networks
    before = snapshot(generator)
    generator(generator_inputs(config, seed=10), training=True)
    changed = changed_names(generator, before)
    stateful = {name for name in before if _kind(name) in ("u", "moving")}
    assert {_kind(name) for name in stateful} == {"u", "moving"}
    # Every SN layer (including the attention projections) and every batch norm of G.
    assert len([name for name in stateful if _kind(name) == "u"]) == 1 + 3 * 3 + 4 + 1
    assert changed == stateful
    restore(generator, before)


@pytest.mark.parametrize("training", [None, False, True])
def test_discriminator_changes_every_u_on_every_call(small_networks, training):
    # A one-column kernel (d_sn_linear) reaches its power-iteration fixed point u = W/|W| after one call, so
    # "changes on every call" is checked from fresh random u vectors before each call.
    config, _, discriminator = small_networks
    images, labels = discriminator_inputs(config, seed=11)
    rng = np.random.default_rng(12)
    u_variables = [variable for variable in discriminator.variables if _kind(variable.name) == "u"]
    assert not any(_kind(variable.name) == "moving" for variable in discriminator.variables)  # no batch norm
    # Three convs per block except the flat one (identity shortcut), four attention projections, linear, embedding.
    assert len(u_variables) == 3 * len(discriminator.blocks) - 1 + 4 + 2
    original = snapshot(discriminator)
    for _ in range(2):
        for variable in u_variables:
            variable.assign(rng.standard_normal(variable.shape).astype(np.float32))
        before = snapshot(discriminator)
        discriminator((images, labels), training=training)
        assert changed_names(discriminator, before) == {variable.name for variable in u_variables}
    restore(discriminator, original)


@pytest.mark.parametrize("decay, converged", [(0.9, True), (0.999, False)])
def test_batch_norm_decay_sets_how_fast_inference_catches_up_with_the_batch_statistics(decay, converged):
    # The defect of the old demo: with the original's 0.999 (and no debiasing) G's moving statistics are far
    # from the batch statistics after a short run, so its inference-mode samples (the grids, the evaluation,
    # the export) are blurred blobs. With the weights held fixed (no spectral norm, whose power iteration would
    # move them on every training call), after 150 training-mode calls on one batch
    # the moving averages have covered 1 - decay**150 of the way: all but 1e-7 at 0.9, 14% at 0.999.
    config = ModelConfig(image_size=32, num_classes=10, generator_channels=16, discriminator_channels=16,
                         attention="none", batch_norm_decay=decay, generator_spectral_norm=False)
    generator = Generator(config).build_for_config()
    inputs = generator_inputs(config, batch=32, seed=4)
    for _ in range(150):
        training_images = generator(inputs, training=True)
    inference_images = generator(inputs, training=False)
    difference = float(tf.reduce_max(tf.abs(inference_images - training_images)))
    assert (difference < 0.02) == converged, difference
    assert all(layer.decay == decay for layer in generator.submodules
               if isinstance(layer, ConditionalBatchNormalization))
