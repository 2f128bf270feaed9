"""Tests for ylg_tf.attention.layers against a NumPy implementation of the whole layer (spec section 2).

Reference: 1x1 convolutions are matmuls with kernels divided by their exact spectral norm (one power
iteration from the stored u); keys and values are 2x2 max-pooled; theta/phi/g are split head-major
(channel = head * d + i); logits theta phi^T (no scaling) plus (1 - M) * -1000 for masked layers; softmax;
o = A g merged head-minor (channel = i * heads + head); output x + sigma_ratio * conv(o, C).
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from layer_contract import check_layer_contract
from ylg_tf.attention import masks
from ylg_tf.attention.layers import (
    LocalSparseAttention,
    PooledAttention,
    SelfAttention,
    dense_attention,
    merge_heads,
    split_heads,
)

# ---------------------------------------------------------------------------------------------------------
# NumPy reference


def l2_normalize(vector):
    return vector / np.sqrt(max(float(np.sum(vector * vector)), 1e-12))


def exact_normalized_matrix(convolution):
    """A bias-free 1x1 SpectralConv2D as a [Cin, Cout] float64 matrix divided by its one-iteration sigma."""
    kernel = convolution.kernel.numpy().astype(np.float64)
    assert kernel.shape[:2] == (1, 1)
    matrix = kernel.reshape(kernel.shape[2], kernel.shape[3])
    u = convolution.u.numpy().astype(np.float64)
    v = l2_normalize(matrix.T @ u)
    new_u = l2_normalize(matrix @ v)
    return matrix / float((new_u.T @ matrix @ v)[0, 0])


def max_pool_2x2(feature_map):
    """[B, h, w, c] -> [B, h/2 * w/2, c] (2x2 windows, stride 2, raster order)."""
    batch, height, width, channels = feature_map.shape
    pooled = feature_map.reshape(batch, height // 2, 2, width // 2, 2, channels).max(axis=(2, 4))
    return pooled.reshape(batch, -1, channels)


def split_head_major(tensor, num_heads):
    batch, positions, channels = tensor.shape
    return tensor.reshape(batch, positions, num_heads, channels // num_heads).transpose(0, 2, 1, 3)


def merge_head_minor(tensor):
    batch, num_heads, positions, depth = tensor.shape
    return tensor.transpose(0, 2, 3, 1).reshape(batch, positions, depth * num_heads)


def merge_head_major(tensor):
    batch, num_heads, positions, depth = tensor.shape
    return tensor.transpose(0, 2, 1, 3).reshape(batch, positions, num_heads * depth)


def softmax(logits):
    shifted = logits - logits.max(axis=-1, keepdims=True)
    exponentials = np.exp(shifted)
    return exponentials / exponentials.sum(axis=-1, keepdims=True)


def reference_attention(layer, inputs, allowed=None, merge=merge_head_minor):
    """The whole layer in NumPy (float64). allowed: bool [heads, Nq, Nk] or None. -> (outputs, probabilities)."""
    inputs = np.asarray(inputs, np.float64)
    batch, height, width, channels = inputs.shape
    num_heads = layer.num_heads
    flat = inputs.reshape(batch, height * width, channels)  # [B, Nq, C]
    theta = flat @ exact_normalized_matrix(layer.conv_theta)  # [B, Nq, C/8]
    phi = max_pool_2x2(inputs @ exact_normalized_matrix(layer.conv_phi))  # [B, Nk, C/8]
    values = max_pool_2x2(inputs @ exact_normalized_matrix(layer.conv_g))  # [B, Nk, C/2]
    theta, phi, values = (split_head_major(t, num_heads) for t in (theta, phi, values))
    logits = theta @ phi.transpose(0, 1, 3, 2)  # [B, heads, Nq, Nk]
    if allowed is not None:
        logits = logits + (1.0 - allowed.astype(np.float64)) * -1000.0
    probabilities = softmax(logits)
    attended = merge(probabilities @ values)  # [B, Nq, C/2]
    projected = attended @ exact_normalized_matrix(layer.conv_attn)  # [B, Nq, C]
    ratio = float(layer.sigma_ratio.numpy())
    return inputs + ratio * projected.reshape(inputs.shape), probabilities


def random_inputs(shape, seed):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def built(layer, shape, sigma_ratio=0.8, seed=0):
    """Builds `layer` for [B, h, w, C], with a non-zero sigma_ratio and random (Glorot) kernels."""
    tf_keras.utils.set_random_seed(seed)
    layer(tf.zeros(shape), training=False)
    layer.sigma_ratio.assign(sigma_ratio)
    return layer


def _conv_weights(layer):
    return [layer.conv_theta, layer.conv_phi, layer.conv_g, layer.conv_attn]


# ---------------------------------------------------------------------------------------------------------
# split_heads / merge_heads


def test_split_heads_is_head_major_and_merge_heads_is_head_minor():
    tensor = np.arange(2 * 3 * 12, dtype=np.float32).reshape(2, 3, 12)  # [B, N, heads * d], heads 4, d 3
    split = split_heads(tf.constant(tensor), 4).numpy()
    assert split.shape == (2, 4, 3, 3)
    for head in range(4):
        for index in range(3):
            np.testing.assert_array_equal(split[:, head, :, index], tensor[:, :, head * 3 + index])
    merged = merge_heads(tf.constant(split)).numpy()
    assert merged.shape == (2, 3, 12)
    for head in range(4):
        for index in range(3):
            np.testing.assert_array_equal(merged[:, :, index * 4 + head], split[:, head, :, index])
    # The asymmetry is real: merge(split(x)) permutes channels unless there is one head.
    assert not np.array_equal(merged, tensor)
    np.testing.assert_array_equal(merge_heads(split_heads(tf.constant(tensor), 1)).numpy(), tensor)


def test_split_and_merge_accept_an_unknown_batch():
    traced = tf.function(
        lambda tensor: merge_heads(split_heads(tensor, 2)), input_signature=[tf.TensorSpec([None, 3, 4])]
    )
    assert traced.get_concrete_function().structured_outputs.shape.as_list() == [None, 3, 4]
    tensor = random_inputs((3, 3, 4), seed=1)
    expected = merge_head_minor(split_head_major(tensor, 2))
    np.testing.assert_array_equal(traced(tensor).numpy(), expected)


# ---------------------------------------------------------------------------------------------------------
# Layer contract

LAYER_CASES = {
    "sagan_1_head": (lambda: SelfAttention(num_heads=1, name="attention"), 1),
    "sagan_8_heads": (lambda: SelfAttention(num_heads=8, name="attention"), 8),
    "ylg": (lambda: LocalSparseAttention(pattern="ylg", name="attention"), 8),
    "ylg_aligned_always": (
        lambda: LocalSparseAttention(pattern="ylg_strided", geometry="aligned", u_update="always", name="attention"),
        8,
    ),
}
SHAPE = (2, 8, 8, 64)  # B, h, w, C: 64 queries, 16 keys


@pytest.fixture(params=sorted(LAYER_CASES))
def layer_case(request):
    make, num_heads = LAYER_CASES[request.param]
    return make, num_heads


def test_weights_are_four_bias_free_convolutions_and_a_scalar(layer_case):
    make, num_heads = layer_case
    layer = make()
    layer(random_inputs(SHAPE, seed=2))
    shapes = {"/".join(w.name.split(":")[0].split("/")[-2:]): tuple(w.shape) for w in layer.weights}
    assert shapes == {
        "sn_conv_theta/kernel": (1, 1, 64, 8),
        "sn_conv_theta/spectral_norm_u": (64, 1),
        "sn_conv_phi/kernel": (1, 1, 64, 8),
        "sn_conv_phi/spectral_norm_u": (64, 1),
        "sn_conv_g/kernel": (1, 1, 64, 32),
        "sn_conv_g/spectral_norm_u": (64, 1),
        "sn_conv_attn/kernel": (1, 1, 32, 64),
        "sn_conv_attn/spectral_norm_u": (32, 1),
        "attention/sigma_ratio": (),
    }
    assert len(layer.trainable_weights) == 5 and len(layer.non_trainable_weights) == 4
    assert layer.num_heads == num_heads
    for convolution in _conv_weights(layer):
        assert (convolution.sigma_mode, convolution.use_bias) == ("exact", False)
        assert convolution.u_update == layer.u_update
    assert layer.sigma_ratio.numpy() == 0.0


def test_layer_contract(layer_case):
    make, num_heads = layer_case
    tf_keras.utils.set_random_seed(3)
    inputs = random_inputs(SHAPE, seed=4)
    contract = check_layer_contract(
        make,
        (inputs,),
        output_shapes=[(None, 8, 8, 64), (None, num_heads, 64, 16)],
        trainable_weights=5,
        non_trainable_weights=4,
        call_arguments={"return_attention": True},
        prepare=lambda layer: layer.sigma_ratio.assign(0.8),  # else the output is the input
        rtol=1e-5,
        atol=[1e-5, 1e-6],
    )
    if isinstance(contract.layer, LocalSparseAttention):
        np.testing.assert_array_equal(contract.clone.masks, contract.layer.masks)
    # No training argument is inference (the layer is back in the state the contract's calls started from).
    for output, expected in zip(contract.layer(inputs, return_attention=True), contract.eager_outputs[False]):
        np.testing.assert_array_equal(output, expected)


# ---------------------------------------------------------------------------------------------------------
# Behaviour against the NumPy reference


@pytest.mark.parametrize("num_heads", [1, 8])
@pytest.mark.parametrize("training", [False, True])
def test_self_attention_equals_the_numpy_reference(num_heads, training):
    inputs = random_inputs(SHAPE, seed=5)
    layer = built(SelfAttention(num_heads=num_heads), SHAPE)
    expected_outputs, expected_probabilities = reference_attention(layer, inputs)  # before u moves
    outputs, probabilities = layer(inputs, training=training, return_attention=True)
    assert probabilities.shape == (2, num_heads, 64, 16)
    np.testing.assert_allclose(probabilities, expected_probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-4, atol=1e-4)


def test_eight_head_merge_is_head_minor_not_head_major():
    # Guards the reference comparison above: the usual head-major merge gives a visibly different output.
    inputs = random_inputs(SHAPE, seed=6)
    layer = built(SelfAttention(num_heads=8), SHAPE, sigma_ratio=1.0)
    head_major, _ = reference_attention(layer, inputs, merge=merge_head_major)
    outputs = layer(inputs).numpy()
    assert np.max(np.abs(outputs - head_major)) > 0.05


@pytest.mark.parametrize("pattern", ["ylg", "ylg_no_esa", "ylg_strided", "fixed"])
@pytest.mark.parametrize("geometry", ["original", "aligned"])
def test_local_sparse_attention_equals_the_numpy_reference_with_mask_bias(pattern, geometry):
    inputs = random_inputs(SHAPE, seed=7)
    layer = built(LocalSparseAttention(pattern=pattern, geometry=geometry), SHAPE)
    allowed = masks.attention_masks(pattern, (8, 8), (4, 4), geometry=geometry)
    np.testing.assert_array_equal(layer.masks, allowed)
    expected_outputs, expected_probabilities = reference_attention(layer, inputs, allowed)
    outputs, probabilities = layer(inputs, training=True, return_attention=True)
    np.testing.assert_allclose(probabilities, expected_probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-4, atol=1e-4)
    # The mask matters: the unmasked reference is far from the layer.
    unmasked_outputs, _ = reference_attention(layer, inputs)
    assert np.max(np.abs(outputs.numpy() - unmasked_outputs)) > 1e-2


@pytest.mark.parametrize("side", [8, 16])
def test_masked_probabilities_are_exactly_zero_and_rows_sum_to_one(side):
    shape = (2, side, side, 64)
    inputs = 3.0 * random_inputs(shape, seed=8)
    layer = built(LocalSparseAttention(pattern="ylg"), shape)
    _, probabilities = layer(inputs, return_attention=True)
    probabilities = probabilities.numpy()
    num_queries, num_keys = side * side, side * side // 4
    assert probabilities.shape == (2, 8, num_queries, num_keys)
    allowed = np.broadcast_to(layer.masks, probabilities.shape)
    assert layer.masks.shape == (8, num_queries, num_keys) and not layer.masks.all()
    assert np.all(probabilities[~allowed] == 0.0)
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, rtol=0, atol=1e-5)


def test_unmasked_probabilities_rows_sum_to_one_and_are_dense():
    inputs = random_inputs(SHAPE, seed=9)
    _, probabilities = built(SelfAttention(num_heads=8), SHAPE)(inputs, return_attention=True)
    np.testing.assert_allclose(probabilities.numpy().sum(axis=-1), 1.0, rtol=0, atol=1e-5)
    assert np.all(probabilities.numpy() > 0.0)


@pytest.mark.parametrize(
    "make",
    [lambda: SelfAttention(num_heads=1), lambda: SelfAttention(num_heads=8), lambda: LocalSparseAttention("ylg")],
    ids=["sagan", "sagan_8_heads", "ylg"],
)
def test_zero_sigma_ratio_is_the_identity_but_still_learns(make):
    inputs = tf.constant(random_inputs(SHAPE, seed=10))
    layer = make()
    with tf.GradientTape() as tape:
        outputs = layer(inputs, training=True)  # sigma_ratio is initialised to 0
        loss = tf.reduce_sum(outputs * inputs)
    np.testing.assert_array_equal(outputs.numpy(), inputs.numpy())
    assert abs(float(tape.gradient(loss, layer.sigma_ratio))) > 1e-3


@pytest.mark.parametrize("u_update, training", [("training", False), ("training", True), ("always", None)])
def test_projection_u_vectors_follow_the_update_mode(u_update, training):
    inputs = random_inputs(SHAPE, seed=11)
    layer = built(SelfAttention(u_update=u_update), SHAPE)
    before = [convolution.u.numpy() for convolution in _conv_weights(layer)]
    layer(inputs, training=training)
    changed = [not np.array_equal(c.u.numpy(), u) for c, u in zip(_conv_weights(layer), before)]
    assert changed == [u_update == "always" or bool(training)] * 4


# ---------------------------------------------------------------------------------------------------------
# Errors


@pytest.mark.parametrize("height, width", [(7, 8), (8, 5)])
def test_odd_feature_maps_are_rejected_with_their_size(height, width):
    layer = SelfAttention()
    with pytest.raises(ValueError, match=f"{height}x{width}"):
        layer(tf.zeros([1, height, width, 64]))


@pytest.mark.parametrize(
    "make, channels, message",
    [
        (lambda: SelfAttention(num_heads=3), 64, r"num_heads=3.*C=64"),
        (lambda: SelfAttention(num_heads=1), 12, r"C=12"),
        (lambda: LocalSparseAttention("ylg"), 32, r"num_heads=8.*C=32"),
    ],
)
def test_heads_that_do_not_divide_the_channels_are_named(make, channels, message):
    with pytest.raises(ValueError, match=message):
        make()(tf.zeros([1, 8, 8, channels]))


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: SelfAttention(num_heads=0), "num_heads=0"),
        (lambda: LocalSparseAttention(pattern="dense"), "'dense'"),
        (lambda: LocalSparseAttention(pattern="local"), "'local'"),
        (lambda: LocalSparseAttention(geometry="folded"), "'folded'"),
    ],
)
def test_bad_arguments_are_named(make, message):
    with pytest.raises(ValueError, match=message):
        make()


def test_bad_u_update_is_rejected_at_construction():
    with pytest.raises(ValueError, match="'bogus'"):
        SelfAttention(u_update="bogus")


def test_a_subclass_of_the_base_only_says_how_heads_attend():
    class DenseAgain(PooledAttention):
        def attend(self, queries, keys, values, return_probabilities=False):
            return dense_attention(queries, keys, values, return_probabilities=return_probabilities)

    inputs = random_inputs(SHAPE, seed=9)
    layer = built(DenseAgain(num_heads=8), SHAPE)
    expected_outputs, expected_probabilities = reference_attention(layer, inputs)
    outputs, probabilities = layer(inputs, training=False, return_attention=True)
    np.testing.assert_allclose(probabilities, expected_probabilities, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(outputs, expected_outputs, rtol=1e-4, atol=1e-4)
    with pytest.raises(NotImplementedError, match="PooledAttention does not say how its heads attend"):
        PooledAttention()(tf.zeros(SHAPE))


def test_local_sparse_attention_rejects_a_head_count_other_than_eight():
    with pytest.raises(ValueError, match="num_heads=4"):
        LocalSparseAttention(pattern="ylg", num_heads=4)


def test_build_creates_every_weight():
    layer = SelfAttention()
    layer.build(SHAPE)
    assert len(layer.weights) == 9
