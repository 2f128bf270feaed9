"""Inception Score and Frechet Inception Distance, as TF-GAN computes them, plus streaming forms.

One-shot functions call TF-GAN 2.1.0 directly:

- `inception_score(logits)`: `tfgan.eval.classifier_score_from_logits`, one split, as the originals
    (IS = exp(E_x KL(p(y|x) || p(y))), computed in float64).
- `frechet_distance(activations_a, activations_b)`:
    `tfgan.eval.frechet_classifier_distance_from_activations` on float64 activations.

Both need every logit/activation in memory (50k x 2048 float64 is 800 MB). The streaming forms keep
O(classes) and O(dimension^2) state instead, so memory does not grow with the number of samples:

- `LogitsAccumulator` + `inception_score_from_accumulator`: accumulates the sample count, the sum of
    p(y|x) and the sum of sum_y p log p. TF-GAN's own streaming helper uses the same identity:
    E KL(p(y|x) || p(y)) = E[sum_y p log p] - sum_y p(y) log p(y).
- `ActivationStatistics` + `frechet_distance_from_statistics`: accumulates count, mean and the
    centred scatter matrix in float64, merging batches with Chan et al.'s pairwise update (the same
    quantities as a raw sum of outer products, without its cancellation when the mean is large). The
    statistics save to / load from .npz with a JSON provenance dict so real-data statistics can be
    cached.

TF-GAN 2.1.0 has no public Frechet distance from (mean, covariance): its `_streaming` variants keep
tf.compat.v1 local variables (graph-mode metrics) and the matrix square root helper is private. So
`frechet_distance_from_statistics` repeats TF-GAN's float64 math in NumPy: the unbiased covariance,
and tr(sqrt(sigma_a sigma_b)) = tr(sqrt(A sigma_b A)) with A = sqrt(sigma_a), where the square root
of a symmetric matrix is taken through its SVD and singular values below 1e-10 are left unrooted, as
in TF-GAN's `_symmetric_matrix_square_root`. The tests check it equals the TF-GAN path.
"""

import io
import json
import logging

import numpy as np
import tensorflow as tf
from ylg_tf.tfgan_import import tfgan

_STATISTICS_FORMAT_VERSION = 1
# TF-GAN's `_symmetric_matrix_square_root` leaves singular values below this unrooted.
_SQUARE_ROOT_EPSILON = 1e-10


def inception_score(logits):
    """Inception Score of a full set of logits, one split, via TF-GAN.

    Args:
        logits: [N, classes] classifier logits (NumPy array or tensor).

    Returns:
        The score as a Python float, computed in float64.
    """
    logits = _as_float64_matrix(logits, "logits")  # [N, K]
    return float(tfgan.eval.classifier_score_from_logits(tf.constant(logits)))


def frechet_distance(activations_a, activations_b):
    """Frechet distance between two full sets of activations, via TF-GAN, in float64.

    Args:
        activations_a: [N_a, D] activations (e.g. Inception pool_3).
        activations_b: [N_b, D] activations.

    Returns:
        The distance as a Python float.
    """
    activations_a = _as_float64_matrix(activations_a, "activations_a")  # [N_a, D]
    activations_b = _as_float64_matrix(activations_b, "activations_b")  # [N_b, D]
    if activations_a.shape[1] != activations_b.shape[1]:
        raise ValueError(
            f"activations_a has dimension {activations_a.shape[1]} but activations_b has "
            f"{activations_b.shape[1]}; they must match.")
    for name, activations in (("activations_a", activations_a), ("activations_b", activations_b)):
        if activations.shape[0] < 2:
            raise ValueError(
                f"{name} has {activations.shape[0]} rows; a covariance needs at least 2.")
    return float(
        tfgan.eval.frechet_classifier_distance_from_activations(
            tf.constant(activations_a), tf.constant(activations_b)))


