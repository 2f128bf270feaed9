"""Dynamic loss scaling, which float16 needs and the other precisions do without.

float16 keeps 5 exponent bits: gradients below ~6e-8 flush to zero. Under `mixed_float16` each optimizer is
driven through Keras's `LossScaleOptimizer`: the loss is multiplied by a scale (2^15 at the start) before
the gradients are taken and they are divided by it after; a step whose gradients are not finite is skipped
and halves the scale, and 2000 finite steps in a row double it. The discriminator's bias gradients (sums over
the batch and the pixels) overflow float16 at 2^15, so a run skips its first discriminator update or two.

Where the scale lives depends on tf-keras: 2.15 attaches it (and its count of good steps) to the optimizer
it wraps, so checkpoints carry it and a resumed run goes on with it; 2.21 keeps it on the wrapper, which no
checkpoint holds, so a resumed run starts again at 2^15 and skips the update or two that brings it down.
Either way the trainer wraps its optimizers only after the restore (`Trainer.train_loop`), so a checkpoint of
another precision, without that state, restores completely.
"""

import tf_keras

LOSS_SCALED_PRECISIONS = ("mixed_float16",)
INITIAL_LOSS_SCALE = 2.0**15  # Keras's default


class GradientUpdate:
    """Applies the gradients of a loss to variables through `optimizer`, loss-scaled when `precision` needs it.

    Usage, inside the tape that computes `loss`: `target = update.scaled(loss)`; then
    `update.apply(tape, target, variables)`.
    """

    def __init__(self, optimizer, precision, initial_loss_scale=INITIAL_LOSS_SCALE):
        self.optimizer = optimizer
        self.loss_scale_optimizer = None
        if precision in LOSS_SCALED_PRECISIONS:
            self.loss_scale_optimizer = tf_keras.mixed_precision.LossScaleOptimizer(
                optimizer, initial_scale=initial_loss_scale)

    def scaled(self, loss):
        """The loss the gradients are taken of (call it under the tape)."""
        if self.loss_scale_optimizer is None:
            return loss
        return self.loss_scale_optimizer.get_scaled_loss(loss)

    def apply(self, tape, scaled_loss, variables):
        gradients = tape.gradient(scaled_loss, variables)
        if self.loss_scale_optimizer is None:
            self.optimizer.apply_gradients(zip(gradients, variables))
            return
        gradients = self.loss_scale_optimizer.get_unscaled_gradients(gradients)
        self.loss_scale_optimizer.apply_gradients(zip(gradients, variables))

    @property
    def loss_scale(self):
        """The current loss scale (a float32 tensor), or None without loss scaling."""
        return None if self.loss_scale_optimizer is None else self.loss_scale_optimizer.loss_scale
