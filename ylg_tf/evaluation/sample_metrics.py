"""Sample-quality metrics of whole feature sets: KID, precision/recall, density/coverage, per-class FID.

`ylg_tf.evaluation.metrics` holds IS and FID, which stream through O(D^2) state. The metrics here need
every feature row at once (kernel sums and nearest neighbours over all pairs), so they take [N, D] arrays
(Inception pool_3 activations, say). Pairwise quantities are computed over row blocks of `block_size`
rows, so memory stays O(block_size * N) however many samples there are (10k x 10k is 10 blocks of
1024 x 10k float64, 80 MB each), never O(N^2).

Kernel Inception Distance (Binkowski, Sutherland, Arbel & Gretton, "Demystifying MMD GANs", ICLR 2018):
    the unbiased estimate of the squared maximum mean discrepancy with the cubic polynomial kernel
    k(x, y) = (x.y / d + 1)^3, d the feature dimension. For X (m rows) and Y (n rows):
        MMD^2_u = sum_{i != j} k(x_i, x_j) / (m (m - 1)) + sum_{i != j} k(y_i, y_j) / (n (n - 1))
                  - 2 sum_{i, j} k(x_i, y_j) / (m n).
    `kernel_inception_distance` averages it over `num_subsets` random subsets of `subset_size` rows of
    each set (each subset drawn without replacement, independently of the others), as the paper's code
    does; the defaults are 100 subsets of 1000 rows. It reports the mean, the standard deviation of
    the subset estimates (what papers usually print as "KID +- x") and the standard error
    std / sqrt(num_subsets), TF-GAN's formula. Subsets overlap, so that standard error understates the
    estimator's sampling error; the standard deviation is the conservative figure.
    TF-GAN's `kernel_classifier_distance_and_std_from_activations` uses disjoint blocks instead of random
    subsets; its per-block estimate is `unbiased_polynomial_mmd` (the tests check both agree).
    Computed in float64: the cubic kernel spreads the values over orders of magnitude and the three sums
    nearly cancel when the distributions match.

Improved precision and recall (Kynkaanniemi, Karras, Laine, Lehtinen & Aila, NeurIPS 2019):
    the manifold of a set is the union of closed balls around each of its samples, of radius the distance
    to the sample's k-th nearest other sample (k = 3 by default). Precision is the share of generated
    samples inside the real manifold, recall the share of real samples inside the generated one:
        precision = (1/M) sum_j 1[exists i: |y_j - x_i| <= NND_k(x_i)],
        recall    = (1/N) sum_i 1[exists j: |x_i - y_j| <= NND_k(y_j)].
    "<=" as in the paper's definition and its official code.

Density and coverage (Naeem, Oh, Uh, Choi & Yoo, ICML 2020), k = 5 by default, on the real balls only:
        density  = 1 / (k M) sum_j sum_i 1[|y_j - x_i| < NND_k(x_i)],
        coverage = (1/N) sum_i 1[exists j: |y_j - x_i| < NND_k(x_i)].
    Strict "<" as the authors' code (prdc): density of a set against itself is then exactly 1, each ball
    holding its centre and the k - 1 neighbours strictly inside it. Density is not bounded by 1.

Distances for the nearest-neighbour metrics are compared squared (the root is monotone; skipping it saves
a rounding step that can merge distinct values), computed as |a|^2 + |b|^2 - 2 a.b with one matrix product
per block. That expansion carries an absolute error of about eps * (|a|^2 + |b|^2), large against a small
squared distance between two long vectors; float64 (eps 1e-16 rather than float32's 1e-7) keeps samples
from moving across a ball's boundary by rounding, at about twice the time (5k x 5k rows of 2048 features:
about 7 s for precision and recall on 2 CPU cores).

Per-class FID (`per_class_frechet_distance`): FID between the rows of each label, for class-conditional
generators, with `metrics.ActivationStatistics` and `metrics.frechet_distance_from_statistics` (TF-GAN's
float64 math). Few rows per class bias FID upwards, so compare classes and runs at equal counts.
"""

