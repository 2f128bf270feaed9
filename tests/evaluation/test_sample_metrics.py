"""KID, precision/recall, density/coverage and per-class FID against brute-force NumPy/SciPy references,
TF-GAN's KID, and the properties their papers state (identical sets, far-apart sets, unbiasedness)."""

import numpy as np
import pytest
import scipy.linalg
import scipy.spatial.distance
import tensorflow as tf

from metric_references import textbook_frechet_distance
from ylg_tf.evaluation import sample_metrics
from ylg_tf.tfgan_import import tfgan

TOLERANCE = 1e-9


def gaussian_features(seed, count, dimension, shift=0.0, scale=1.0):
    return np.random.default_rng(seed).normal(loc=shift, scale=scale, size=[count, dimension])


# ---------------------------------------------------------------------------------------------------------
# References: whole matrices, explicit loops or SciPy, no blocks


def reference_polynomial_mmd(features_a, features_b, biased=False):
    """MMD^2 with k(x, y) = (x.y / d + 1)^3 from full kernel matrices; the unbiased form drops i == j."""
    dimension = features_a.shape[1]
    kernel_aa = (features_a @ features_a.T / dimension + 1.0) ** 3
    kernel_bb = (features_b @ features_b.T / dimension + 1.0) ** 3
    kernel_ab = (features_a @ features_b.T / dimension + 1.0) ** 3
    if biased:
        return kernel_aa.mean() + kernel_bb.mean() - 2.0 * kernel_ab.mean()
    count_a, count_b = len(features_a), len(features_b)
    off_diagonal_a = ~np.eye(count_a, dtype=bool)
    off_diagonal_b = ~np.eye(count_b, dtype=bool)
    return (kernel_aa[off_diagonal_a].sum() / (count_a * (count_a - 1))
            + kernel_bb[off_diagonal_b].sum() / (count_b * (count_b - 1))
            - 2.0 * kernel_ab.mean())


def reference_radii(features, k):
    distances = scipy.spatial.distance.cdist(features, features)
    return np.sort(distances, axis=1)[:, k]  # column 0 is the sample itself


def reference_precision_recall(real, generated, k):
    real_radii, generated_radii = reference_radii(real, k), reference_radii(generated, k)
    distances = scipy.spatial.distance.cdist(real, generated)  # [N, M]
    precision = np.mean([any(distances[i, j] <= real_radii[i] for i in range(len(real)))
                         for j in range(len(generated))])
    recall = np.mean([any(distances[i, j] <= generated_radii[j] for j in range(len(generated)))
                      for i in range(len(real))])
    return precision, recall


def reference_density_coverage(real, generated, k):
    real_radii = reference_radii(real, k)
    distances = scipy.spatial.distance.cdist(real, generated)  # [N, M]
    inside = distances < real_radii[:, None]
    density = inside.sum() / (k * len(generated))
    coverage = np.mean(distances.min(axis=1) < real_radii)
    return density, coverage


# ---------------------------------------------------------------------------------------------------------
# Kernel Inception Distance


def test_unbiased_mmd_equals_the_reference_for_any_block_size():
    features_a = np.abs(gaussian_features(seed=1, count=37, dimension=6))
    features_b = np.abs(gaussian_features(seed=2, count=29, dimension=6)) + 0.5
    expected = reference_polynomial_mmd(features_a, features_b)
    assert expected > 0.01
    for block_size in (1, 5, 29, 1024):
        assert sample_metrics.unbiased_polynomial_mmd(features_a, features_b, block_size=block_size) == (
            pytest.approx(expected, rel=TOLERANCE))


def test_unbiased_mmd_equals_tfgan_kid_on_one_block():
    features_a = gaussian_features(seed=3, count=40, dimension=8)
    features_b = gaussian_features(seed=4, count=50, dimension=8, shift=0.2)
    tfgan_mean, _ = tfgan.eval.kernel_classifier_distance_and_std_from_activations(
        tf.constant(features_a), tf.constant(features_b), max_block_size=1024)
    assert sample_metrics.unbiased_polynomial_mmd(features_a, features_b) == pytest.approx(
        float(tfgan_mean), rel=TOLERANCE)