class ActivationStatistics:
    """Streaming mean and covariance of activations, in float64, with a provenance record.

    State is O(dimension^2) whatever the number of samples. `covariance` is the unbiased estimate
    (divides by count - 1), as TF-GAN's FID uses.
    """

    def __init__(self, dimension, provenance=None):
        """Starts empty statistics.

        Args:
            dimension: activation size D (2048 for Inception pool_3).
            provenance: JSON-serialisable dict describing where the activations came from (dataset,
                split, classifier, ...). Saved with the statistics.
        """
        self._dimension = checked_integer(dimension, "dimension", minimum=1)
        self.provenance = _checked_provenance(provenance)
        self._count = 0
        self._mean = np.zeros([self._dimension], np.float64)  # [D]
        self._scatter = np.zeros([self._dimension, self._dimension], np.float64)  # [D, D]

    @property
    def dimension(self):
        return self._dimension

    @property
    def count(self):
        """Number of activation rows accumulated."""
        return self._count

    @property
    def mean(self):
        """[D] float64 mean of the accumulated activations (a copy)."""
        if self._count < 1:
            raise ValueError("The statistics are empty: call update() with activations first.")
        return self._mean.copy()

    @property
    def covariance(self):
        """[D, D] float64 unbiased covariance of the accumulated activations."""
        if self._count < 2:
            raise ValueError(
                f"The covariance needs at least 2 activations; {self._count} accumulated so far.")
        return self._scatter / (self._count - 1)

    def update(self, activations):
        """Adds a batch of activations.

        Args:
            activations: [B, D] array or tensor; B may be 0 and may differ between calls.

        Returns:
            self, so calls can be chained.
        """
        activations = _as_float64_matrix(activations, "activations")  # [B, D]
        if activations.shape[1] != self._dimension:
            raise ValueError(
                f"activations have dimension {activations.shape[1]}; these statistics have "
                f"dimension {self._dimension}.")
        batch_count = activations.shape[0]
        if batch_count == 0:
            return self
        batch_mean = activations.mean(axis=0)  # [D]
        centred = activations - batch_mean  # [B, D]
        self._merge_moments(batch_count, batch_mean, centred.T @ centred)
        return self

    def merge(self, other):
        """Adds the samples summarised by another ActivationStatistics of the same dimension."""
        if not isinstance(other, ActivationStatistics):
            raise ValueError(f"Can only merge ActivationStatistics, got {type(other).__name__}.")
        if other.dimension != self._dimension:
            raise ValueError(
                f"Cannot merge statistics of dimension {other.dimension} into dimension "
                f"{self._dimension}.")
        if other.count:
            self._merge_moments(other.count, other._mean, other._scatter)
        return self

    def _merge_moments(self, other_count, other_mean, other_scatter):
        # Chan, Golub & LeVeque pairwise update of (count, mean, centred scatter).
        total = self._count + other_count
        delta = other_mean - self._mean  # [D]
        self._scatter += other_scatter + np.outer(delta, delta) * (
            self._count * other_count / total)
        self._mean += delta * (other_count / total)
        self._count = total

    def save(self, path):
        """Writes the statistics and provenance to an .npz file (any tf.io.gfile path)."""
        path = str(path)
        if not path.endswith(".npz"):
            raise ValueError(f"Statistics path must end with '.npz', got {path!r}.")
        # np.savez seeks in its output, which a write-mode GFile cannot: build the file in memory.
        buffer = io.BytesIO()
        np.savez(
            buffer,
            format_version=np.int64(_STATISTICS_FORMAT_VERSION),
            count=np.int64(self._count),
            mean=self._mean,
            scatter=self._scatter,
            provenance=np.array(json.dumps(self.provenance, sort_keys=True)))
        with tf.io.gfile.GFile(path, "wb") as output_file:
            output_file.write(buffer.getvalue())
        logging.info("Saved activation statistics of %d samples to %s", self._count, path)

    @classmethod
    def load(cls, path):
        """Reads statistics written by `save`."""
        path = str(path)
        if not tf.io.gfile.exists(path):
            raise FileNotFoundError(f"No activation statistics file at {path!r}.")
        with tf.io.gfile.GFile(path, "rb") as input_file:
            with np.load(input_file, allow_pickle=False) as contents:
                expected_keys = {"format_version", "count", "mean", "scatter", "provenance"}
                if set(contents.files) != expected_keys:
                    raise ValueError(
                        f"{path!r} is not an activation statistics file: it holds "
                        f"{sorted(contents.files)}, expected {sorted(expected_keys)}.")
                format_version = int(contents["format_version"])
                if format_version != _STATISTICS_FORMAT_VERSION:
                    raise ValueError(
                        f"{path!r} has statistics format version {format_version}; this code "
                        f"reads version {_STATISTICS_FORMAT_VERSION}.")
                mean = contents["mean"].astype(np.float64)
                scatter = contents["scatter"].astype(np.float64)
                statistics = cls(mean.shape[0], json.loads(str(contents["provenance"])))
                statistics._count = int(contents["count"])
                statistics._mean = mean
                statistics._scatter = scatter
        return statistics


