"""ylg_tf.training.loss_scaling and the trainer in mixed precision: float16 gradients that would flush to zero
survive the scaling, overflowing steps are skipped, a mixed step is close to the float32 step, variables and
optimizer slots stay float32, and a checkpoint written in one precision resumes in another."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf.config import get_preset
from ylg_tf.storage import checkpoint_layout
from ylg_tf.training.loss_scaling import INITIAL_LOSS_SCALE, GradientUpdate
from ylg_tf.training.trainer import Trainer

# A larger Adam epsilon than the paper's 1e-8: Adam's first step is lr * g / (|g| + epsilon), which for
# gradients that are zero up to rounding noise (G's conv biases before batch norm) is +-lr by the noise's
# sign. With 1e-2 the update is smooth in g and the comparison is about precision, not about that sign.
CONFIG = get_preset("test").replace(training={"epsilon": 1e-2})
# Unit roundoff: 2^-8 for bfloat16's 8 significant bits, 2^-11 for float16's 11.
UNIT_ROUNDOFF = {"mixed_bfloat16": 2.0**-8, "mixed_float16": 2.0**-11}


def _tiny_gradient_step(precision, first, second):
    """One SGD (rate 1) step on w [4] = 0 with loss = sum(float16(w) * first * second) computed in float16:
    the gradient, first * second per entry, goes back through float16 twice. Returns (w after the step, the
    loss scale after it or None)."""
    weights = tf.Variable(tf.zeros([4]))
    update = GradientUpdate(tf_keras.optimizers.SGD(learning_rate=1.0), precision)
    with tf.GradientTape() as tape:
        product = tf.cast(weights, tf.float16) * tf.constant(first, tf.float16) * tf.constant(second, tf.float16)
        target = update.scaled(tf.cast(tf.reduce_sum(product), tf.float32))
    update.apply(tape, target, [weights])
    scale = update.loss_scale
    return weights.numpy(), None if scale is None else float(scale)


def test_loss_scaling_keeps_float16_gradients_that_would_flush_to_zero():
    # 1e-4 x 1e-4 = 1e-8 is below half of float16's smallest subnormal (6e-8): unscaled, it is 0.
    first = second = 1e-4
    assert float(np.float16(first) * np.float16(second)) == 0.0
    unscaled, no_scale = _tiny_gradient_step("float32", first, second)
    scaled, scale = _tiny_gradient_step("mixed_float16", first, second)
    assert no_scale is None and scale == INITIAL_LOSS_SCALE
    np.testing.assert_array_equal(unscaled, np.zeros(4))  # the float16 gradient flushed to zero
    # Scaled, the float16 backward pass is float16(float16(2^15 x second) x first); divided by 2^15 in float32
    # it is the gradient (NumPy's float16 as the reference).
    expected = np.float16(np.float16(INITIAL_LOSS_SCALE * np.float16(second)) * np.float16(first))
    np.testing.assert_allclose(scaled, np.full(4, -float(expected) / INITIAL_LOSS_SCALE), rtol=1e-6)
    np.testing.assert_allclose(scaled, np.full(4, -first * second), rtol=2e-3)


def test_an_overflowing_float16_step_is_skipped_and_halves_the_scale():
    weights, scale = _tiny_gradient_step("mixed_float16", 30.0, 1.0)  # 30 x 2^15 overflows float16 (max 65504)
    np.testing.assert_array_equal(weights, np.zeros(4))
    assert scale == INITIAL_LOSS_SCALE / 2


def test_float32_and_bfloat16_apply_the_plain_gradients():
    for precision in ("float32", "mixed_bfloat16"):
        weights = tf.Variable([1.0, 2.0])
        update = GradientUpdate(tf_keras.optimizers.SGD(learning_rate=0.5), precision)
        with tf.GradientTape() as tape:
            target = update.scaled(tf.reduce_sum(weights**2))
        update.apply(tape, target, [weights])
        np.testing.assert_allclose(weights.numpy(), [1.0 - 0.5 * 2.0, 2.0 - 0.5 * 4.0])
        assert update.loss_scale is None


def _fixed_dataset():
    images = tf.random.stateless_uniform([4, 32, 32, 3], seed=[5, 6], minval=-1.0, maxval=1.0)
    labels = tf.range(4, dtype=tf.int32)
    return tf.data.Dataset.from_tensors((images, labels)).repeat()


def _network_variables(trainer):
    return [variable for name in ("generator", "discriminator") for variable in getattr(trainer, name).variables]


@pytest.fixture(scope="module")
def float32_run():
    """A float32 trainer's starting variables, and its metrics and variables after 2 steps."""
    tf_keras.utils.set_random_seed(7)
    trainer = Trainer(CONFIG, tf.distribute.get_strategy())
    start = [variable.numpy() for variable in _network_variables(trainer)]
    metrics = trainer.run_loop(iter(_fixed_dataset()), 2)
    return dict(start=start, metrics=metrics, end=[variable.numpy() for variable in _network_variables(trainer)],
                trainable=[variable.trainable for variable in _network_variables(trainer)])