import math
from typing import NamedTuple

import numpy as np

from ylg_tf.evaluation import metrics

DEFAULT_BLOCK_SIZE = 1024
DEFAULT_KID_SUBSET_SIZE = 1000
DEFAULT_KID_NUM_SUBSETS = 100
DEFAULT_PRECISION_RECALL_NEIGHBOURS = 3
DEFAULT_DENSITY_COVERAGE_NEIGHBOURS = 5


class KernelDistance(NamedTuple):
    """Kernel Inception Distance over subsets: mean, standard deviation and standard error of the estimates.

    Both spreads are NaN when there is a single subset.
    """

    mean: float
    standard_deviation: float
    standard_error: float


class PrecisionRecall(NamedTuple):
    """Improved precision (generated samples inside the real manifold) and recall (the converse)."""

    precision: float
    recall: float


class DensityCoverage(NamedTuple):
    """Density (mean real-ball count per generated sample, over k) and coverage (real balls hit)."""

    density: float
    coverage: float


# ---------------------------------------------------------------------------------------------------------
# Kernel Inception Distance


def unbiased_polynomial_mmd(activations_a, activations_b, block_size=DEFAULT_BLOCK_SIZE):
    """Unbiased MMD^2 between two whole sets with the kernel (x.y / d + 1)^3 (module docstring), float64.

    Args:
        activations_a: [N_a, D] features, N_a >= 2.
        activations_b: [N_b, D] features, N_b >= 2.
        block_size: rows per block of the kernel matrices.

    Returns:
        The estimate as a Python float (may be slightly negative when the sets match).
    """
    activations_a, activations_b = _checked_pair(
        activations_a, "activations_a", activations_b, "activations_b", minimum_rows=2)
    block_size = metrics.checked_integer(block_size, "block_size", minimum=1)
    return _unbiased_polynomial_mmd(activations_a, activations_b, block_size)


def kernel_inception_distance(activations_a, activations_b, *, subset_size=DEFAULT_KID_SUBSET_SIZE,
                              num_subsets=DEFAULT_KID_NUM_SUBSETS, seed=0, block_size=DEFAULT_BLOCK_SIZE):
    """KID: `unbiased_polynomial_mmd` over random subsets of both sets (Binkowski et al.), float64.

    Args:
        activations_a: [N_a, D] features (e.g. real images' pool_3).
        activations_b: [N_b, D] features (e.g. generated images' pool_3).
        subset_size: rows drawn from each set per subset, 2 <= subset_size <= min(N_a, N_b).
        num_subsets: number of subsets (>= 1).
        seed: seed of the subsets' own NumPy generator; equal seeds draw equal subsets.
        block_size: rows per block of the kernel matrices.

    Returns:
        KernelDistance(mean, standard_deviation, standard_error) of the subset estimates, Python floats.
    """
    activations_a, activations_b = _checked_pair(
        activations_a, "activations_a", activations_b, "activations_b", minimum_rows=2)
    subset_size = metrics.checked_integer(subset_size, "subset_size", minimum=2)
    num_subsets = metrics.checked_integer(num_subsets, "num_subsets", minimum=1)
    seed = metrics.checked_integer(seed, "seed", minimum=0)
    block_size = metrics.checked_integer(block_size, "block_size", minimum=1)
    smallest = min(activations_a.shape[0], activations_b.shape[0])
    if subset_size > smallest:
        raise ValueError(
            f"subset_size {subset_size} is larger than the smaller set ({activations_a.shape[0]} and "
            f"{activations_b.shape[0]} rows); use subset_size <= {smallest}.")
    generator = np.random.default_rng(seed)
    estimates = np.empty([num_subsets], np.float64)  # [num_subsets]
    for subset in range(num_subsets):
        rows_a = generator.choice(activations_a.shape[0], subset_size, replace=False)
        rows_b = generator.choice(activations_b.shape[0], subset_size, replace=False)
        estimates[subset] = _unbiased_polynomial_mmd(
            activations_a[rows_a], activations_b[rows_b], block_size)
    mean = float(estimates.mean())
    if num_subsets == 1:
        return KernelDistance(mean, math.nan, math.nan)
    deviation = float(estimates.std(ddof=1))
    return KernelDistance(mean, deviation, deviation / math.sqrt(num_subsets))