def test_tfgan_block_kid_is_the_mean_and_standard_error_of_unbiased_mmd_over_its_blocks():
    # TF-GAN splits each set into contiguous blocks (here 3 of 40 and 3 of 30 rows) and averages the
    # per-block estimates; the spread follows the formula KernelDistance.standard_error uses.
    features_a = gaussian_features(seed=5, count=120, dimension=8)
    features_b = gaussian_features(seed=6, count=90, dimension=8, shift=0.1, scale=1.2)
    tfgan_mean, tfgan_standard_error = tfgan.eval.kernel_classifier_distance_and_std_from_activations(
        tf.constant(features_a), tf.constant(features_b), max_block_size=40)
    estimates = [sample_metrics.unbiased_polynomial_mmd(features_a[i * 40:(i + 1) * 40],
                                                        features_b[i * 30:(i + 1) * 30]) for i in range(3)]
    assert np.mean(estimates) == pytest.approx(float(tfgan_mean), rel=TOLERANCE)
    assert np.std(estimates, ddof=1) / np.sqrt(3) == pytest.approx(float(tfgan_standard_error), rel=1e-7)


def test_kernel_inception_distance_averages_the_unbiased_mmd_of_seeded_random_subsets():
    features_a = gaussian_features(seed=7, count=60, dimension=5)
    features_b = gaussian_features(seed=8, count=45, dimension=5, shift=0.5)
    result = sample_metrics.kernel_inception_distance(
        features_a, features_b, subset_size=20, num_subsets=7, seed=3, block_size=6)
    # The documented draw: per subset, rows of a then rows of b, each without replacement.
    generator = np.random.default_rng(3)
    estimates = []
    for _ in range(7):
        rows_a = generator.choice(60, 20, replace=False)
        rows_b = generator.choice(45, 20, replace=False)
        estimates.append(reference_polynomial_mmd(features_a[rows_a], features_b[rows_b]))
    assert result.mean == pytest.approx(np.mean(estimates), rel=TOLERANCE)
    assert result.standard_deviation == pytest.approx(np.std(estimates, ddof=1), rel=1e-7)
    assert result.standard_error == pytest.approx(np.std(estimates, ddof=1) / np.sqrt(7), rel=1e-7)
    assert sample_metrics.kernel_inception_distance(
        features_a, features_b, subset_size=20, num_subsets=7, seed=3, block_size=6) == result
    assert sample_metrics.kernel_inception_distance(
        features_a, features_b, subset_size=20, num_subsets=7, seed=4, block_size=6).mean != result.mean


def test_kernel_inception_distance_on_whole_sets_is_the_unbiased_mmd():
    features_a = gaussian_features(seed=9, count=30, dimension=4)
    features_b = gaussian_features(seed=10, count=30, dimension=4, shift=0.4)
    single = sample_metrics.kernel_inception_distance(features_a, features_b, subset_size=30, num_subsets=1)
    assert single.mean == pytest.approx(reference_polynomial_mmd(features_a, features_b), rel=TOLERANCE)
    assert np.isnan(single.standard_deviation) and np.isnan(single.standard_error)
    # Every subset is the whole set (in another order), so the estimates do not spread.
    repeated = sample_metrics.kernel_inception_distance(features_a, features_b, subset_size=30, num_subsets=4)
    assert repeated.mean == pytest.approx(single.mean, rel=TOLERANCE)
    assert repeated.standard_deviation < 1e-12


def test_unbiased_mmd_averages_to_zero_over_independent_draws_of_one_distribution():
    # Unbiasedness (Binkowski et al.): E[MMD^2_u] = 0 when both sets come from one distribution, while the
    # biased (V-statistic) form, which keeps k(x_i, x_i), is positive on average.
    generator = np.random.default_rng(11)
    unbiased, biased = [], []
    for _ in range(300):
        features_a = generator.normal(size=[15, 4])
        features_b = generator.normal(size=[15, 4])
        unbiased.append(sample_metrics.unbiased_polynomial_mmd(features_a, features_b))
        biased.append(reference_polynomial_mmd(features_a, features_b, biased=True))
    bound = 4.0 * np.std(unbiased) / np.sqrt(len(unbiased))
    assert abs(np.mean(unbiased)) < bound
    assert np.mean(biased) > 3.0 * bound


def test_kernel_inception_distance_is_near_zero_for_one_distribution_and_positive_when_shifted():
    real = gaussian_features(seed=12, count=400, dimension=8)
    same = gaussian_features(seed=13, count=400, dimension=8)
    shifted = gaussian_features(seed=14, count=400, dimension=8, shift=0.5)
    same_distance = sample_metrics.kernel_inception_distance(real, same, subset_size=100, num_subsets=50)
    shifted_distance = sample_metrics.kernel_inception_distance(
        real, shifted, subset_size=100, num_subsets=50)
    assert abs(same_distance.mean) < 3.0 * same_distance.standard_deviation
    assert shifted_distance.mean > 10.0 * shifted_distance.standard_error
    assert shifted_distance.mean > 20.0 * abs(same_distance.mean)


