"""ylg_tf.training.learning_rates and the trainer's use of it: the linear decay over a run's last steps."""

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.config import TrainingConfig, get_preset
from ylg_tf.training.learning_rates import learning_rate_factor
from ylg_tf.training.trainer import Trainer

TRAIN_STEPS, DECAY_STEPS = 4, 3
CONFIG = get_preset("test").replace(training={"train_steps": TRAIN_STEPS, "learning_rate_decay_steps": DECAY_STEPS})


def _reference_factor(step, train_steps, decay_steps):
    return np.clip((train_steps - np.asarray(step, np.float64)) / decay_steps, 0.0, 1.0)


@pytest.mark.parametrize("train_steps, decay_steps", [(10, 4), (1000, 400), (7, 7), (5, 1)])
def test_factor_is_one_then_falls_linearly_to_one_over_decay_steps_at_the_last_step(train_steps, decay_steps):
    steps = np.arange(train_steps + 2)
    factors = learning_rate_factor(tf.constant(steps, tf.int64), train_steps, decay_steps).numpy()
    np.testing.assert_allclose(factors, _reference_factor(steps, train_steps, decay_steps), rtol=1e-6)
    assert factors[train_steps - decay_steps] == 1.0 and np.isclose(factors[train_steps - 1], 1 / decay_steps)
    assert np.all(factors[: train_steps - decay_steps + 1] == 1.0) and np.all(np.diff(factors) <= 0)


def test_no_decay_is_a_constant_factor_of_one():
    assert float(learning_rate_factor(tf.constant(123, tf.int64), 200, 0)) == 1.0


@pytest.mark.parametrize("decay_steps", [-1, 5, 2.5])
def test_config_rejects_decay_steps_outside_zero_to_train_steps(decay_steps):
    with pytest.raises(ValueError, match=rf"learning_rate_decay_steps={decay_steps!r} must be an integer from 0"):
        TrainingConfig(train_steps=4, learning_rate_decay_steps=decay_steps)


def _dataset():
    images = tf.random.stateless_uniform([4, 32, 32, 3], seed=[5, 6], minval=-1.0, maxval=1.0)
    return tf.data.Dataset.from_tensors((images, tf.range(4, dtype=tf.int32))).repeat()


def _learning_rates(trainer):
    return (float(trainer.generator_optimizer.learning_rate.numpy()),
            float(trainer.discriminator_optimizer.learning_rate.numpy()))


def _trainers(*configs):
    """Trainers of these configs starting from the same weights."""
    trainers = [Trainer(config, tf.distribute.get_strategy()) for config in configs]
    for trainer in trainers[1:]:
        for network in ("generator", "discriminator"):
            getattr(trainer, network).set_weights(getattr(trainers[0], network).get_weights())
    return trainers


def _moved(after, before):
    return sum(float(np.abs(a - b).sum()) for a, b in zip(after, before))


def test_each_update_uses_the_decayed_rate_of_its_step():
    """Step by step, the optimizers hold the config's rates times the factor of the step just made; one loop
    of all the steps (the rates set inside the compiled loop) ends with the same weights; steps before the
    decay equal a constant-rate run's, and the decayed steps move the weights less."""
    training = CONFIG.training
    stepwise, one_loop, constant = _trainers(CONFIG, CONFIG, CONFIG.replace(training={"learning_rate_decay_steps": 0}))
    start = stepwise.generator.get_weights()
    iterator, constant_iterator = iter(_dataset()), iter(_dataset())
    for step in range(TRAIN_STEPS):
        stepwise.run_loop(iterator, 1)
        factor = _reference_factor(step, TRAIN_STEPS, DECAY_STEPS)
        np.testing.assert_allclose(
            _learning_rates(stepwise),
            (training.generator_learning_rate * factor, training.discriminator_learning_rate * factor), rtol=1e-6)
        if step == 1:  # steps 0 and 1 come before the decay (factor 1): equal to the constant-rate run
            constant.run_loop(constant_iterator, 2)
            for a, b in zip(stepwise.generator.get_weights(), constant.generator.get_weights()):
                np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
            middle = stepwise.generator.get_weights()
    constant.run_loop(constant_iterator, 2)  # steps 2 and 3 at the full rate, against 2/3 and 1/3 of it
    assert _moved(stepwise.generator.get_weights(), middle) < 0.75 * _moved(constant.generator.get_weights(), middle)
    one_loop.run_loop(iter(_dataset()), TRAIN_STEPS)
    for a, b in zip(one_loop.generator.get_weights(), stepwise.generator.get_weights()):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(_learning_rates(one_loop), _learning_rates(stepwise), rtol=1e-6)
    assert _moved(one_loop.generator.get_weights(), start) > 0


def test_a_restored_trainer_applies_the_rate_of_its_restored_step():
    trainer = Trainer(CONFIG, tf.distribute.get_strategy())
    trainer.step.assign(3)
    trainer.apply_learning_rates()
    factor = _reference_factor(3, TRAIN_STEPS, DECAY_STEPS)
    np.testing.assert_allclose(
        _learning_rates(trainer),
        (CONFIG.training.generator_learning_rate * factor, CONFIG.training.discriminator_learning_rate * factor),
        rtol=1e-6)
