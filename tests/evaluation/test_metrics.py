"""IS and FID against NumPy/SciPy reference formulas; streaming forms against the one-shot ones."""

import json

import numpy as np
import pytest

from metric_references import reference_inception_score, textbook_frechet_distance
from ylg_tf.evaluation import metrics
from ylg_tf.tfgan_import import tfgan

RELATIVE_TOLERANCE = 1e-6


def random_activations(seed, count, dimension, shift=0.0):
    # Correlated, non-negative-ish features with a non-zero mean, like pool_3 activations.
    generator = np.random.default_rng(seed)
    mixing = generator.normal(size=[dimension, dimension]) / np.sqrt(dimension)
    return np.abs(generator.normal(size=[count, dimension]) @ mixing) + shift


def random_logits(seed, count, num_classes):
    return np.random.default_rng(seed).normal(scale=3.0, size=[count, num_classes])


def accumulate_statistics(activations, batch_sizes, provenance=None):
    statistics = metrics.ActivationStatistics(activations.shape[1], provenance)
    start = 0
    for size in batch_sizes:
        statistics.update(activations[start:start + size])
        start += size
    assert start == activations.shape[0]
    return statistics


UNEVEN_BATCHES = [1, 0, 7, 50, 3, 64, 75]  # sums to 200


# ----------------------------------------------------------------------------- Inception Score


def test_inception_score_matches_reference():
    logits = random_logits(seed=0, count=120, num_classes=1008)
    expected = reference_inception_score(logits)
    assert metrics.inception_score(logits) == pytest.approx(expected, rel=RELATIVE_TOLERANCE)
    assert metrics.inception_score(logits.astype(np.float32)) == pytest.approx(
        reference_inception_score(logits.astype(np.float32)), rel=RELATIVE_TOLERANCE)
    assert expected > 1.5  # the logits are not trivially uniform


def test_inception_score_of_uniform_logits_is_one():
    logits = np.full([32, 1008], 0.25)
    assert metrics.inception_score(logits) == pytest.approx(1.0, rel=1e-12)
    accumulator = metrics.LogitsAccumulator(1008).update(logits)
    assert metrics.inception_score_from_accumulator(accumulator) == pytest.approx(1.0, rel=1e-12)


@pytest.mark.parametrize("num_used_classes", [1, 10, 37])
def test_inception_score_of_confident_even_logits_is_number_of_classes(num_used_classes):
    samples_per_class = 3
    logits = np.zeros([num_used_classes * samples_per_class, 1008])
    rows = np.arange(logits.shape[0])
    logits[rows, 5 * (rows % num_used_classes)] = 100.0  # one confident class per sample
    assert metrics.inception_score(logits) == pytest.approx(num_used_classes, rel=1e-9)
    accumulator = metrics.LogitsAccumulator(1008).update(logits)
    assert metrics.inception_score_from_accumulator(accumulator) == pytest.approx(
        num_used_classes, rel=1e-9)


def test_streaming_inception_score_equals_tfgan_on_full_set():
    logits = random_logits(seed=1, count=200, num_classes=1008)
    accumulator = metrics.LogitsAccumulator(1008)
    start = 0
    for size in UNEVEN_BATCHES:
        accumulator.update(logits[start:start + size])
        start += size
    assert accumulator.count == 200
    tfgan_score = float(tfgan.eval.classifier_score_from_logits(logits))
    assert metrics.inception_score_from_accumulator(accumulator) == pytest.approx(
        tfgan_score, rel=1e-10)
    assert tfgan_score == pytest.approx(reference_inception_score(logits), rel=RELATIVE_TOLERANCE)


def test_logits_accumulator_rejects_bad_input():
    with pytest.raises(ValueError, match="num_classes"):
        metrics.LogitsAccumulator(1)
    accumulator = metrics.LogitsAccumulator(10)
    with pytest.raises(ValueError, match="empty"):
        metrics.inception_score_from_accumulator(accumulator)
    with pytest.raises(ValueError, match="11 classes"):
        accumulator.update(np.zeros([2, 11]))
    with pytest.raises(ValueError, match="rank 2"):
        accumulator.update(np.zeros([10]))
    with pytest.raises(ValueError, match="NaN"):
        accumulator.update(np.full([2, 10], np.nan))


# ----------------------------------------------------------------------------- Frechet distance


def test_frechet_distance_matches_reference():
    activations_a = random_activations(seed=2, count=200, dimension=16)
    activations_b = random_activations(seed=3, count=150, dimension=16, shift=0.3)
    expected = textbook_frechet_distance(activations_a, activations_b)
    assert expected > 1.0
    assert metrics.frechet_distance(activations_a, activations_b) == pytest.approx(
        expected, rel=RELATIVE_TOLERANCE)
    statistics_a = metrics.ActivationStatistics(16).update(activations_a)
    statistics_b = metrics.ActivationStatistics(16).update(activations_b)
    assert metrics.frechet_distance_from_statistics(statistics_a, statistics_b) == pytest.approx(
        expected, rel=RELATIVE_TOLERANCE)