class LogitsAccumulator:
    """Streaming state for the Inception Score: O(classes) memory whatever the number of samples."""

    def __init__(self, num_classes):
        self._num_classes = checked_integer(num_classes, "num_classes", minimum=2)
        self._count = 0
        self._sum_probabilities = np.zeros([self._num_classes], np.float64)  # [K]: sum_x p(y|x)
        self._sum_negative_entropy = 0.0  # sum_x sum_y p(y|x) log p(y|x)

    @property
    def num_classes(self):
        return self._num_classes

    @property
    def count(self):
        return self._count

    def update(self, logits):
        """Adds a batch of logits [B, classes] (B may be 0 and may differ between calls)."""
        logits = _as_float64_matrix(logits, "logits")  # [B, K]
        if logits.shape[1] != self._num_classes:
            raise ValueError(
                f"logits have {logits.shape[1]} classes; this accumulator has "
                f"{self._num_classes}.")
        if logits.shape[0] == 0:
            return self
        shifted = logits - logits.max(axis=1, keepdims=True)  # [B, K]
        log_probabilities = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))  # [B, K]
        probabilities = np.exp(log_probabilities)  # [B, K]
        self._count += logits.shape[0]
        self._sum_probabilities += probabilities.sum(axis=0)
        self._sum_negative_entropy += float((probabilities * log_probabilities).sum())
        return self


def inception_score_from_accumulator(accumulator):
    """Inception Score (one split) of the accumulated logits; equals `inception_score` on them."""
    if not isinstance(accumulator, LogitsAccumulator):
        raise ValueError(f"Expected a LogitsAccumulator, got {type(accumulator).__name__}.")
    if accumulator.count < 1:
        raise ValueError("The accumulator is empty: call update() with logits first.")
    marginal = accumulator._sum_probabilities / accumulator.count  # [K]: p(y)
    # 0 log 0 = 0: a class no sample gives mass to adds nothing (TF-GAN would return NaN there).
    marginal_negative_entropy = np.sum(
        marginal * np.log(np.where(marginal > 0.0, marginal, 1.0)))
    mean_kl = accumulator._sum_negative_entropy / accumulator.count - marginal_negative_entropy
    return float(np.exp(mean_kl))


def frechet_distance_from_statistics(statistics_a, statistics_b):
    """Frechet distance between two ActivationStatistics with TF-GAN's float64 math (module doc)."""
    for name, statistics in (("statistics_a", statistics_a), ("statistics_b", statistics_b)):
        if not isinstance(statistics, ActivationStatistics):
            raise ValueError(
                f"{name} must be ActivationStatistics, got {type(statistics).__name__}.")
    if statistics_a.dimension != statistics_b.dimension:
        raise ValueError(
            f"statistics_a has dimension {statistics_a.dimension} but statistics_b has "
            f"{statistics_b.dimension}; they must match.")
    return _frechet_distance_from_moments(
        statistics_a.mean, statistics_a.covariance, statistics_b.mean, statistics_b.covariance)


def _frechet_distance_from_moments(mean_a, covariance_a, mean_b, covariance_b):
    # |m_a - m_b|^2 + tr(C_a) + tr(C_b) - 2 tr(sqrt(C_a C_b)), TF-GAN's `_calculate_fid`.
    square_root_a = _symmetric_matrix_square_root(covariance_a)  # [D, D]
    trace_square_root_product = np.trace(
        _symmetric_matrix_square_root(square_root_a @ covariance_b @ square_root_a))
    covariance_term = np.trace(covariance_a + covariance_b) - 2.0 * trace_square_root_product
    mean_term = np.sum(np.square(mean_a - mean_b))
    return float(covariance_term + mean_term)


def _symmetric_matrix_square_root(matrix):
    # SVD-based root as TF-GAN's `_symmetric_matrix_square_root`: U diag(sqrt(s)) V^T, with
    # singular values below epsilon kept as they are instead of rooted.
    left, singular_values, right_transposed = np.linalg.svd(matrix)
    rooted = np.where(
        singular_values < _SQUARE_ROOT_EPSILON, singular_values, np.sqrt(singular_values))
    return (left * rooted) @ right_transposed


def _as_float64_matrix(values, name):
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError(f"{name} must have rank 2 [N, D], got shape {matrix.shape}.")
    if not np.all(np.isfinite(matrix)):
        raise ValueError(f"{name} contains NaN or infinite values.")
    return matrix


def checked_integer(value, name, minimum):
    """`value` as an int, or ValueError naming `name` when it is not an integer >= minimum (bools refused)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")
    return int(value)


def _checked_provenance(provenance):
    if provenance is None:
        return {}
    if not isinstance(provenance, dict):
        raise ValueError(f"provenance must be a dict, got {type(provenance).__name__}.")
    try:
        # Round trip so the stored copy is plain JSON data (tuples become lists, etc.).
        return json.loads(json.dumps(provenance, sort_keys=True))
    except (TypeError, ValueError) as error:
        raise ValueError(f"provenance must be JSON-serialisable: {error}") from error
