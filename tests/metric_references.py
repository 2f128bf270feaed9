"""NumPy/SciPy references for the Inception Score and the Frechet distance, shared by the metric,
evaluation and tool tests."""

import numpy as np
import scipy.linalg
import scipy.special


def reference_inception_score(logits):
    """exp(E_x KL(p(y|x) || p(y))), one split, float64."""
    log_probabilities = scipy.special.log_softmax(np.asarray(logits, np.float64), axis=1)  # [N, K]
    probabilities = np.exp(log_probabilities)
    marginal = probabilities.mean(axis=0)  # [K]
    return float(np.exp(np.mean(np.sum(probabilities * (log_probabilities - np.log(marginal)), axis=1))))


def reference_frechet_distance(activations_a, activations_b):
    """|mu_a - mu_b|^2 + tr C_a + tr C_b - 2 tr sqrt(C_a C_b), unbiased covariances, float64.

    tr sqrt(C_a C_b) is taken exactly, also when the covariances are singular (fewer samples than
    features): with centred rows A, B, the non-zero eigenvalues of C_a C_b are those of
    (A B^T)(A B^T)^T / ((n_a - 1)(n_b - 1)), so the trace is the sum of A B^T's singular values over
    sqrt((n_a - 1)(n_b - 1)).
    """
    a = np.asarray(activations_a, np.float64)
    b = np.asarray(activations_b, np.float64)
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    covariance_a, covariance_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    trace_root = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum() / np.sqrt(
        (len(a) - 1) * (len(b) - 1))
    return float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
                 + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * trace_root)


def textbook_frechet_distance(activations_a, activations_b):
    """|mu_a - mu_b|^2 + tr(C_a + C_b - 2 sqrtm(C_a C_b)), unbiased covariances, float64 (SciPy's sqrtm:
    for full-rank covariances)."""
    activations_a = np.asarray(activations_a, np.float64)
    activations_b = np.asarray(activations_b, np.float64)
    mean_a, mean_b = activations_a.mean(axis=0), activations_b.mean(axis=0)
    covariance_a = np.cov(activations_a, rowvar=False)
    covariance_b = np.cov(activations_b, rowvar=False)
    product_root = scipy.linalg.sqrtm(covariance_a @ covariance_b).real
    return float(np.sum((mean_a - mean_b) ** 2)
                 + np.trace(covariance_a + covariance_b - 2.0 * product_root))