def _unbiased_polynomial_mmd(activations_a, activations_b, block_size):
    count_a, count_b = activations_a.shape[0], activations_b.shape[0]
    dimension = activations_a.shape[1]
    sum_aa = _polynomial_kernel_sum(activations_a, activations_a, dimension, block_size)
    sum_bb = _polynomial_kernel_sum(activations_b, activations_b, dimension, block_size)
    sum_ab = _polynomial_kernel_sum(activations_a, activations_b, dimension, block_size)
    diagonal_aa = np.sum(_polynomial_kernel(np.einsum("nd,nd->n", activations_a, activations_a), dimension))
    diagonal_bb = np.sum(_polynomial_kernel(np.einsum("nd,nd->n", activations_b, activations_b), dimension))
    return float((sum_aa - diagonal_aa) / (count_a * (count_a - 1))
                 + (sum_bb - diagonal_bb) / (count_b * (count_b - 1))
                 - 2.0 * sum_ab / (count_a * count_b))


def _polynomial_kernel(dot_products, dimension):
    return (dot_products / dimension + 1.0) ** 3


def _polynomial_kernel_sum(rows, columns, dimension, block_size):
    # sum_{i, j} k(rows_i, columns_j), one [block, N_columns] slab at a time.
    total = 0.0
    for start in range(0, rows.shape[0], block_size):
        total += float(np.sum(_polynomial_kernel(rows[start:start + block_size] @ columns.T, dimension)))
    return total


# ---------------------------------------------------------------------------------------------------------
# Nearest-neighbour metrics


def nearest_neighbour_radii(features, k, block_size=DEFAULT_BLOCK_SIZE):
    """Distance of each row to its k-th nearest other row (the ball radii of the manifold metrics).

    Args:
        features: [N, D] features, N > k.
        k: neighbour rank (>= 1); exact duplicates count as neighbours at distance 0.
        block_size: rows per block of the distance matrix.

    Returns:
        [N] float64 distances.
    """
    features = _checked_features(features, "features")
    k = _checked_neighbours(k, {"features": features})
    block_size = metrics.checked_integer(block_size, "block_size", minimum=1)
    return np.sqrt(_squared_radii(features, _squared_norms(features), k, block_size))


def precision_and_recall(real_features, generated_features, *, k=DEFAULT_PRECISION_RECALL_NEIGHBOURS,
                         block_size=DEFAULT_BLOCK_SIZE):
    """Improved precision and recall of Kynkaanniemi et al. (module docstring), closed k-NN balls.

    Args:
        real_features: [N, D] features of real images, N > k.
        generated_features: [M, D] features of generated images, M > k.
        k: neighbour rank of the ball radii.
        block_size: rows per block of the distance matrices.

    Returns:
        PrecisionRecall(precision, recall), Python floats in [0, 1].
    """
    real_features, generated_features = _checked_pair(
        real_features, "real_features", generated_features, "generated_features", minimum_rows=1)
    k = _checked_neighbours(k, {"real_features": real_features, "generated_features": generated_features})
    block_size = metrics.checked_integer(block_size, "block_size", minimum=1)
    real_norms = _squared_norms(real_features)  # [N]
    generated_norms = _squared_norms(generated_features)  # [M]
    real_radii = _squared_radii(real_features, real_norms, k, block_size)  # [N]
    generated_radii = _squared_radii(generated_features, generated_norms, k, block_size)  # [M]
    generated_in_real_manifold = np.zeros([generated_features.shape[0]], bool)  # [M]
    real_in_generated_manifold = np.zeros([real_features.shape[0]], bool)  # [N]
    # One pass over the real-generated distances serves both: precision reads them by column, recall by row.
    for start, distances in _squared_distance_blocks(
            real_features, real_norms, generated_features, generated_norms, block_size):
        stop = start + distances.shape[0]
        generated_in_real_manifold |= np.any(distances <= real_radii[start:stop, None], axis=0)
        real_in_generated_manifold[start:stop] = np.any(distances <= generated_radii[None, :], axis=1)
    return PrecisionRecall(float(generated_in_real_manifold.mean()), float(real_in_generated_manifold.mean()))


