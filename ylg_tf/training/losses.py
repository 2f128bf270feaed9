"""The hinge GAN losses of SAGAN/YLG, from tensorflow-gan, as sums ready for a distributed step.

Each returns the loss summed over this replica's examples divided by the global batch size, so summing the
replicas' gradients (what the optimizer's all-reduce does) gives the gradient of the global mean.
  D: mean(relu(1 - D(x, y))) + mean(relu(1 + D(G(z, y'), y')))
  G: -mean(D(G(z, y'), y'))
"""

import tensorflow as tf
from ylg_tf.tfgan_import import tfgan

_SUM = tf.compat.v1.losses.Reduction.SUM


def discriminator_hinge_loss(real_logits, fake_logits, global_batch_size):
    total = tfgan.losses.wargs.wasserstein_hinge_discriminator_loss(
        real_logits, fake_logits, loss_collection=None, reduction=_SUM
    )
    return total / tf.cast(global_batch_size, total.dtype)


def generator_hinge_loss(real_logits, fake_logits, global_batch_size):
    """real_logits is unused (kept so every loss shares one signature)."""
    del real_logits
    total = tfgan.losses.wargs.wasserstein_generator_loss(fake_logits, loss_collection=None, reduction=_SUM)
    return total / tf.cast(global_batch_size, total.dtype)
