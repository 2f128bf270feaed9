"""ylg_tf.evaluation.classifiers: loading the evaluation classifier, its description and resize modes,
its errors."""

import numpy as np
import pytest
import tensorflow as tf

from evaluation_doubles import random_images
from fake_inception import write_fake_inception_savedmodel
from resize_references import legacy_bilinear_reference
from ylg_tf.evaluation import builtin_classifier
from ylg_tf.evaluation import classifiers
from ylg_tf.evaluation import inception


@pytest.fixture(scope="module")
def small_fake_inception(tmp_path_factory):
    return str(write_fake_inception_savedmodel(
        tmp_path_factory.mktemp("fake") / "module", resize_inside=True, pool_features=32, num_logits=10))


def test_inception_classifier_description_and_resize_modes(small_fake_inception, tmp_path):
    by_module = classifiers.load_evaluation_classifier(small_fake_inception, image_size=16)
    assert by_module.description["kind"] == "inception"
    assert by_module.description["resize"] == classifiers.RESIZE_BY_MODULE
    assert len(by_module.description["fingerprint"]) == 16
    images = random_images(seed=4, count=3, size=16)
    module = tf.saved_model.load(small_fake_inception)
    np.testing.assert_allclose(by_module.function(images)["pool_3"], module(images)["pool_3"], rtol=1e-6)

    by_tool = classifiers.load_evaluation_classifier(
        small_fake_inception, image_size=16, resize=classifiers.RESIZE_BILINEAR_299)
    assert by_tool.description["resize"] == classifiers.RESIZE_BILINEAR_299
    resized = tf.image.resize(images, [299, 299], method="bilinear")
    np.testing.assert_allclose(by_tool.function(images)["pool_3"], module(resized)["pool_3"], rtol=1e-6)

    # The YLG code's resize: TF1's bilinear kernel (NumPy reference), not TF2's.
    legacy = classifiers.load_evaluation_classifier(
        small_fake_inception, image_size=16, resize=classifiers.RESIZE_LEGACY_BILINEAR_299)
    assert legacy.description["resize"] == "legacy_bilinear_299"
    expected = module(tf.constant(legacy_bilinear_reference(images, 299), tf.float32))["pool_3"]
    np.testing.assert_allclose(legacy.function(images)["pool_3"], expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(legacy.function(images)["pool_3"], by_tool.function(images)["pool_3"], atol=1e-3)
    with pytest.raises(classifiers.EvaluationError, match="'bilinear' is not one of"):
        classifiers.load_evaluation_classifier(small_fake_inception, image_size=16, resize="bilinear")

    # A module with a fixed 299x299 input cannot take 16x16 images unless the tool resizes them.
    fixed = str(write_fake_inception_savedmodel(tmp_path / "fixed", pool_features=8, num_logits=4))
    with pytest.raises(inception.InceptionUnavailableError, match="--resize_to_299"):
        classifiers.load_evaluation_classifier(fixed, image_size=16)
    assert classifiers.load_evaluation_classifier(
        fixed, image_size=16, resize=classifiers.RESIZE_BILINEAR_299).description["fingerprint"] != (
        by_module.description["fingerprint"])


def test_classifier_errors_are_os_errors_so_entry_points_print_one_line(tmp_path):
    with pytest.raises(inception.InceptionUnavailableError, match="no such file") as error:
        classifiers.load_evaluation_classifier(str(tmp_path / "missing"), image_size=16)
    assert isinstance(error.value, OSError)
    with pytest.raises(classifiers.EvaluationError, match="needs a cache_directory"):
        classifiers.load_evaluation_classifier("builtin", image_size=32)
    with pytest.raises(ValueError, match="cache_directory must name"):
        builtin_classifier.load_or_train(None)


def test_default_classifier_is_builtin_only_for_the_builtin_dataset():
    assert classifiers.default_classifier_source("builtin") == "builtin"
    assert classifiers.default_classifier_source("cifar10") == inception.DEFAULT_INCEPTION