def test_frechet_distance_of_a_set_against_itself_is_zero():
    activations = random_activations(seed=4, count=100, dimension=12)
    scale = np.trace(np.cov(activations, rowvar=False))
    assert abs(metrics.frechet_distance(activations, activations)) < 1e-8 * scale
    statistics = metrics.ActivationStatistics(12).update(activations)
    assert abs(metrics.frechet_distance_from_statistics(statistics, statistics)) < 1e-8 * scale


def test_frechet_distance_from_statistics_equals_tfgan_when_rank_deficient():
    # Fewer samples than dimensions: singular covariances exercise TF-GAN's epsilon rule.
    activations_a = random_activations(seed=5, count=20, dimension=32)
    activations_b = random_activations(seed=6, count=25, dimension=32, shift=0.1)
    statistics_a = accumulate_statistics(activations_a, [3, 17])
    statistics_b = accumulate_statistics(activations_b, [25])
    assert metrics.frechet_distance_from_statistics(statistics_a, statistics_b) == pytest.approx(
        metrics.frechet_distance(activations_a, activations_b), rel=RELATIVE_TOLERANCE)


def test_streaming_statistics_over_uneven_batches_equal_one_shot():
    activations = random_activations(seed=7, count=200, dimension=16, shift=50.0)  # large mean
    statistics = accumulate_statistics(activations, UNEVEN_BATCHES)
    assert statistics.count == 200
    np.testing.assert_allclose(statistics.mean, activations.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(
        statistics.covariance, np.cov(activations, rowvar=False), rtol=1e-9, atol=1e-12)
    other = random_activations(seed=8, count=90, dimension=16, shift=50.2)
    other_statistics = accumulate_statistics(other, [45, 45])
    assert metrics.frechet_distance_from_statistics(statistics, other_statistics) == pytest.approx(
        metrics.frechet_distance(activations, other), rel=RELATIVE_TOLERANCE)


def test_merging_statistics_equals_accumulating_all():
    activations = random_activations(seed=9, count=60, dimension=8)
    merged = accumulate_statistics(activations[:25], [25])
    merged.merge(accumulate_statistics(activations[25:], [10, 25]))
    assert merged.count == 60
    np.testing.assert_allclose(merged.mean, activations.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(merged.covariance, np.cov(activations, rowvar=False), rtol=1e-10)


def test_statistics_reject_bad_input():
    with pytest.raises(ValueError, match="dimension"):
        metrics.ActivationStatistics(0)
    statistics = metrics.ActivationStatistics(4)
    with pytest.raises(ValueError, match="empty"):
        _ = statistics.mean
    statistics.update(np.ones([1, 4]))
    with pytest.raises(ValueError, match="at least 2"):
        _ = statistics.covariance
    with pytest.raises(ValueError, match="dimension 5"):
        statistics.update(np.ones([3, 5]))
    with pytest.raises(ValueError, match="must match"):
        metrics.frechet_distance_from_statistics(
            statistics, metrics.ActivationStatistics(5).update(np.ones([3, 5])))
    with pytest.raises(ValueError, match="must match"):
        metrics.frechet_distance(np.ones([3, 4]), np.ones([3, 5]))
    with pytest.raises(ValueError, match="JSON"):
        metrics.ActivationStatistics(4, provenance={"split": {1, 2}})


# ----------------------------------------------------------------------------- save / load


def test_statistics_save_load_round_trip_with_provenance(tmp_path):
    activations = random_activations(seed=10, count=50, dimension=6)
    provenance = {"dataset": "imagenet2012", "split": "validation", "num_images": 50,
                  "classifier": "https://tfhub.dev/tensorflow/tfgan/eval/inception/1",
                  "image_size": [128, 128]}
    statistics = accumulate_statistics(activations[:30], [30], provenance=provenance)
    path = tmp_path / "real_statistics.npz"
    statistics.save(path)

    loaded = metrics.ActivationStatistics.load(path)
    assert loaded.provenance == provenance
    assert json.dumps(loaded.provenance)  # still plain JSON data
    assert loaded.count == 30 and loaded.dimension == 6
    np.testing.assert_array_equal(loaded.mean, statistics.mean)
    np.testing.assert_array_equal(loaded.covariance, statistics.covariance)

    # Loaded statistics keep accumulating as if never saved.
    loaded.update(activations[30:])
    np.testing.assert_allclose(loaded.covariance, np.cov(activations, rowvar=False), rtol=1e-10)


def test_statistics_load_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="missing.npz"):
        metrics.ActivationStatistics.load(tmp_path / "missing.npz")
    with pytest.raises(ValueError, match=".npz"):
        metrics.ActivationStatistics(3).save(tmp_path / "statistics.bin")
    other = tmp_path / "other.npz"
    np.savez(other, mu=np.zeros(3), sigma=np.eye(3))
    with pytest.raises(ValueError, match="not an activation statistics file"):
        metrics.ActivationStatistics.load(other)