@pytest.mark.parametrize("precision", sorted(UNIT_ROUNDOFF))
def test_a_mixed_step_is_finite_and_close_to_the_float32_step(precision, float32_run):
    """Two steps from the same weights and batches. The forward passes agree to a few unit roundoffs
    (tests/models/test_network_precision.py); the gradients less well, because some are sums of many terms
    that nearly cancel (a bias's gradient sums over the batch and the pixels), so their rounding error is
    large relative to them. Measured: the losses and mean logits 0.1% to 2% apart; the weight updates (end -
    start over all trainable weights, as one vector) 4% (float16) to 15% (bfloat16) apart in relative norm.
    The bounds (5% and 30%) are about twice that; a lost update, a wrong loss scale or gradients of the wrong
    network move the updates by 100% or more."""
    # float16: start at a loss scale whose first discriminator update does not overflow (the default 2^15
    # skips it, see the next test), so that both runs make the same updates.
    trainer = Trainer(CONFIG.replace(model={"precision": precision}), tf.distribute.get_strategy(),
                      initial_loss_scale=2.0**8)
    for variable, value in zip(_network_variables(trainer), float32_run["start"]):
        variable.assign(value)
    metrics = trainer.run_loop(iter(_fixed_dataset()), 2)
    assert metrics.finite and metrics.num_steps == 2
    expected = float32_run["metrics"]
    for name in ("discriminator_loss", "generator_loss", "real_logits", "fake_logits"):
        np.testing.assert_allclose(getattr(metrics, name), getattr(expected, name), rtol=0.05, atol=0.02,
                                   err_msg=name)
    difference = reference = 0.0
    for variable, start, end, trainable in zip(
            _network_variables(trainer), float32_run["start"], float32_run["end"], float32_run["trainable"]):
        if trainable:
            difference += np.sum(((variable.numpy() - start) - (end - start)) ** 2)
            reference += np.sum((end - start) ** 2)
    assert np.sqrt(difference / reference) < 0.3, np.sqrt(difference / reference)
    if precision == "mixed_float16":  # no step was skipped
        assert float(trainer.discriminator_update.loss_scale) == float(trainer.generator_update.loss_scale) == 2**8
    # Variables and the optimizers' slots stay float32.
    variables = checkpoint_layout.checkpoint_variables(trainer.checkpoint)
    assert {variable.dtype for variable in variables if variable.dtype.is_floating} == {tf.float32}


def test_float16_at_the_default_scale_skips_the_first_discriminator_update():
    trainer = Trainer(CONFIG.replace(model={"precision": "mixed_float16"}), tf.distribute.get_strategy())
    before = [variable.numpy() for variable in trainer.discriminator.trainable_variables]
    metrics = trainer.run_loop(iter(_fixed_dataset()), 1)
    assert metrics.finite
    assert float(trainer.discriminator_update.loss_scale) < INITIAL_LOSS_SCALE  # halved at least once
    for value, variable in zip(before, trainer.discriminator.trainable_variables):
        np.testing.assert_array_equal(value, variable.numpy())
    assert float(trainer.generator_update.loss_scale) == INITIAL_LOSS_SCALE


def test_a_checkpoint_resumes_in_another_precision(tmp_path):
    """float32 -> float16 -> float16 -> bfloat16 -> float32, a step each, every restore complete."""
    precisions = ("float32", "mixed_float16", "mixed_float16", "mixed_bfloat16", "float32")
    dataset = _fixed_dataset()
    path = None
    for index, precision in enumerate(precisions):
        trainer = Trainer(CONFIG.replace(model={"precision": precision}), tf.distribute.get_strategy())
        if path is not None:
            # As training restores (ylg_tf.training.experiment.restore_latest): every existing object matched,
            # float16's loss scale too (it is made with the loop, after the restore).
            trainer.checkpoint.restore(path).assert_existing_objects_matched()
            for variable, value in zip(checkpoint_layout.checkpoint_variables(trainer.checkpoint), saved):
                np.testing.assert_array_equal(variable.numpy(), value, err_msg=variable.name)
        assert int(trainer.step.numpy()) == index
        metrics = trainer.run_loop(iter(dataset), 1)
        assert metrics.finite and metrics.step == index + 1
        if precision == "mixed_float16":
            # From 2^15 (a fresh scale, or the saved one on tf-keras 2.15): at most two skipped D updates.
            assert INITIAL_LOSS_SCALE / 4 <= float(trainer.discriminator_update.loss_scale) <= INITIAL_LOSS_SCALE
        saved = [variable.numpy() for variable in checkpoint_layout.checkpoint_variables(trainer.checkpoint)]
        path = trainer.checkpoint.save(str(tmp_path / f"run{index}" / "ckpt"))
