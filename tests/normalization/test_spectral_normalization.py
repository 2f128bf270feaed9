"""Tests for ylg_tf.normalization.spectral against a NumPy reference of TF-GAN's spectral norm.

Reference (spec section 1): W = reshape(kernel, [-1, out]); v = l2n(W^T u); u' = l2n(W v); sigma = u'^T W v,
l2n(x) = x / sqrt(max(sum(x^2), 1e-12)); u' and v are constants for the gradient; "bounded" divides the kernel
by max(1, sigma), "exact" by sigma.
"""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from layer_contract import check_layer_contract
from ylg_tf.normalization.spectral import (
    SpectralConv2D,
    SpectralDense,
    SpectralEmbedding,
    power_iteration,
)


# ---------------------------------------------------------------------------------------------------------
# NumPy reference


def l2_normalize(vector, epsilon=1e-12):
    return vector / np.sqrt(max(float(np.sum(vector * vector)), epsilon))


def reference_power_iteration(matrix, u):
    """matrix [rows, out], u [rows, 1] -> (sigma, new_u [rows, 1], v [out, 1]) in float64."""
    matrix = np.asarray(matrix, np.float64)
    u = np.asarray(u, np.float64)
    v = l2_normalize(matrix.T @ u)
    new_u = l2_normalize(matrix @ v)
    sigma = float((new_u.T @ matrix @ v)[0, 0])
    return sigma, new_u, v


def reference_normalized_kernel(kernel, u, sigma_mode):
    """kernel [..., out] -> (kernel / divisor, divisor, new_u, v) for the given u."""
    kernel = np.asarray(kernel, np.float64)
    sigma, new_u, v = reference_power_iteration(kernel.reshape(-1, kernel.shape[-1]), u)
    divisor = max(1.0, sigma) if sigma_mode == "bounded" else sigma
    return kernel / divisor, divisor, new_u, v


def reference_conv_same(inputs, kernel):
    """Stride-1 SAME convolution, inputs [B, H, W, Cin], kernel [k, k, Cin, Cout] (odd k)."""
    size = kernel.shape[0]
    pad = size // 2
    padded = np.pad(inputs, [(0, 0), (pad, pad), (pad, pad), (0, 0)])
    height, width = inputs.shape[1:3]
    outputs = np.zeros(inputs.shape[:3] + (kernel.shape[-1],))
    for row in range(size):
        for column in range(size):
            outputs += padded[:, row : row + height, column : column + width, :] @ kernel[row, column]
    return outputs


def set_kernel_scale(layer, scale, seed):
    """Replaces the kernel by a standard-normal one times `scale` (sigma > 1 or < 1 on demand)."""
    rng = np.random.default_rng(seed)
    layer.kernel.assign(scale * rng.standard_normal(layer.kernel.shape).astype(np.float32))


# ---------------------------------------------------------------------------------------------------------
# Layer contract (tests/layer_contract.py) and the documented weights


LAYER_CASES = {
    "conv3x3": dict(
        make=lambda: SpectralConv2D(4, 3, name="conv"),
        inputs=lambda rng: rng.standard_normal((2, 5, 5, 3)).astype(np.float32),
        output_shape=(None, 5, 5, 4),
        weights={"kernel": (3, 3, 3, 4), "bias": (4,), "spectral_norm_u": (27, 1)},
        trainable={"kernel", "bias"},
    ),
    "conv1x1_exact_no_bias": dict(
        make=lambda: SpectralConv2D(6, 1, use_bias=False, sigma_mode="exact", u_update="always", name="conv"),
        inputs=lambda rng: rng.standard_normal((3, 4, 4, 8)).astype(np.float32),
        output_shape=(None, 4, 4, 6),
        weights={"kernel": (1, 1, 8, 6), "spectral_norm_u": (8, 1)},
        trainable={"kernel"},
    ),
    "dense": dict(
        make=lambda: SpectralDense(5, name="dense"),
        inputs=lambda rng: rng.standard_normal((3, 7)).astype(np.float32),
        output_shape=(None, 5),
        weights={"kernel": (7, 5), "bias": (5,), "spectral_norm_u": (7, 1)},
        trainable={"kernel", "bias"},
    ),
    "embedding": dict(
        make=lambda: SpectralEmbedding(6, 4, name="embedding"),
        inputs=lambda rng: np.array([0, 5, 2, 2], np.int32),
        output_shape=(None, 4),
        weights={"embedding_map": (6, 4), "spectral_norm_u": (4, 1)},
        trainable={"embedding_map"},
    ),
}


@pytest.fixture(params=sorted(LAYER_CASES))
def layer_case(request):
    tf_keras.utils.set_random_seed(1)
    return LAYER_CASES[request.param]


def _short_name(variable):
    return variable.name.split("/")[-1].split(":")[0]


