"""Tests for ylg_tf.normalization.batch against NumPy batch normalisation (TF-GAN's `tpu.batch_norm`).

Reference: training mode normalises with the batch mean and biased variance over [B, H, W] (eps 1e-3), then
scales and shifts by gamma/beta rows gathered by label; moving averages start at 0 / 1 and follow
v - (v - batch) * (1 - 0.999), only in training mode; inference normalises with the moving averages.
The distributed case runs in a subprocess that configures 2 logical CPUs before any TF op.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf

from layer_contract import check_layer_contract
from ylg_tf.normalization.batch import ConditionalBatchNormalization


def reference_moments(inputs):
    inputs = np.asarray(inputs, np.float64)
    mean = inputs.mean(axis=(0, 1, 2))
    variance = ((inputs - mean) ** 2).mean(axis=(0, 1, 2))  # biased
    return mean, variance


def reference_batch_norm(inputs, mean, variance, gamma, beta, labels=None, epsilon=1e-3):
    """inputs [B, H, W, C]; gamma/beta [rows, 1, 1, C]; labels [B] or None (row 0 for everyone)."""
    normalized = (np.asarray(inputs, np.float64) - mean) / np.sqrt(variance + epsilon)
    rows = np.zeros(len(inputs), np.int64) if labels is None else np.asarray(labels)
    return normalized * gamma[rows] + beta[rows]


def make_layer(num_classes, channels, seed, **kwargs):
    """A built layer whose gamma/beta tables are random (so a wrong row would be visible)."""
    layer = ConditionalBatchNormalization(num_classes, **kwargs)
    layer.build((None, 3, 3, channels))
    rng = np.random.default_rng(seed)
    layer.gamma.assign(1.0 + rng.standard_normal(layer.gamma.shape).astype(np.float32))
    layer.beta.assign(rng.standard_normal(layer.beta.shape).astype(np.float32))
    return layer


def random_batch(seed, batch=4, channels=5, num_classes=3):
    rng = np.random.default_rng(seed)
    # Per-channel offsets and scales so mean/variance mistakes (axes, bias) show up.
    inputs = rng.standard_normal((batch, 3, 3, channels)) * rng.uniform(0.5, 3.0, channels)
    inputs += rng.uniform(-2.0, 2.0, channels)
    labels = rng.integers(0, num_classes, batch)
    return inputs.astype(np.float32), labels.astype(np.int32)


# ---------------------------------------------------------------------------------------------------------
# Layer contract


@pytest.mark.parametrize("num_classes", [None, 3], ids=["unconditional", "conditional"])
def test_weights_are_per_class_tables_and_statistics(num_classes):
    layer = ConditionalBatchNormalization(num_classes)
    inputs, labels = random_batch(0)
    layer(inputs, labels, training=False)
    rows = num_classes or 1
    shapes = {weight.name.split("/")[-1].split(":")[0]: tuple(weight.shape) for weight in layer.weights}
    assert shapes == {
        "gamma": (rows, 1, 1, 5),
        "beta": (rows, 1, 1, 5),
        "moving_mean": (5,),
        "moving_variance": (5,),
    }
    assert [weight.name.split("/")[-1] for weight in layer.trainable_weights] == ["gamma:0", "beta:0"]
    np.testing.assert_array_equal(layer.gamma.numpy(), np.ones((rows, 1, 1, 5)))
    np.testing.assert_array_equal(layer.beta.numpy(), np.zeros((rows, 1, 1, 5)))
    np.testing.assert_array_equal(layer.moving_mean.numpy(), np.zeros(5))
    np.testing.assert_array_equal(layer.moving_variance.numpy(), np.ones(5))


@pytest.mark.parametrize("options", [{}, dict(epsilon=0.01, decay=0.9, synchronized=False)], ids=["defaults", "set"])
@pytest.mark.parametrize("num_classes", [None, 3], ids=["unconditional", "conditional"])
def test_layer_contract(num_classes, options):
    def randomize_tables_and_statistics(layer):
        rng = np.random.default_rng(4)
        layer.gamma.assign(1.0 + rng.standard_normal(layer.gamma.shape).astype(np.float32))
        layer.beta.assign(rng.standard_normal(layer.beta.shape).astype(np.float32))
        layer.moving_mean.assign(rng.standard_normal(5).astype(np.float32))
        layer.moving_variance.assign(rng.uniform(0.5, 2.0, 5).astype(np.float32))

    contract = check_layer_contract(
        lambda: ConditionalBatchNormalization(num_classes, **options),
        random_batch(3),
        output_shapes=[(None, 3, 3, 5)],
        trainable_weights=2,
        non_trainable_weights=2,
        prepare=randomize_tables_and_statistics,
    )
    expected = {**dict(epsilon=1e-3, decay=0.999, synchronized=True), **options}
    for layer in (contract.layer, contract.clone):
        assert (layer.num_classes, layer.epsilon, layer.decay, layer.synchronized) == (
            num_classes, expected["epsilon"], expected["decay"], expected["synchronized"]
        )


@pytest.mark.parametrize("num_classes", [None, 3], ids=["unconditional", "conditional"])
def test_training_with_an_unknown_batch_counts_the_examples_it_gets(num_classes):
    inputs, labels = random_batch(3)
    layer = make_layer(num_classes, 5, seed=4)
    layer.moving_mean.assign(np.random.default_rng(5).standard_normal(5).astype(np.float32))
    traced = tf.function(
        lambda values, classes, training: layer(values, classes, training=training),
        input_signature=[
            tf.TensorSpec([None, 3, 3, 5], tf.float32),
            tf.TensorSpec([None], tf.int32),
            tf.TensorSpec([], tf.bool),
        ],
    )
    assert traced.get_concrete_function().structured_outputs.shape.as_list() == [None, 3, 3, 5]
    # The mode is a tensor here, so both branches are in one graph; training must count B*H*W of 3 examples.
    before = layer.moving_mean.numpy()
    mean, variance = reference_moments(inputs[:3])
    expected = reference_batch_norm(
        inputs[:3], mean, variance, layer.gamma.numpy(), layer.beta.numpy(), None if num_classes is None else labels[:3]
    )
    np.testing.assert_allclose(traced(inputs[:3], labels[:3], True), expected, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(layer.moving_mean.numpy(), before - (before - mean) * 0.001, rtol=1e-5, atol=1e-6)
    # Inference through the same graph: the moving statistics, and no update.
    moving_mean, moving_variance = layer.moving_mean.numpy(), layer.moving_variance.numpy()
    rows = None if num_classes is None else labels
    expected = reference_batch_norm(inputs, moving_mean, moving_variance, layer.gamma.numpy(), layer.beta.numpy(), rows)
    np.testing.assert_allclose(traced(inputs, labels, False), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), moving_mean)


# ---------------------------------------------------------------------------------------------------------
# Normalisation against NumPy


def test_training_mode_equals_numpy_batch_norm_with_gamma_beta_gathered_by_label():
    inputs, labels = random_batch(5, batch=4, num_classes=3)
    labels = np.array([2, 0, 2, 1], np.int32)
    layer = make_layer(3, 5, seed=6)
    mean, variance = reference_moments(inputs)
    expected = reference_batch_norm(inputs, mean, variance, layer.gamma.numpy(), layer.beta.numpy(), labels)
    np.testing.assert_allclose(layer(inputs, labels, training=True), expected, rtol=1e-4, atol=1e-4)


def test_unconditional_training_mode_uses_the_single_table_row():
    inputs, _ = random_batch(7)
    layer = make_layer(None, 5, seed=8)
    mean, variance = reference_moments(inputs)
    expected = reference_batch_norm(inputs, mean, variance, layer.gamma.numpy(), layer.beta.numpy())
    np.testing.assert_allclose(layer(inputs, training=True), expected, rtol=1e-4, atol=1e-4)


def test_epsilon_is_added_to_the_variance():
    # Channel 0 gets a variance (~1e-3) comparable to eps, so eps 1e-3 roughly halves it; a reference with
    # eps 1e-5 must then be far off.
    inputs, _ = random_batch(9)
    inputs[..., 0] = 0.003 * np.arange(inputs[..., 0].size).reshape(inputs.shape[:3])  # tiny variance
    layer = ConditionalBatchNormalization(None)
    outputs = layer(inputs, training=True).numpy()
    mean, variance = reference_moments(inputs)
    gamma, beta = np.ones((1, 1, 1, 5)), np.zeros((1, 1, 1, 5))
    np.testing.assert_allclose(outputs, reference_batch_norm(inputs, mean, variance, gamma, beta), atol=1e-4)
    wrong = reference_batch_norm(inputs, mean, variance, gamma, beta, epsilon=1e-5)
    assert np.max(np.abs(outputs[..., 0] - wrong[..., 0])) > 0.3


@pytest.mark.parametrize("training", [None, False])
def test_inference_uses_the_moving_statistics_and_does_not_update_them(training):
    inputs, labels = random_batch(10)
    layer = make_layer(3, 5, seed=11)
    rng = np.random.default_rng(12)
    moving_mean = rng.standard_normal(5).astype(np.float32)
    moving_variance = rng.uniform(0.5, 2.0, 5).astype(np.float32)
    layer.moving_mean.assign(moving_mean)
    layer.moving_variance.assign(moving_variance)
    expected = reference_batch_norm(
        inputs, moving_mean, moving_variance, layer.gamma.numpy(), layer.beta.numpy(), labels
    )
    np.testing.assert_allclose(layer(inputs, labels, training=training), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(layer.moving_mean.numpy(), moving_mean)
    np.testing.assert_array_equal(layer.moving_variance.numpy(), moving_variance)


@pytest.mark.parametrize("decay", [0.999, 0.9])
def test_moving_averages_follow_the_update_rule_without_debiasing(decay):
    layer = ConditionalBatchNormalization(3, decay=decay)
    moving_mean, moving_variance = np.zeros(5), np.ones(5)
    for seed in (13, 14, 15):
        inputs, labels = random_batch(seed)
        layer(inputs, labels, training=True)
        mean, variance = reference_moments(inputs)
        moving_mean = moving_mean - (moving_mean - mean) * (1.0 - decay)
        moving_variance = moving_variance - (moving_variance - variance) * (1.0 - decay)
        np.testing.assert_allclose(layer.moving_mean.numpy(), moving_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(layer.moving_variance.numpy(), moving_variance, rtol=1e-5, atol=1e-6)
        layer(inputs, labels, training=False)  # an inference call in between changes nothing
        np.testing.assert_allclose(layer.moving_mean.numpy(), moving_mean, rtol=1e-5, atol=1e-6)


def test_labels_select_rows_independently_per_example():
    # The same image with two labels gets the two classes' gamma/beta in inference mode.
    inputs, _ = random_batch(16, batch=1)
    inputs = np.concatenate([inputs, inputs])
    layer = make_layer(3, 5, seed=17)
    outputs = layer(inputs, np.array([0, 2], np.int32), training=False).numpy()
    gamma, beta = layer.gamma.numpy(), layer.beta.numpy()
    normalized = inputs[0] / np.sqrt(1.0 + 1e-3)
    np.testing.assert_allclose(outputs[0], normalized * gamma[0] + beta[0], rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[1], normalized * gamma[2] + beta[2], rtol=1e-5, atol=1e-5)


# ---------------------------------------------------------------------------------------------------------
# Argument validation


def test_conditional_layer_without_labels_is_an_error():
    layer = ConditionalBatchNormalization(3, name="cbn_0")
    with pytest.raises(ValueError, match="cbn_0.*labels"):
        layer(random_batch(18)[0], training=False)


@pytest.mark.parametrize(
    "kwargs, bad_value",
    [
        (dict(num_classes=0), "num_classes=0"),
        (dict(epsilon=0.0), "epsilon=0.0"),
        (dict(decay=1.0), "decay=1.0"),
        (dict(decay=-0.1), "decay=-0.1"),
    ],
)
def test_bad_arguments_are_named(kwargs, bad_value):
    with pytest.raises(ValueError, match=bad_value):
        ConditionalBatchNormalization(**kwargs)


# ---------------------------------------------------------------------------------------------------------
# Synchronised statistics under MirroredStrategy on 2 logical CPUs (own process: devices are set before any op)

DISTRIBUTED_SCRIPT = r"""
import sys

