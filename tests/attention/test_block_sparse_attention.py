"""BlockSparseLocalAttention computes what the masked dense LocalSparseAttention does, without [Nq, Nk] maps.

The dense layer is the reference: same weights, same inputs, every pattern and geometry, square and non-square
maps (8x16 has 32 keys, stride 5, so its last block is incomplete and padded).
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from layer_contract import check_layer_contract
from ylg_tf.attention import masks
from ylg_tf.attention.layers import LOCAL_PATTERNS, LocalSparseAttention
from ylg_tf.attention.block_sparse import BlockSparseLocalAttention, build_plan
from ylg_tf.config import ModelConfig
from ylg_tf.models.networks import make_attention

CHANNELS = 64  # the smallest C with 8 heads dividing C/8
BATCH = 2
LAYER_GRIDS = [(8, 8), (16, 16), (8, 16)]
PATTERN_GEOMETRIES = [(pattern, geometry) for pattern in LOCAL_PATTERNS for geometry in masks.GEOMETRIES]


@pytest.fixture
def float64_layers():
    previous = tf_keras.backend.floatx()
    tf_keras.backend.set_floatx("float64")
    try:
        yield
    finally:
        tf_keras.backend.set_floatx(previous)


def _inputs(grid, seed, dtype="float32"):
    rng = np.random.default_rng(seed)
    inputs = rng.normal(size=(BATCH, *grid, CHANNELS)).astype(dtype)
    cotangent = rng.normal(size=inputs.shape).astype(dtype)
    return tf.constant(inputs), tf.constant(cotangent)


def _twin_layers(pattern, geometry, inputs, seed):
    """A dense and a block-sparse layer with identical weights and a random non-zero sigma_ratio."""
    dense = LocalSparseAttention(pattern=pattern, geometry=geometry)
    sparse = BlockSparseLocalAttention(pattern=pattern, geometry=geometry)
    dense(inputs)  # the sub-layers create their weights on the first call
    sparse(inputs)
    sparse.set_weights(dense.get_weights())
    sigma_ratio = np.random.default_rng(seed).uniform(0.5, 1.5)
    dense.sigma_ratio.assign(sigma_ratio)
    sparse.sigma_ratio.assign(sigma_ratio)
    return dense, sparse


def _assert_float32_gradients_close(actual, expected):
    """float32 weight gradients sum ~1e4 terms (in another order, or in threads): 1e-4 of their scale.

    The exact equality is what the float64 test checks; here a wrong mask or index would be off by O(scale).
    """
    scale = max(1.0, float(np.abs(expected).max()))
    np.testing.assert_allclose(actual, expected, rtol=0, atol=1e-4 * scale)


def _outputs_and_gradients(layer, inputs, cotangent):
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        outputs = layer(inputs)
        loss = tf.reduce_sum(outputs * cotangent)
    return outputs, tape.gradient(loss, [inputs] + layer.trainable_weights)


@pytest.mark.parametrize("geometry", masks.GEOMETRIES)
@pytest.mark.parametrize("pattern", LOCAL_PATTERNS + ("dense",))
@pytest.mark.parametrize("query_grid", [(2, 2), (8, 8), (8, 16), (16, 8), (6, 14), (12, 8), (16, 16)])
def test_plan_scores_exactly_the_masks_once(pattern, geometry, query_grid):
    key_grid = (query_grid[0] // 2, query_grid[1] // 2)
    num_heads = 3 if pattern == "dense" else None
    plan = build_plan(pattern, query_grid, key_grid, geometry=geometry, num_heads=num_heads)
    expected = masks.attention_masks(pattern, query_grid, key_grid, geometry=geometry, num_heads=num_heads)
    np.testing.assert_array_equal(plan.dense_masks(), expected)
    # No (head, query, key) is scored twice, e.g. a repetitive head's diagonal that is also a summary key.
    scored = sum(heads.size for _, _, heads, _, _ in plan.scatter_coordinates())
    assert scored == expected.sum()
    # About sqrt(n) slots per query and head, not n.
    slots = max(group.key_positions.shape[-1] for group in plan.groups)
    assert pattern == "dense" or slots <= 2 * plan.stride + 1


def test_plan_rejects_bad_arguments():
    with pytest.raises(ValueError, match="pattern='ylg_esa'"):
        build_plan("ylg_esa", (8, 8), (4, 4))
    with pytest.raises(ValueError, match="geometry='folded'"):
        build_plan("ylg", (8, 8), (4, 4), geometry="folded")
    with pytest.raises(ValueError, match="same number of queries"):
        build_plan("ylg", (6, 6), (4, 4), geometry="aligned")  # key rows serve 4, 2 or 1 queries


@pytest.mark.parametrize("pattern, geometry", PATTERN_GEOMETRIES)
def test_outputs_and_gradients_equal_dense_in_float64(pattern, geometry, float64_layers):
    for index, grid in enumerate(LAYER_GRIDS):
        inputs, cotangent = _inputs(grid, seed=index, dtype="float64")
        dense, sparse = _twin_layers(pattern, geometry, inputs, seed=index)
        dense_outputs, dense_gradients = _outputs_and_gradients(dense, inputs, cotangent)
        sparse_outputs, sparse_gradients = _outputs_and_gradients(sparse, inputs, cotangent)
        assert sparse_outputs.dtype == tf.float64
        np.testing.assert_allclose(sparse_outputs, dense_outputs, rtol=0, atol=1e-10, err_msg=f"{grid}")
        names = ["inputs"] + [weight.name for weight in dense.trainable_weights]
        assert len(sparse_gradients) == len(dense_gradients) == 6  # inputs, 4 kernels, sigma_ratio
        for name, sparse_gradient, dense_gradient in zip(names, sparse_gradients, dense_gradients):
            assert float(np.abs(dense_gradient).max()) > 1e-3, name  # the gradient is not trivially zero
            np.testing.assert_allclose(
                sparse_gradient, dense_gradient, rtol=0, atol=1e-9, err_msg=f"{grid} {name}"
            )


@pytest.mark.parametrize("pattern, geometry", PATTERN_GEOMETRIES)
def test_float32_outputs_gradients_and_attention_maps_equal_dense(pattern, geometry):
    for index, grid in enumerate([(8, 16)]):
        inputs, cotangent = _inputs(grid, seed=10 + index)
        dense, sparse = _twin_layers(pattern, geometry, inputs, seed=index)
        dense_outputs, dense_gradients = _outputs_and_gradients(dense, inputs, cotangent)
        sparse_outputs, sparse_gradients = _outputs_and_gradients(sparse, inputs, cotangent)
        np.testing.assert_allclose(sparse_outputs, dense_outputs, rtol=0, atol=1e-5)
        for sparse_gradient, dense_gradient in zip(sparse_gradients, dense_gradients):
            _assert_float32_gradients_close(sparse_gradient, dense_gradient)

        _, dense_probabilities = dense(inputs, return_attention=True)
        outputs, sparse_probabilities = sparse(inputs, return_attention=True)
        np.testing.assert_allclose(outputs, dense_outputs, rtol=0, atol=1e-5)
        dense_probabilities, sparse_probabilities = dense_probabilities.numpy(), sparse_probabilities.numpy()
        assert sparse_probabilities.shape == dense_probabilities.shape
        forbidden = ~dense.masks[None]
        assert np.all(dense_probabilities[np.broadcast_to(forbidden, dense_probabilities.shape)] == 0.0)
        np.testing.assert_array_equal(sparse_probabilities == 0.0, dense_probabilities == 0.0)
        np.testing.assert_allclose(sparse_probabilities, dense_probabilities, rtol=0, atol=1e-6)


@pytest.mark.parametrize("pattern", ["ylg", "ylg_strided"])  # together every block formulation
def test_unknown_batch_and_xla_give_the_eager_results(pattern):
    grid = (8, 16)
    inputs, cotangent = _inputs(grid, seed=3)
    _, layer = _twin_layers(pattern, "original", inputs, seed=3)
    eager_outputs, eager_gradients = _outputs_and_gradients(layer, inputs, cotangent)

    signature = [tf.TensorSpec([None, *grid, CHANNELS], tf.float32)] * 2
    graph_step = tf.function(lambda x, c: _outputs_and_gradients(layer, x, c), input_signature=signature)
    xla_step = tf.function(lambda x, c: _outputs_and_gradients(layer, x, c), jit_compile=True)
    for step in (graph_step, xla_step):
        outputs, gradients = step(inputs, cotangent)
        np.testing.assert_allclose(outputs, eager_outputs, rtol=0, atol=1e-5)
        for gradient, eager_gradient in zip(gradients, eager_gradients):
            _assert_float32_gradients_close(gradient, eager_gradient)
    assert graph_step.get_concrete_function().structured_outputs[0].shape.as_list() == [None, *grid, CHANNELS]

    attention_map = tf.function(lambda x: layer(x, return_attention=True)[1], jit_compile=True)(inputs)
    _, eager_map = layer(inputs, return_attention=True)
    np.testing.assert_array_equal(attention_map.numpy() == 0.0, eager_map.numpy() == 0.0)
    np.testing.assert_allclose(attention_map, eager_map, rtol=0, atol=1e-6)


def _largest_tensor(layer, grid):
    """Largest element count of any tensor in a traced training step (forward + backward) of BATCH examples.

    The batch is static here so that every shape is known (the gradients of broadcasting ops lose their
    static shapes when the batch is unknown).
    """
    layer(tf.zeros([1, *grid, CHANNELS]))

    @tf.function(input_signature=[tf.TensorSpec([BATCH, *grid, CHANNELS], tf.float32)])
    def step(inputs):
        with tf.GradientTape() as tape:
            tape.watch(inputs)
            loss = tf.reduce_sum(layer(inputs, training=True))
        return tape.gradient(loss, [inputs] + layer.trainable_weights)

    largest = 0
    for operation in step.get_concrete_function().graph.get_operations():
        for output in operation.outputs:
            dimensions = output.shape.as_list() if output.shape.rank is not None else None
            assert dimensions is not None, f"{operation.name} has an unknown rank"
            assert None not in dimensions, f"{operation.name} has an unknown dimension: {dimensions}"
            largest = max(largest, int(np.prod(dimensions)))
    return largest


def test_training_graph_has_no_dense_score_tensor():
    grid = (32, 32)
    num_queries, num_keys = 32 * 32, 16 * 16
    one_head_scores = BATCH * num_queries * num_keys  # [B, Nq, Nk]
    sparse_largest = _largest_tensor(BlockSparseLocalAttention(pattern="ylg"), grid)
    assert sparse_largest <= one_head_scores / 2, sparse_largest
    # The same measurement sees the dense layer's [B, heads, Nq, Nk] scores.
    dense_largest = _largest_tensor(LocalSparseAttention(pattern="ylg"), grid)
    assert dense_largest >= 8 * one_head_scores


def test_layer_contract_and_the_dense_layers_weights():
    def make():
        return BlockSparseLocalAttention(pattern="ylg_strided", geometry="aligned", u_update="always", name="g_ops")

    config = make().get_config()
    assert config["pattern"] == "ylg_strided" and config["geometry"] == "aligned"
    assert config["u_update"] == "always" and config["name"] == "g_ops"
    inputs, _ = _inputs((8, 16), seed=5)  # 8x16: the last key block is incomplete
    contract = check_layer_contract(
        make,
        (inputs.numpy(),),
        output_shapes=[(None, 8, 16, CHANNELS), (None, 8, 128, 32)],
        trainable_weights=5,
        non_trainable_weights=4,
        call_arguments={"return_attention": True},
        prepare=lambda layer: layer.sigma_ratio.assign(0.8),
        rtol=1e-5,
        atol=[1e-5, 1e-6],
    )
    dense = LocalSparseAttention(pattern="ylg_strided", geometry="aligned")
    dense(inputs)
    for built in (contract.layer, contract.clone):
        assert [weight.name.split("/", 1)[1] for weight in built.weights] == [
            weight.name.split("/", 1)[1] for weight in dense.weights
        ]
        np.testing.assert_array_equal(built.masks, dense.masks)


def test_make_attention_builds_the_block_sparse_layer():
    config = ModelConfig(
        image_size=32,
        num_classes=10,
        generator_channels=16,
        discriminator_channels=16,
        attention="ylg_no_esa",
        attention_geometry="aligned",
        attention_implementation="block_sparse",
    )
    layer = make_attention(config, "generator", u_update="training", name="g_ops")
    assert isinstance(layer, BlockSparseLocalAttention)
    assert (layer.pattern, layer.geometry, layer.name) == ("ylg_no_esa", "aligned", "g_ops")