def test_weights_have_the_documented_names_shapes_and_trainability(layer_case):
    layer = layer_case["make"]()
    layer(layer_case["inputs"](np.random.default_rng(0)), training=False)
    shapes = {_short_name(weight): tuple(weight.shape) for weight in layer.weights}
    assert shapes == layer_case["weights"]
    assert {_short_name(weight) for weight in layer.trainable_weights} == layer_case["trainable"]
    assert [_short_name(weight) for weight in layer.non_trainable_weights] == ["spectral_norm_u"]


def test_layer_contract(layer_case):
    def randomize_every_weight(layer):
        rng = np.random.default_rng(3)
        layer.set_weights([rng.standard_normal(w.shape).astype(np.float32) for w in layer.weights])

    check_layer_contract(
        layer_case["make"],
        (layer_case["inputs"](np.random.default_rng(0)),),
        output_shapes=[layer_case["output_shape"]],
        trainable_weights=len(layer_case["trainable"]),
        non_trainable_weights=1,
        prepare=randomize_every_weight,
    )


# ---------------------------------------------------------------------------------------------------------
# The power iteration and the normalised kernel


def test_power_iteration_matches_the_numpy_reference():
    rng = np.random.default_rng(0)
    matrix = rng.standard_normal((12, 5)).astype(np.float32)
    u = rng.standard_normal((12, 1)).astype(np.float32)
    sigma, new_u = power_iteration(tf.constant(matrix), tf.constant(u))
    expected_sigma, expected_u, _ = reference_power_iteration(matrix, u)
    assert new_u.shape == (12, 1)
    np.testing.assert_allclose(sigma.numpy(), expected_sigma, rtol=1e-5)
    np.testing.assert_allclose(new_u.numpy(), expected_u, rtol=1e-5, atol=1e-6)
    assert np.isclose(np.linalg.norm(new_u.numpy()), 1.0, rtol=1e-6)


def test_l2_normalisation_epsilon_guards_a_zero_vector():
    # With u = 0 every l2n sees a zero vector and returns zeros (not NaN): sigma = 0.
    sigma, new_u = power_iteration(tf.ones([3, 2]), tf.zeros([3, 1]))
    assert sigma.numpy() == 0.0
    np.testing.assert_array_equal(new_u.numpy(), np.zeros((3, 1)))


