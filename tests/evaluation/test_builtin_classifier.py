"""ylg_tf.evaluation.builtin_classifier: trained, cached, reloaded identically, and it tells real images
from an untrained generator's."""


import os
from unittest import mock
import numpy as np
import pytest
from ylg_tf.evaluation import builtin_classifier
from ylg_tf.data import builtin_shapes
from ylg_tf.evaluation import classifiers, evaluate, real_statistics, samples
from ylg_tf.evaluation import inception
from ylg_tf.config import ModelConfig
from ylg_tf.models.networks import Generator
RELATIVE_TOLERANCE = 1e-6
from evaluation_doubles import random_images


@pytest.fixture(scope="module")
def builtin_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifier_cache")
    directory, metadata = builtin_classifier.load_or_train(cache)
    return cache, directory, metadata


def test_builtin_classifier_is_accurate_cached_and_reloaded_identically(builtin_cache):
    cache, directory, metadata = builtin_cache
    assert directory == builtin_classifier.classifier_directory(cache)
    assert metadata["held_out_accuracy"] >= 0.8  # chance is 0.1
    assert metadata["num_classes"] == builtin_shapes.NUM_CLASSES

    # The cache is used as is: no retraining, files untouched.
    saved_model_file = os.path.join(directory, "saved_model.pb")
    modified = os.path.getmtime(saved_model_file)
    with mock.patch.object(builtin_classifier, "train_classifier", side_effect=AssertionError("retrained")):
        again_directory, again_metadata = builtin_classifier.load_or_train(cache)
    assert (again_directory, again_metadata) == (directory, metadata)
    assert os.path.getmtime(saved_model_file) == modified

    # The SavedModel is the trained network: its held-out accuracy is the recorded one, and two loads
    # through the Inception loading path agree exactly.
    first = inception.load_classifier(directory, image_size=None)
    second = inception.load_classifier(directory, image_size=None)
    assert builtin_classifier.held_out_accuracy(first) == metadata["held_out_accuracy"]
    images = random_images(seed=5, count=4, size=32)
    for field, width in (("logits", builtin_shapes.NUM_CLASSES),
                         ("pool_3", builtin_classifier.FEATURE_DIMENSION)):
        assert first(images)[field].shape == (4, width)
        np.testing.assert_array_equal(first(images)[field], second(images)[field])


def test_builtin_classifier_handles_other_resolutions(builtin_cache):
    _, directory, _ = builtin_cache
    classifier = inception.load_classifier(directory, image_size=None)
    images, labels = next(iter(builtin_shapes.builtin_shapes_dataset(64, 3, 200, split="validation").batch(200)))
    predictions = np.argmax(classifier(images)["logits"], axis=1)
    assert np.mean(predictions == labels.numpy()) >= 0.8


def test_builtin_classifier_scores_real_images_far_better_than_an_untrained_generator(builtin_cache):
    cache, _, metadata = builtin_cache
    classifier = classifiers.load_evaluation_classifier("builtin", image_size=32, cache_directory=cache)
    assert classifier.description["kind"] == "builtin"
    assert classifier.description["held_out_accuracy"] == metadata["held_out_accuracy"]
    num_samples, batch_size = 256, 64
    real, _ = real_statistics.real_statistics(
        classifier,
        lambda: real_statistics.make_real_batches("builtin", split="validation", image_size=32,
                                             num_samples=num_samples, batch_size=batch_size),
        num_samples, None, {})
    # "Generators": other real images (train split), and an untrained network.
    other_real = iter(builtin_shapes.builtin_shapes_dataset(32, 1, split="train").batch(batch_size))
    real_scores = evaluate.evaluate_generator(
        lambda z, labels: next(other_real)[0], classifier, num_samples, batch_size, 10, 128, real)
    model_config = ModelConfig(image_size=32, num_classes=10, generator_channels=16,
                               discriminator_channels=16, attention="none")
    untrained = samples.generator_sample_function(Generator(model_config).build_for_config())
    untrained_scores = evaluate.evaluate_generator(
        untrained, classifier, num_samples, batch_size, 10, 128, real)
    assert real_scores["inception_score"] > 8.0  # 10 near-balanced classes, confidently classified
    assert untrained_scores["inception_score"] < real_scores["inception_score"] - 3.0
    assert real_scores["fid"] < 0.1 * untrained_scores["fid"]