def density_and_coverage(real_features, generated_features, *, k=DEFAULT_DENSITY_COVERAGE_NEIGHBOURS,
                         block_size=DEFAULT_BLOCK_SIZE):
    """Density and coverage of Naeem et al. (module docstring), open k-NN balls around the real samples.

    Args:
        real_features: [N, D] features of real images, N > k.
        generated_features: [M, D] features of generated images, M >= 1.
        k: neighbour rank of the real ball radii.
        block_size: rows per block of the distance matrices.

    Returns:
        DensityCoverage(density, coverage), Python floats; density >= 0, coverage in [0, 1].
    """
    real_features, generated_features = _checked_pair(
        real_features, "real_features", generated_features, "generated_features", minimum_rows=1)
    k = _checked_neighbours(k, {"real_features": real_features})
    block_size = metrics.checked_integer(block_size, "block_size", minimum=1)
    real_norms = _squared_norms(real_features)  # [N]
    real_radii = _squared_radii(real_features, real_norms, k, block_size)  # [N]
    balls_containing = 0  # sum over generated samples of the number of real balls holding them
    covered = np.zeros([real_features.shape[0]], bool)  # [N]: a real ball holds a generated sample
    for start, distances in _squared_distance_blocks(
            real_features, real_norms, generated_features, _squared_norms(generated_features), block_size):
        inside = distances < real_radii[start:start + distances.shape[0], None]  # [block, M]
        balls_containing += int(np.count_nonzero(inside))
        covered[start:start + distances.shape[0]] = np.any(inside, axis=1)
    density = balls_containing / (k * generated_features.shape[0])
    return DensityCoverage(float(density), float(covered.mean()))


def _squared_norms(features):
    return np.einsum("nd,nd->n", features, features)  # [N]


def _squared_distance_blocks(rows, row_norms, columns, column_norms, block_size):
    # Yields (first row, [block, N_columns] squared distances). Every distance matrix of this module comes
    # from here, so a set compared with itself or with an identical copy gets bitwise-equal distances.
    for start in range(0, rows.shape[0], block_size):
        block = rows[start:start + block_size]  # [block, D]
        squared = (row_norms[start:start + block_size, None] + column_norms[None, :]
                   - 2.0 * (block @ columns.T))
        yield start, np.maximum(squared, 0.0)  # rounding can push a zero distance below 0


def _squared_radii(features, norms, k, block_size):
    radii = np.empty([features.shape[0]], np.float64)  # [N]
    for start, distances in _squared_distance_blocks(features, norms, features, norms, block_size):
        rows = np.arange(distances.shape[0])
        distances[rows, start + rows] = np.inf  # a sample is not its own neighbour
        radii[start:start + distances.shape[0]] = np.partition(distances, k - 1, axis=1)[:, k - 1]
    return radii


# ---------------------------------------------------------------------------------------------------------
# Per-class FID