@pytest.mark.parametrize("sigma_mode", ["bounded", "exact"])
@pytest.mark.parametrize("scale", [0.05, 3.0], ids=["sigma_below_1", "sigma_above_1"])
@pytest.mark.parametrize("training", [False, True])
def test_conv_output_equals_numpy_convolution_with_the_normalised_kernel(sigma_mode, scale, training):
    rng = np.random.default_rng(1)
    inputs = rng.standard_normal((2, 5, 6, 3)).astype(np.float32)
    layer = SpectralConv2D(4, 3, sigma_mode=sigma_mode)
    layer.build(inputs.shape)
    set_kernel_scale(layer, scale, seed=2)
    layer.bias.assign(rng.standard_normal(4).astype(np.float32))
    u = layer.u.numpy()

    kernel, divisor, _, _ = reference_normalized_kernel(layer.kernel.numpy(), u, sigma_mode)
    sigma = reference_power_iteration(layer.kernel.numpy().reshape(27, 4), u)[0]
    assert (sigma > 1.0) == (scale > 1.0)  # the cases really sit on both sides of max(1, sigma)
    if sigma_mode == "bounded" and scale < 1.0:
        assert divisor == 1.0
    expected = reference_conv_same(inputs.astype(np.float64), kernel) + layer.bias.numpy()
    np.testing.assert_allclose(layer(inputs, training=training), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sigma_mode", ["bounded", "exact"])
@pytest.mark.parametrize("scale", [0.05, 3.0], ids=["sigma_below_1", "sigma_above_1"])
def test_dense_output_equals_numpy_matmul_with_the_normalised_kernel(sigma_mode, scale):
    rng = np.random.default_rng(4)
    inputs = rng.standard_normal((3, 7)).astype(np.float32)
    layer = SpectralDense(5, sigma_mode=sigma_mode)
    layer.build(inputs.shape)
    set_kernel_scale(layer, scale, seed=5)
    layer.bias.assign(rng.standard_normal(5).astype(np.float32))
    kernel, _, _, _ = reference_normalized_kernel(layer.kernel.numpy(), layer.u.numpy(), sigma_mode)
    expected = inputs @ kernel + layer.bias.numpy()
    np.testing.assert_allclose(layer(inputs, training=False), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("u_update", ["training", "always"])
@pytest.mark.parametrize("training", [None, False, True])
def test_u_is_stored_only_when_the_mode_says_so(u_update, training):
    inputs = np.random.default_rng(6).standard_normal((2, 4, 4, 3)).astype(np.float32)
    layer = SpectralConv2D(5, 3, u_update=u_update)
    layer.build(inputs.shape)
    u_before = layer.u.numpy()
    _, _, new_u, _ = reference_normalized_kernel(layer.kernel.numpy(), u_before, "bounded")
    assert not np.allclose(new_u, u_before, atol=1e-3)  # a stored update would be visible

    layer(inputs, training=training)
    if u_update == "always" or training:
        np.testing.assert_allclose(layer.u.numpy(), new_u, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(layer.u.numpy(), u_before)


def test_each_training_call_runs_one_iteration_from_the_stored_u():
    inputs = np.random.default_rng(7).standard_normal((2, 6)).astype(np.float32)
    layer = SpectralDense(4, use_bias=False, sigma_mode="exact")
    layer.build(inputs.shape)
    u = layer.u.numpy().astype(np.float64)
    for _ in range(3):
        kernel, _, u, _ = reference_normalized_kernel(layer.kernel.numpy(), u, "exact")
        np.testing.assert_allclose(layer(inputs, training=True), inputs @ kernel, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.u.numpy(), u, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "make, kernel_shape",
    [
        (lambda: SpectralDense(6, use_bias=False, sigma_mode="exact"), (10, 6)),
        (lambda: SpectralConv2D(8, 3, use_bias=False, sigma_mode="exact"), (3, 3, 4, 8)),
    ],
    ids=["dense", "conv"],
)
def test_sigma_converges_to_the_largest_singular_value(make, kernel_shape):
    layer = make()
    layer.build((None,) * (len(kernel_shape) - 1) + (kernel_shape[-2],))
    assert tuple(layer.kernel.shape) == kernel_shape
    set_kernel_scale(layer, 1.0, seed=8)
    matrix = layer.kernel.numpy().reshape(-1, kernel_shape[-1]).astype(np.float64)
    singular_values = np.linalg.svd(matrix, compute_uv=False)

    step = tf.function(lambda: layer.normalized_kernel(layer.kernel, training=True))
    for _ in range(200):
        normalized = step()
    normalized = normalized.numpy().reshape(matrix.shape)
    sigma = np.linalg.norm(matrix) / np.linalg.norm(normalized)  # kernel / sigma, so the ratio is sigma
    np.testing.assert_allclose(sigma, singular_values[0], rtol=1e-4)
    np.testing.assert_allclose(np.linalg.svd(normalized, compute_uv=False)[0], 1.0, rtol=1e-4)
    # The stored u is the leading left singular vector (up to sign).
    left, _, _ = np.linalg.svd(matrix)
    np.testing.assert_allclose(abs(float(layer.u.numpy()[:, 0] @ left[:, 0])), 1.0, rtol=1e-4)


# ---------------------------------------------------------------------------------------------------------
# Gradients: through sigma, with u' and v constants


def reference_dense_gradient(kernel, u, inputs, weights, sigma_mode):
    """d/dkernel of sum(weights * inputs @ (kernel / divisor)) with u', v held constant, in float64."""
    kernel = kernel.astype(np.float64)
    outer_gradient = inputs.astype(np.float64).T @ weights  # dLoss/d(normalised kernel), [in, out]
    sigma, new_u, v = reference_power_iteration(kernel, u)
    if sigma_mode == "bounded" and sigma <= 1.0:
        return outer_gradient
    # L = <A, W / sigma(W)> with d sigma / dW = u' v^T.
    return outer_gradient / sigma - np.sum(outer_gradient * kernel) / sigma**2 * (new_u @ v.T)


def test_reference_dense_gradient_matches_finite_differences():
    # Checks the analytic reference itself: a central difference of L(W) = <A, W / (u'^T W v)>.
    rng = np.random.default_rng(9)
    kernel = 3.0 * rng.standard_normal((4, 3))
    u = rng.standard_normal((4, 1))
    inputs, weights = rng.standard_normal((2, 4)), rng.standard_normal((2, 3))
    _, new_u, v = reference_power_iteration(kernel, u)

    def loss(matrix):
        return float(np.sum(weights * (inputs @ (matrix / (new_u.T @ matrix @ v)[0, 0]))))

    numeric = np.zeros_like(kernel)
    for index in np.ndindex(kernel.shape):
        step = np.zeros_like(kernel)
        step[index] = 1e-6
        numeric[index] = (loss(kernel + step) - loss(kernel - step)) / 2e-6
    analytic = reference_dense_gradient(kernel, u, inputs, weights, "exact")
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize(
    "sigma_mode, scale",
    [("exact", 0.5), ("exact", 3.0), ("bounded", 3.0), ("bounded", 0.05)],
)
def test_dense_gradient_flows_through_sigma_only(sigma_mode, scale):
    rng = np.random.default_rng(10)
    inputs = rng.standard_normal((3, 6)).astype(np.float32)
    weights = rng.standard_normal((3, 4)).astype(np.float32)
    layer = SpectralDense(4, use_bias=False, sigma_mode=sigma_mode)
    layer.build(inputs.shape)
    set_kernel_scale(layer, scale, seed=11)
    u = layer.u.numpy()
    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weights * layer(inputs, training=True))
    gradient = tape.gradient(loss, layer.kernel).numpy()
    expected = reference_dense_gradient(layer.kernel.numpy(), u, inputs, weights, sigma_mode)
    np.testing.assert_allclose(gradient, expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("sigma_mode", ["bounded", "exact"])
def test_conv_gradient_equals_an_independent_computation_with_constant_vectors(sigma_mode):
    rng = np.random.default_rng(12)
    inputs = tf.constant(rng.standard_normal((2, 4, 4, 3)).astype(np.float32))
    weights = tf.constant(rng.standard_normal((2, 4, 4, 5)).astype(np.float32))
    layer = SpectralConv2D(5, 3, use_bias=False, sigma_mode=sigma_mode)
    layer.build(inputs.shape)
    set_kernel_scale(layer, 2.0, seed=13)
    _, _, new_u, v = reference_normalized_kernel(layer.kernel.numpy(), layer.u.numpy(), sigma_mode)

    with tf.GradientTape() as tape:
        loss = tf.reduce_sum(weights * layer(inputs, training=True))
    gradient = tape.gradient(loss, layer.kernel)

    kernel = tf.Variable(layer.kernel.numpy())
    new_u, v = tf.constant(new_u, tf.float32), tf.constant(v, tf.float32)
    with tf.GradientTape() as tape:
        sigma = tf.squeeze(tf.transpose(new_u) @ tf.reshape(kernel, [27, 5]) @ v)
        if sigma_mode == "bounded":
            sigma = tf.maximum(1.0, sigma)
        outputs = tf.nn.conv2d(inputs, kernel / sigma, strides=1, padding="SAME")
        expected_loss = tf.reduce_sum(weights * outputs)
    expected = tape.gradient(expected_loss, kernel)
    assert sigma.numpy() > 1.0
    np.testing.assert_allclose(loss.numpy(), expected_loss.numpy(), rtol=1e-5)
    np.testing.assert_allclose(gradient.numpy(), expected.numpy(), rtol=1e-4, atol=1e-5)
    # The sigma term matters: treating sigma as a constant gives a clearly different gradient.
    with tf.GradientTape() as tape:
        outputs = tf.nn.conv2d(inputs, kernel / tf.stop_gradient(sigma), strides=1, padding="SAME")
        constant_sigma_loss = tf.reduce_sum(weights * outputs)
    constant_sigma_gradient = tape.gradient(constant_sigma_loss, kernel).numpy()
    assert np.max(np.abs(gradient.numpy() - constant_sigma_gradient)) > 1e-2


# ---------------------------------------------------------------------------------------------------------
# Embedding: normalised as its transpose


@pytest.mark.parametrize("training", [False, True])
def test_embedding_is_normalised_as_its_transpose(training):
    layer = SpectralEmbedding(7, 3)
    layer.build((None,))
    rng = np.random.default_rng(14)
    table = (3.0 * rng.standard_normal((7, 3))).astype(np.float32)
    layer.embeddings.assign(table)
    u = layer.u.numpy()
    assert u.shape == (3, 1)  # one entry per embedding dimension, as E^T [dim, classes] has dim rows

    normalized_transpose, divisor, new_u, _ = reference_normalized_kernel(table.T, u, "bounded")
    assert divisor > 1.0
    labels = np.array([4, 0, 4, 6], np.int32)
    np.testing.assert_allclose(layer(labels, training=training), normalized_transpose.T[labels], rtol=1e-5)
    if training:
        np.testing.assert_allclose(layer.u.numpy(), new_u, rtol=1e-5, atol=1e-6)
    else:
        np.testing.assert_array_equal(layer.u.numpy(), u)


# ---------------------------------------------------------------------------------------------------------
# Argument validation


@pytest.mark.parametrize(
    "make, bad_value",
    [
        (lambda: SpectralConv2D(4, sigma_mode="spectral"), "'spectral'"),
        (lambda: SpectralDense(4, u_update="sometimes"), "'sometimes'"),
        (lambda: SpectralConv2D(0), "filters=0"),
        (lambda: SpectralConv2D(4, kernel_size=-1), "kernel_size=-1"),
        (lambda: SpectralDense(-2), "units=-2"),
        (lambda: SpectralEmbedding(0, 4), "num_classes=0"),
        (lambda: SpectralEmbedding(4, 0), "output_dim=0"),
    ],
)
def test_bad_arguments_are_named(make, bad_value):
    with pytest.raises(ValueError, match=bad_value):
        make()
