"""ylg_tf.evaluation.samples: keyed latents, sample-count checks, the exported generator as a sample
function."""

import numpy as np
import pytest
import tensorflow as tf

from evaluation_doubles import tiny_config
from ylg_tf.config import ModelConfig
from ylg_tf.evaluation import classifiers, samples
from ylg_tf.models.networks import Generator


def test_sample_latents_are_keyed_by_seed_and_batch():
    z, labels = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=7)
    z_again, labels_again = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=7)
    np.testing.assert_array_equal(z, z_again)
    np.testing.assert_array_equal(labels, labels_again)
    other_batch, _ = samples.sample_latents(4, 4096, num_classes=5, z_dim=16, seed=7)
    other_seed, _ = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=8)
    assert not np.allclose(z, other_batch) and not np.allclose(z, other_seed)
    assert z.shape == (4096, 16) and labels.dtype == tf.int32
    assert abs(float(np.mean(z))) < 0.02 and abs(float(np.std(z)) - 1.0) < 0.02
    counts = np.bincount(labels.numpy(), minlength=5)
    assert counts.size == 5 and counts.min() > 4096 / 5 * 0.85  # uniform over all classes


@pytest.mark.parametrize("num_samples, batch_size, message", [
    (4, 8, "num_samples=4 is smaller than batch_size=8"),
    (1, 1, "num_samples must be an integer >= 2"),
    (16, 0, "batch_size must be an integer >= 1"),
])
def test_bad_sample_counts_are_user_errors(num_samples, batch_size, message):
    with pytest.raises(classifiers.EvaluationError, match=message):
        samples.check_sample_counts(num_samples, batch_size)
    assert issubclass(classifiers.EvaluationError, ValueError)  # the entry points' exit-2 errors


def test_exported_generator_samples_match_the_network_up_to_uint8_rounding(tmp_path):
    from ylg_tf.storage import export

    config = tiny_config()
    generator = Generator(config.model).build_for_config()
    signature = export.load_exported_generator(
        export.export_generator(generator, config.model, tmp_path / "export"))
    sample = samples.exported_sample_function(signature, config.model)
    z, labels = samples.sample_latents(0, 4, config.model.num_classes, config.model.z_dim)
    exported = sample(z, labels).numpy()
    direct = generator((z, labels), training=False).numpy()
    np.testing.assert_allclose(exported, direct, atol=0.5 / 127.5 + 1e-6)
    assert exported.min() >= -1.0 and exported.max() <= 1.0
    with pytest.raises(classifiers.EvaluationError, match="z_dim=64"):
        samples.exported_sample_function(
            signature, ModelConfig(image_size=32, num_classes=4, z_dim=64, attention="none"))
