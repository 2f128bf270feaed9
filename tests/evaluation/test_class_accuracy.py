"""ylg_tf.evaluation.class_accuracy: the share of samples classified as the class they were drawn for, against a
NumPy count, and with the built-in classifier: real shapes score near its held-out accuracy, an untrained
generator near chance."""

import math
import os

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.config import ExperimentConfig, ModelConfig, get_preset
from ylg_tf.data import builtin_shapes
from ylg_tf.evaluation import builtin_classifier, class_accuracy, inception
from ylg_tf.models.networks import Generator


def test_accumulator_counts_what_numpy_counts_over_uneven_batches():
    random = np.random.default_rng(0)
    logits = random.normal(size=(301, 7))
    labels = random.integers(0, 6, size=301)  # class 6 is never drawn
    accumulator = class_accuracy.ClassAccuracyAccumulator(7)
    for start, stop in ((0, 100), (100, 101), (101, 301)):
        accumulator.update(logits[start:stop], labels[start:stop])
    result = accumulator.result()
    hits = np.argmax(logits, axis=1) == labels
    assert result.accuracy == pytest.approx(hits.mean(), abs=1e-12)
    assert result.num_samples == 301
    for label in range(6):
        assert result.per_class[label] == pytest.approx(hits[labels == label].mean(), abs=1e-12)
    assert math.isnan(result.per_class[6])
    assert result.to_dict()["per_class"][6] is None


def test_accumulator_rejects_logits_of_other_classes_and_empty_results():
    accumulator = class_accuracy.ClassAccuracyAccumulator(10)
    with pytest.raises(ValueError, match="10 classes"):
        accumulator.update(np.zeros((4, 1008)), np.zeros(4))
    with pytest.raises(ValueError, match="no sample"):
        accumulator.result()


def label_image_generator(z, labels):
    """A stand-in generator whose images carry their label in the red channel (and nothing of z)."""
    values = tf.cast(labels, tf.float32)[:, None, None, None] / 10.0
    return tf.tile(values, [1, 4, 4, 3])


def label_reading_classifier(offset):
    """Reads the label back from the red channel and names class (label + offset) mod 10."""

    def classify(images):
        labels = tf.cast(tf.round(images[:, 0, 0, 0] * 10.0), tf.int32)
        logits = tf.one_hot((labels + offset) % 10, 10)
        return {inception.LOGITS: logits, inception.POOL: logits}

    return classify


def test_class_accuracy_scores_the_classes_the_samples_were_drawn_for():
    exact = class_accuracy.class_accuracy(
        label_image_generator, label_reading_classifier(0), num_classes=10, z_dim=3, num_samples=130,
        batch_size=50)
    shifted = class_accuracy.class_accuracy(
        label_image_generator, label_reading_classifier(1), num_classes=10, z_dim=3, num_samples=130,
        batch_size=50)
    assert exact.accuracy == 1.0 and exact.num_samples == 130
    assert all(value == 1.0 for value in exact.per_class if not math.isnan(value))
    assert shifted.accuracy == 0.0


def test_recognition_line_names_the_share_and_the_weakest_class():
    result = class_accuracy.ClassAccuracy(0.87, (1.0, 0.5) + (0.9,) * 8, 1000)
    line = class_accuracy.recognition_line(result, builtin_shapes.CLASS_NAMES)
    assert line == ("built-in classifier recognises 87% of samples as their class (1000 samples; weakest "
                    f"{builtin_shapes.CLASS_NAMES[1]} 50%)")


def test_only_built_in_data_runs_get_a_scorer(tmp_path):
    imagenet = ExperimentConfig()  # ImageNet's 1000 classes are not the built-in classifier's
    assert class_accuracy.make_class_accuracy_scorer(imagenet, tmp_path) is None
    assert not (tmp_path / f"builtin_classifier_v{builtin_classifier.VERSION}").exists()  # nothing trained


@pytest.fixture(scope="module")
def builtin_scorer():
    # The session's cache (tests/conftest.py), so the classifier trains once for every test that needs it.
    return class_accuracy.make_class_accuracy_scorer(
        get_preset("demo"), os.environ["YLG_TF_CACHE_DIR"], num_samples=200, batch_size=100)


def real_shapes_sample_function():
    """A stand-in 'perfect' generator: real built-in images (validation stream) of the asked-for labels."""
    by_label = {label: [] for label in range(builtin_shapes.NUM_CLASSES)}
    for image, label in builtin_shapes.builtin_shapes_dataset(32, 5, 1000, split="validation"):
        by_label[int(label)].append(image.numpy())

    def sample(z, labels):
        return tf.constant(np.stack([by_label[int(label)][index % len(by_label[int(label)])]
                                     for index, label in enumerate(np.asarray(labels))]))

    return sample


def test_built_in_classifier_recognises_real_shapes_and_not_an_untrained_generator(builtin_scorer):
    real = class_accuracy.class_accuracy(
        real_shapes_sample_function(), builtin_scorer.classifier_function, num_classes=10, z_dim=128,
        num_samples=200, batch_size=100)
    untrained = builtin_scorer(Generator(get_preset("demo").model).build_for_config())
    assert real.accuracy >= 0.9  # the classifier's held-out accuracy is above 0.95
    assert untrained.accuracy <= 0.35  # chance is 0.1; an untrained G's colours favour a few classes
    assert real.num_samples == untrained.num_samples == 200


def test_scorer_is_deterministic_for_one_generator(builtin_scorer):
    generator = Generator(ModelConfig(image_size=32, num_classes=10, generator_channels=16,
                                      discriminator_channels=16, attention="none")).build_for_config()
    assert builtin_scorer(generator) == builtin_scorer(generator)