import numpy as np
import tensorflow as tf

cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)

from ylg_tf.normalization.batch import ConditionalBatchNormalization

rng = np.random.default_rng(0)
# Two calls of a global batch of 4 (2 per replica); replica 1 gets shifted, wider inputs so that
# per-replica statistics differ clearly from whole-batch ones.
inputs = rng.standard_normal((2, 4, 3, 3, 5)).astype(np.float32)
inputs[:, 2:] = 3.0 * inputs[:, 2:] + 2.0
labels = rng.integers(0, 3, (2, 4)).astype(np.int32)
gamma = (1.0 + rng.standard_normal((3, 1, 1, 5))).astype(np.float32)
beta = rng.standard_normal((3, 1, 1, 5)).astype(np.float32)

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
assert strategy.num_replicas_in_sync == 2
results = dict(inputs=inputs, labels=labels, gamma=gamma, beta=beta)
for synchronized in (True, False):
    with strategy.scope():
        layer = ConditionalBatchNormalization(3, synchronized=synchronized)
        layer.build((None, 3, 3, 5))
    layer.gamma.assign(gamma)
    layer.beta.assign(beta)

    @tf.function
    def step(images, classes):
        return strategy.run(lambda x, y: layer(x, y, training=True), args=(images, classes))

    for call in range(2):
        def replica_slice(array):
            return strategy.experimental_distribute_values_from_function(
                lambda context: tf.constant(array[call, 2 * context.replica_id_in_sync_group:][:2])
            )
        outputs = step(replica_slice(inputs), replica_slice(labels))
        local = [value.numpy() for value in strategy.experimental_local_results(outputs)]
        results[f"outputs_{synchronized}_{call}"] = np.concatenate(local)
    for name in ("moving_mean", "moving_variance"):
        variable = getattr(layer, name)
        results[f"{name}_{synchronized}"] = np.stack([value.numpy() for value in variable.values])
