"""ModelConfig.precision: mixed-precision G and D keep float32 variables, softmax, batch norm and outputs, compute
their convolutions in the low dtype, and stay close to the float32 networks with the same weights."""

import dataclasses

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf.config import ModelConfig
from ylg_tf.models.networks import build_networks

MIXED = {"mixed_bfloat16": tf.bfloat16, "mixed_float16": tf.float16}
# Unit roundoff of each compute dtype: 2^-8 for bfloat16's 8 significant bits, 2^-11 for float16's 11.
UNIT_ROUNDOFF = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}


def _config(precision, implementation="block_sparse"):
    return ModelConfig(
        image_size=32, num_classes=10, generator_channels=32, discriminator_channels=32, attention="ylg",
        attention_implementation=implementation, precision=precision,
    )


def _networks_like(reference_networks, config):
    """Networks of `config` holding the variables of `reference_networks` (the same architecture)."""
    networks = build_networks(config)
    for reference, network in zip(reference_networks, networks):
        assert len(reference.variables) == len(network.variables)
        for source, target in zip(reference.variables, network.variables):
            target.assign(source)
    return networks


def _inputs(config, batch=8):
    z = tf.random.stateless_normal([batch, config.z_dim], seed=[1, 2])
    labels = tf.range(batch, dtype=tf.int32) % config.num_classes
    return z, labels


def _outputs(networks, config):
    generator, discriminator = networks
    z, labels = _inputs(config)
    images, generator_attention = generator((z, labels), training=False, return_attention=True)
    outputs = discriminator((images, labels), return_features=True, return_attention=True)
    return dict(images=images, generator_attention=generator_attention, **outputs)


@pytest.fixture
def float32_networks():
    tf_keras.utils.set_random_seed(4)
    return build_networks(_config("float32"))


@pytest.mark.parametrize("precision", sorted(MIXED))
def test_variables_and_outputs_stay_float32(precision):
    config = _config(precision)
    networks = build_networks(config)
    for network in networks:
        assert network.dtype_policy.name == precision
        assert network.variables and {variable.dtype for variable in network.variables} == {tf.float32}
    outputs = _outputs(networks, config)
    for name, value in outputs.items():
        assert value.dtype == tf.float32, name
        assert bool(tf.reduce_all(tf.math.is_finite(value))), name


def _operation_dtypes(function, *args):
    """{op type: set of its "T" dtypes} of the ops in the traced graph of `function(*args)`."""
    graph = tf.function(function).get_concrete_function(*args).graph
    dtypes = {}
    for operation in graph.get_operations():
        attribute = operation.node_def.attr.get("T")
        if attribute is not None and attribute.WhichOneof("value") == "type":  # one dtype, not a list
            dtypes.setdefault(operation.type, set()).add(tf.as_dtype(attribute.type))
    return dtypes


@pytest.mark.parametrize("implementation", ["block_sparse", "dense"])
@pytest.mark.parametrize("precision", sorted(MIXED))
def test_convolutions_run_in_the_low_dtype_and_the_softmax_in_float32(precision, implementation):
    config = _config(precision, implementation)
    generator, discriminator = build_networks(config)
    z, labels = _inputs(config, batch=2)
    images = tf.zeros([2, 32, 32, 3])
    low = MIXED[precision]
    for network, inputs in ((generator, (z, labels)), (discriminator, (images, labels))):
        dtypes = _operation_dtypes(lambda x, y: network((x, y), training=True), *inputs)
        assert dtypes["Conv2D"] == {low}, (network.name, dtypes["Conv2D"])
        assert dtypes["Softmax"] == {tf.float32}, (network.name, dtypes["Softmax"])
        # The power iteration (float32) and, in the generator's first layer, the dense product (low dtype).
        assert tf.float32 in dtypes["MatMul"], network.name
        # Batch norm: statistics and normalisation in float32, nothing of it in the low dtype.
        if network is generator:
            assert dtypes["Rsqrt"] == {tf.float32} and low in dtypes["MatMul"]


@pytest.mark.parametrize("precision", sorted(MIXED))
def test_mixed_networks_are_close_to_float32_with_the_same_weights(precision, float32_networks):
    """Each rounding adds a relative error of at most the unit roundoff u; errors of ~20 rounded layers in a
    row add like a random walk, so the outputs are expected within a few u (measured: 1.2u to 1.5u in
    bfloat16, 2.5u to 2.8u in float16). The bound, 10u, is far below what a wrong cast or a layer left out
    would do (errors of order 1)."""
    config = _config(precision)
    mixed_networks = _networks_like(float32_networks, config)  # before D's calls move the u vectors
    expected = _outputs(float32_networks, _config("float32"))
    actual = _outputs(mixed_networks, config)
    bound = 10 * UNIT_ROUNDOFF[precision]
    for name in ("images", "logits", "features", "attention", "generator_attention"):
        reference, value = expected[name].numpy(), actual[name].numpy()
        relative = np.linalg.norm(value - reference) / np.linalg.norm(reference)
        assert relative < bound, (name, relative, bound)
    # Where the masks forbid, the probabilities stay exactly zero in every precision.
    forbidden = expected["attention"].numpy() == 0
    assert forbidden.any() and np.all(actual["attention"].numpy()[forbidden] == 0)


def test_precision_is_a_computation_field_and_checked():
    from ylg_tf.config import model_differences

    assert model_differences(_config("float32"), _config("mixed_bfloat16")) == []
    with pytest.raises(ValueError, match="precision='float64' is not one of"):
        dataclasses.replace(_config("float32"), precision="float64")
