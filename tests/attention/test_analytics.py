"""ylg_tf.attention.analytics: attention entropy and distance per head against an element-by-element NumPy
reference on maps with masked (zero) entries, and against the values the formulas give for known maps."""

import math

import numpy as np
import pytest

from ylg_tf.attention.analytics import attention_statistics


def _reference(probabilities, query_grid, key_grid):
    """Loops over every query and key, positions as the module docstring defines them."""
    batch, heads, _, _ = probabilities.shape
    (hq, wq), (hk, wk) = query_grid, key_grid
    entropy, distance = np.zeros(heads), np.zeros(heads)
    for head in range(heads):
        entropies, distances = [], []
        for b in range(batch):
            for q in range(hq * wq):
                qr, qc = (q // wq + 0.5) * hk / hq - 0.5, (q % wq + 0.5) * wk / wq - 0.5
                h = d = 0.0
                for k in range(hk * wk):
                    p = float(probabilities[b, head, q, k])
                    if p > 0:
                        h -= p * math.log(p)
                    d += p * math.hypot(qr - k // wk, qc - k % wk)
                entropies.append(h)
                distances.append(d)
        entropy[head], distance[head] = np.mean(entropies), np.mean(distances)
    return entropy, distance


def test_entropy_and_distance_equal_the_reference_on_masked_maps():
    random = np.random.default_rng(0)
    query_grid, key_grid = (4, 6), (2, 3)
    logits = random.normal(size=(3, 2, 24, 6)) * 2.0
    mask = random.random(size=logits.shape) < 0.4
    mask[..., 0] = False  # every query sees at least one key
    logits[mask] = -np.inf
    probabilities = np.exp(logits - logits.max(-1, keepdims=True))
    probabilities /= probabilities.sum(-1, keepdims=True)
    assert (probabilities == 0).any()
    statistics = attention_statistics(probabilities.astype(np.float32), query_grid, key_grid)
    entropy, distance = _reference(probabilities.astype(np.float32), query_grid, key_grid)
    np.testing.assert_allclose(statistics.entropy, entropy, rtol=1e-12)
    np.testing.assert_allclose(statistics.distance, distance, rtol=1e-12)


def test_uniform_attention_has_entropy_log_keys_and_a_point_has_zero():
    uniform = np.full((1, 1, 16, 4), 0.25)
    assert attention_statistics(uniform, (4, 4), (2, 2)).entropy[0] == pytest.approx(math.log(4))
    # Each query looks only at the key cell that covers it: entropy 0, distance |(r/2 - 0.25) - r//2| etc.
    point = np.zeros((1, 1, 16, 4))
    for q in range(16):
        point[0, 0, q, (q // 4 // 2) * 2 + (q % 4) // 2] = 1.0
    statistics = attention_statistics(point, (4, 4), (2, 2))
    assert statistics.entropy[0] == 0.0
    assert statistics.distance[0] == pytest.approx(math.hypot(0.25, 0.25))


def test_a_map_that_does_not_fit_the_grids_is_refused():
    with pytest.raises(ValueError, match=r"query_grid=\(4, 4\) and key_grid=\(2, 3\)"):
        attention_statistics(np.zeros((1, 1, 16, 4)), (4, 4), (2, 3))
    with pytest.raises(ValueError, match="must be \\[B, heads, Nq, Nk\\]"):
        attention_statistics(np.zeros((16, 4)), (4, 4), (2, 2))
