"""ylg_tf.training.losses: the hinge losses against NumPy."""

import numpy as np

from ylg_tf.training.losses import discriminator_hinge_loss, generator_hinge_loss


def test_hinge_losses_match_numpy():
    real = np.array([[1.5], [0.2], [-0.7]], np.float32)
    fake = np.array([[-2.0], [0.4], [0.9]], np.float32)
    expected_d = np.mean(np.maximum(0, 1 - real)) + np.mean(np.maximum(0, 1 + fake))
    # With the global batch equal to this batch, the sums divided by it are the means.
    np.testing.assert_allclose(discriminator_hinge_loss(real, fake, 3).numpy(), expected_d, rtol=1e-6)
    np.testing.assert_allclose(generator_hinge_loss(real, fake, 3).numpy(), -np.mean(fake), rtol=1e-6)
    # Half the global batch on this replica: half the contribution.
    np.testing.assert_allclose(generator_hinge_loss(None, fake, 6).numpy(), -np.mean(fake) / 2, rtol=1e-6)