np.savez(sys.argv[1], **results)
"""


@pytest.fixture(scope="module")
def distributed_results(tmp_path_factory):
    output = tmp_path_factory.mktemp("distributed") / "results.npz"
    completed = subprocess.run(
        [sys.executable, "-c", DISTRIBUTED_SCRIPT, str(output)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "CUDA_VISIBLE_DEVICES": ""},
    )
    assert completed.returncode == 0, completed.stderr[-3000:]
    with np.load(output) as archive:
        return {key: archive[key] for key in archive.files}


def test_synchronised_statistics_equal_the_whole_batch_statistics(distributed_results):
    results = distributed_results
    moving_mean, moving_variance = np.zeros(5), np.ones(5)
    for call in range(2):
        inputs, labels = results["inputs"][call], results["labels"][call]
        mean, variance = reference_moments(inputs)
        expected = reference_batch_norm(inputs, mean, variance, results["gamma"], results["beta"], labels)
        np.testing.assert_allclose(results[f"outputs_True_{call}"], expected, rtol=1e-4, atol=1e-4)
        moving_mean = moving_mean - (moving_mean - mean) * 0.001
        moving_variance = moving_variance - (moving_variance - variance) * 0.001
    for replica in range(2):
        np.testing.assert_allclose(results["moving_mean_True"][replica], moving_mean, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(results["moving_variance_True"][replica], moving_variance, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(results["moving_mean_True"][0], results["moving_mean_True"][1])
    np.testing.assert_array_equal(results["moving_variance_True"][0], results["moving_variance_True"][1])


def test_unsynchronised_statistics_are_per_replica(distributed_results):
    # The control: without synchronisation each replica normalises its own half, which differs clearly
    # from the whole-batch result (so the synchronised test above can fail).
    results = distributed_results
    for call in range(2):
        inputs, labels = results["inputs"][call], results["labels"][call]
        expected = np.concatenate(
            [
                reference_batch_norm(
                    inputs[half], *reference_moments(inputs[half]), results["gamma"], results["beta"], labels[half]
                )
                for half in (slice(0, 2), slice(2, 4))
            ]
        )
        np.testing.assert_allclose(results[f"outputs_False_{call}"], expected, rtol=1e-4, atol=1e-4)
        assert np.max(np.abs(results[f"outputs_False_{call}"] - results[f"outputs_True_{call}"])) > 0.5
    np.testing.assert_array_equal(results["moving_mean_False"][0], results["moving_mean_False"][1])
