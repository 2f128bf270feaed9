"""TF-GAN, imported through ylg_tf.tfgan_import, computes on every stack what it computed on the paper stack.

The stored numbers were computed once on the paper stack (TF 2.15.1, TF-GAN 2.1.0 imported unpatched) from
the inputs below; the current stack reaches TF-GAN through the tf.estimator shim and must give the same.
"""

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.training import losses
from ylg_tf.evaluation import metrics
from ylg_tf.tfgan_import import TFGAN_WAS_SHIMMED, tfgan

# Paper stack (TF 2.15.1 + tensorflow-gan 2.1.0), float64 metrics and float32 losses.
PAPER_STACK_INCEPTION_SCORE = 3.601507174206374
PAPER_STACK_FRECHET_DISTANCE = 1.8416622627068917
PAPER_STACK_DISCRIMINATOR_HINGE_LOSS = 2.000234842300415
PAPER_STACK_GENERATOR_HINGE_LOSS = 0.2492130845785141
GLOBAL_BATCH_SIZE = 8


@pytest.fixture(scope="module")
def fixed_inputs():
    random = np.random.RandomState(7)
    return dict(
        logits=random.normal(0, 3, size=(64, 10)),
        activations_a=random.normal(size=(200, 16)),
        activations_b=random.normal(0.2, 1.1, size=(150, 16)),
        real_logits=random.normal(size=(6, 1)).astype(np.float32),
        fake_logits=random.normal(size=(6, 1)).astype(np.float32),
    )


def test_inception_score_and_frechet_distance_equal_the_paper_stack(fixed_inputs):
    score = metrics.inception_score(fixed_inputs["logits"])
    assert score == pytest.approx(PAPER_STACK_INCEPTION_SCORE, rel=1e-12)
    assert float(tfgan.eval.classifier_score_from_logits(fixed_inputs["logits"])) == pytest.approx(score, rel=1e-12)
    distance = metrics.frechet_distance(fixed_inputs["activations_a"], fixed_inputs["activations_b"])
    assert distance == pytest.approx(PAPER_STACK_FRECHET_DISTANCE, rel=1e-9)


def test_hinge_losses_equal_the_paper_stack(fixed_inputs):
    real, fake = fixed_inputs["real_logits"], fixed_inputs["fake_logits"]
    discriminator = float(losses.discriminator_hinge_loss(real, fake, GLOBAL_BATCH_SIZE))
    generator = float(losses.generator_hinge_loss(real, fake, GLOBAL_BATCH_SIZE))
    assert discriminator == pytest.approx(PAPER_STACK_DISCRIMINATOR_HINGE_LOSS, rel=1e-6)
    assert generator == pytest.approx(PAPER_STACK_GENERATOR_HINGE_LOSS, rel=1e-6)
    # And the formulas they stand for, in NumPy.
    expected_discriminator = (np.maximum(0, 1 - real).sum() + np.maximum(0, 1 + fake).sum()) / GLOBAL_BATCH_SIZE
    assert discriminator == pytest.approx(expected_discriminator, rel=1e-6)
    assert generator == pytest.approx(-fake.sum() / GLOBAL_BATCH_SIZE, rel=1e-6)


def test_the_shim_leaves_tensorflow_namespace_as_it_found_it():
    # The placeholders exist only while tensorflow_gan imports; TF 2.15 keeps its real tf.estimator.
    assert hasattr(tf, "estimator") != TFGAN_WAS_SHIMMED
    assert TFGAN_WAS_SHIMMED == (tuple(int(part) for part in tf.__version__.split(".")[:2]) >= (2, 16))
    if TFGAN_WAS_SHIMMED:
        assert not hasattr(tf.compat.v1, "estimator")
