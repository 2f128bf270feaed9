"""The learning rates of a run: the config's constant rates (the paper's), or, with
`TrainingConfig.learning_rate_decay_steps` = D > 0, the same rates decayed linearly towards zero over the
run's last D steps.

The factor on both rates for the update made at step s (0-based: the step counter before the update) of a
run of T steps is min(1, (T - s) / D): 1 until step T - D, then falling by 1/D per step to 1/D at the last
step. It is a function of the step alone, so a resumed run continues on the same curve. A run extended
past its old `train_steps` follows the new T (its rates rise again).
"""

import tensorflow as tf


def learning_rate_factor(step, train_steps, decay_steps):
    """The factor on the config's learning rates for the update made at `step` (a tensor or a number);
    1.0 when decay_steps is 0. Returns a float32 tensor."""
    if not decay_steps:
        return tf.constant(1.0)
    remaining = tf.cast(train_steps, tf.float32) - tf.cast(step, tf.float32)
    return tf.clip_by_value(remaining / float(decay_steps), 0.0, 1.0)