def test_kernel_inception_distance_rejects_bad_arguments():
    features = gaussian_features(seed=15, count=10, dimension=3)
    with pytest.raises(ValueError, match="subset_size 11 is larger than the smaller set"):
        sample_metrics.kernel_inception_distance(features, features, subset_size=11)
    with pytest.raises(ValueError, match="subset_size must be an integer >= 2"):
        sample_metrics.kernel_inception_distance(features, features, subset_size=1)
    with pytest.raises(ValueError, match="num_subsets must be an integer >= 1, got 0"):
        sample_metrics.kernel_inception_distance(features, features, subset_size=5, num_subsets=0)
    with pytest.raises(ValueError, match="dimension 3 but activations_b has 4"):
        sample_metrics.kernel_inception_distance(features, np.ones([10, 4]), subset_size=5)
    with pytest.raises(ValueError, match=r"rank 2 \[N, D\], got shape \(10,\)"):
        sample_metrics.unbiased_polynomial_mmd(features[:, 0], features)
    with pytest.raises(ValueError, match="activations_a has 1 rows; at least 2"):
        sample_metrics.unbiased_polynomial_mmd(features[:1], features)
    with pytest.raises(ValueError, match="NaN"):
        sample_metrics.unbiased_polynomial_mmd(np.full([4, 3], np.nan), features)


# ---------------------------------------------------------------------------------------------------------
# Precision/recall and density/coverage


def test_nearest_neighbour_radii_equal_the_sorted_distances_for_any_block_size():
    features = gaussian_features(seed=20, count=23, dimension=5)
    for k in (1, 3, 22):
        expected = reference_radii(features, k)
        for block_size in (1, 4, 1024):
            np.testing.assert_allclose(
                sample_metrics.nearest_neighbour_radii(features, k, block_size=block_size), expected,
                rtol=1e-9)


def test_precision_and_recall_equal_the_reference():
    real = gaussian_features(seed=21, count=70, dimension=4)
    generated = gaussian_features(seed=22, count=55, dimension=4, shift=0.7, scale=0.6)
    expected_precision, expected_recall = reference_precision_recall(real, generated, k=3)
    assert 0.1 < expected_precision < 0.99 and 0.05 < expected_recall < 0.95  # neither trivial
    for block_size in (1, 8, 1024):
        result = sample_metrics.precision_and_recall(real, generated, block_size=block_size)
        assert result.precision == pytest.approx(expected_precision, abs=1e-12)
        assert result.recall == pytest.approx(expected_recall, abs=1e-12)
    result_k5 = sample_metrics.precision_and_recall(real, generated, k=5)
    assert tuple(result_k5) == pytest.approx(reference_precision_recall(real, generated, k=5), abs=1e-12)


def test_density_and_coverage_equal_the_reference():
    real = gaussian_features(seed=23, count=64, dimension=4)
    generated = gaussian_features(seed=24, count=48, dimension=4, shift=0.5, scale=0.5)
    expected_density, expected_coverage = reference_density_coverage(real, generated, k=5)
    assert 0.05 < expected_coverage < 0.95 and expected_density > 0.1
    for block_size in (1, 9, 1024):
        result = sample_metrics.density_and_coverage(real, generated, block_size=block_size)
        assert result.density == pytest.approx(expected_density, abs=1e-12)
        assert result.coverage == pytest.approx(expected_coverage, abs=1e-12)
    result_k2 = sample_metrics.density_and_coverage(real, generated, k=2)
    assert tuple(result_k2) == pytest.approx(reference_density_coverage(real, generated, k=2), abs=1e-12)


def test_identical_sets_have_full_precision_recall_coverage_and_unit_density():
    features = np.abs(gaussian_features(seed=25, count=50, dimension=6)) + 20.0  # large norms
    copy = features.copy()
    for block_size in (7, 1024):
        assert tuple(sample_metrics.precision_and_recall(features, copy, block_size=block_size)) == (1.0, 1.0)
        density, coverage = sample_metrics.density_and_coverage(features, copy, block_size=block_size)
        assert coverage == 1.0
        # Each open ball holds its centre and its k - 1 nearer neighbours: k of the 50 samples.
        assert density == pytest.approx(1.0, abs=1e-12)


def test_balls_are_closed_for_precision_and_recall_and_open_for_density_and_coverage():
    # Integer points, so every squared distance is exact: with k = 1 all radii are 1, generated 2 lies on
    # the boundary of real 1's ball and real 1 on the boundary of generated 2's ball.
    real = np.array([[0.0, 0.0], [1.0, 0.0], [10.0, 0.0], [11.0, 0.0]])
    generated = np.array([[2.0, 0.0], [3.0, 0.0]])
    assert tuple(sample_metrics.precision_and_recall(real, generated, k=1)) == (0.5, 0.25)
    assert tuple(sample_metrics.precision_and_recall(real, generated, k=1)) == (
        reference_precision_recall(real, generated, k=1))
    assert tuple(sample_metrics.density_and_coverage(real, generated, k=1)) == (0.0, 0.0)
    assert tuple(sample_metrics.density_and_coverage(real, generated, k=1)) == (
        reference_density_coverage(real, generated, k=1))