def per_class_frechet_distance(activations_a, labels_a, activations_b, labels_b):
    """FID between the rows of each label of two labelled activation sets (module docstring).

    Args:
        activations_a: [N_a, D] activations (e.g. real images' pool_3).
        labels_a: [N_a] integer class labels of activations_a.
        activations_b: [N_b, D] activations (e.g. generated images' pool_3).
        labels_b: [N_b] integer class labels of activations_b.

    Returns:
        {label (int): FID (float)} for every label, sorted by label. Both sets must hold the same labels,
        each at least twice (a covariance needs 2 rows).
    """
    activations_a, activations_b = _checked_pair(
        activations_a, "activations_a", activations_b, "activations_b", minimum_rows=2)
    labels_a = _checked_labels(labels_a, "labels_a", activations_a, "activations_a")
    labels_b = _checked_labels(labels_b, "labels_b", activations_b, "activations_b")
    classes_a, counts_a = np.unique(labels_a, return_counts=True)
    classes_b, counts_b = np.unique(labels_b, return_counts=True)
    only_a = sorted(set(classes_a.tolist()) - set(classes_b.tolist()))
    only_b = sorted(set(classes_b.tolist()) - set(classes_a.tolist()))
    if only_a or only_b:
        raise ValueError(
            f"Both sets must hold the same labels: only in labels_a {_shortened(only_a)}, only in labels_b "
            f"{_shortened(only_b)}.")
    for name, classes, counts in (("labels_a", classes_a, counts_a), ("labels_b", classes_b, counts_b)):
        rare = classes[counts < 2].tolist()
        if rare:
            raise ValueError(
                f"{name} has fewer than 2 rows of label(s) {_shortened(rare)}; a covariance needs at "
                f"least 2.")
    dimension = activations_a.shape[1]
    distances = {}
    for label in classes_a.tolist():
        statistics_a = metrics.ActivationStatistics(dimension).update(activations_a[labels_a == label])
        statistics_b = metrics.ActivationStatistics(dimension).update(activations_b[labels_b == label])
        distances[int(label)] = metrics.frechet_distance_from_statistics(statistics_a, statistics_b)
    return distances


# ---------------------------------------------------------------------------------------------------------
# Argument checks


def _checked_features(values, name, minimum_rows=1):
    features = np.asarray(values, dtype=np.float64)
    if features.ndim != 2:
        raise ValueError(f"{name} must have rank 2 [N, D], got shape {features.shape}.")
    if features.shape[1] < 1:
        raise ValueError(f"{name} has no feature columns (shape {features.shape}).")
    if features.shape[0] < minimum_rows:
        raise ValueError(f"{name} has {features.shape[0]} rows; at least {minimum_rows} are needed.")
    if not np.all(np.isfinite(features)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return features


def _checked_pair(values_a, name_a, values_b, name_b, minimum_rows):
    features_a = _checked_features(values_a, name_a, minimum_rows)
    features_b = _checked_features(values_b, name_b, minimum_rows)
    if features_a.shape[1] != features_b.shape[1]:
        raise ValueError(
            f"{name_a} has dimension {features_a.shape[1]} but {name_b} has {features_b.shape[1]}; "
            f"they must match.")
    return features_a, features_b


def _checked_neighbours(k, sets):
    k = metrics.checked_integer(k, "k", minimum=1)
    for name, features in sets.items():
        if k >= features.shape[0]:
            raise ValueError(
                f"k={k} needs more than k rows in {name}, which has {features.shape[0]}; a sample's k-th "
                f"nearest neighbour is another sample.")
    return k


def _checked_labels(values, name, activations, activations_name):
    labels = np.asarray(values)
    if labels.ndim != 1 or labels.shape[0] != activations.shape[0]:
        raise ValueError(
            f"{name} must have shape [{activations.shape[0]}] (one label per row of {activations_name}), "
            f"got {labels.shape}.")
    if labels.size and not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"{name} must hold integer labels, got dtype {labels.dtype}.")
    return labels



def _shortened(values, limit=10):
    return str(values) if len(values) <= limit else f"{values[:limit]} and {len(values) - limit} more"