def test_far_apart_sets_score_zero():
    real = gaussian_features(seed=26, count=40, dimension=3)
    generated = gaussian_features(seed=27, count=30, dimension=3, shift=100.0)
    assert tuple(sample_metrics.precision_and_recall(real, generated)) == (0.0, 0.0)
    assert tuple(sample_metrics.density_and_coverage(real, generated)) == (0.0, 0.0)


def test_a_collapsed_generator_has_high_precision_and_low_recall_and_coverage():
    # Mode collapse (Kynkaanniemi et al., Naeem et al.): samples near a few real points are realistic but
    # cover little of the real distribution. Each of the 5 clusters lies in about k + 1 = 6 real balls, so
    # about 30 of the 200 are covered.
    real = gaussian_features(seed=28, count=200, dimension=2)
    collapsed = real[:5].repeat(20, axis=0) + gaussian_features(seed=29, count=100, dimension=2, scale=1e-3)
    precision, recall = sample_metrics.precision_and_recall(real, collapsed)
    density, coverage = sample_metrics.density_and_coverage(real, collapsed)
    assert precision == 1.0 and recall < 0.1
    # Density stays near 1: each generated sample lies in about k + 1 real balls, (k + 1) / k = 1.2.
    assert coverage < 0.25 and 0.8 < density < 1.5


def test_nearest_neighbour_metrics_reject_bad_arguments():
    real = gaussian_features(seed=30, count=6, dimension=3)
    with pytest.raises(ValueError, match="k=3 needs more than k rows in generated_features, which has 3"):
        sample_metrics.precision_and_recall(real, real[:3])
    with pytest.raises(ValueError, match="k=6 needs more than k rows in real_features, which has 6"):
        sample_metrics.density_and_coverage(real, real, k=6)
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        sample_metrics.nearest_neighbour_radii(real, 0)
    with pytest.raises(ValueError, match="block_size must be an integer >= 1, got 0"):
        sample_metrics.precision_and_recall(real, real, k=2, block_size=0)
    with pytest.raises(ValueError, match="real_features has dimension 3 but generated_features has 2"):
        sample_metrics.density_and_coverage(real, real[:, :2], k=2)
    with pytest.raises(ValueError, match="generated_features has 0 rows"):
        sample_metrics.density_and_coverage(real, real[:0], k=2)


# ---------------------------------------------------------------------------------------------------------
# Per-class FID


def test_per_class_frechet_distance_equals_the_reference_on_each_label():
    generator = np.random.default_rng(31)
    labels_a = generator.permutation(np.repeat([0, 3, 7], [30, 25, 40]))
    labels_b = generator.permutation(np.repeat([0, 3, 7], [35, 20, 30]))
    activations_a = gaussian_features(seed=32, count=95, dimension=4) + labels_a[:, None]
    activations_b = gaussian_features(seed=33, count=85, dimension=4, scale=1.3) + 0.5 * labels_b[:, None]
    distances = sample_metrics.per_class_frechet_distance(activations_a, labels_a, activations_b, labels_b)
    assert list(distances) == [0, 3, 7]
    for label, distance in distances.items():
        expected = textbook_frechet_distance(
            activations_a[labels_a == label], activations_b[labels_b == label])
        assert distance == pytest.approx(expected, rel=1e-6)
    assert distances[7] > distances[0]  # the class means drift apart with the label


def test_per_class_frechet_distance_rejects_bad_labels():
    activations = gaussian_features(seed=34, count=6, dimension=2)
    labels = np.array([0, 0, 1, 1, 2, 2])
    with pytest.raises(ValueError, match=r"only in labels_a \[2\], only in labels_b \[\]"):
        sample_metrics.per_class_frechet_distance(
            activations, labels, activations, np.array([0, 0, 1, 1, 1, 0]))
    with pytest.raises(ValueError, match=r"labels_b has fewer than 2 rows of label\(s\) \[2\]"):
        sample_metrics.per_class_frechet_distance(
            activations, labels, activations, np.array([0, 0, 1, 1, 1, 2]))
    with pytest.raises(ValueError, match=r"labels_a must have shape \[6\]"):
        sample_metrics.per_class_frechet_distance(activations, labels[:5], activations, labels)
    with pytest.raises(ValueError, match="integer labels"):
        sample_metrics.per_class_frechet_distance(activations, labels * 1.0, activations, labels)
