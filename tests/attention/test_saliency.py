"""Tests for ylg_tf.attention.saliency against NumPy references (the pictures drawn from it:
tests/test_pictures.py).

Saliency reference (spec section 6): per key, the sum of its attention column over the queries divided by the
number of non-zero entries in that column (0 when there is none), reshaped to the key grid and enlarged by
nearest neighbours (an integer factor: every key value repeated over its factor x factor block).
"""

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.attention import masks
from ylg_tf.attention import saliency
from ylg_tf.attention.layers import LocalSparseAttention


def reference_saliency(probabilities, key_grid, factor):
    probabilities = np.asarray(probabilities, np.float64)
    batch, heads, _, _ = probabilities.shape
    total = probabilities.sum(axis=2)  # [B, heads, Nk]
    count = (probabilities != 0).sum(axis=2)
    mean = np.where(count > 0, total / np.maximum(count, 1), 0.0)
    grid = mean.reshape(batch, heads, key_grid[0], key_grid[1])
    return np.repeat(np.repeat(grid, factor, axis=2), factor, axis=3)


def masked_probabilities(seed, batch=2, query_grid=(8, 8), key_grid=(4, 4)):
    """Softmax rows restricted to YLG's masks (masked entries exactly 0), plus one key nobody sees."""
    allowed = masks.attention_masks("ylg", query_grid, key_grid).copy()  # [8, Nq, Nk]
    # Key 5 receives no attention in any head; queries that saw only key 5 see key 4 instead.
    only_five = allowed[:, :, 5] & (allowed.sum(axis=-1) == 1)
    allowed[:, :, 4] |= only_five
    allowed[:, :, 5] = False
    random = np.random.default_rng(seed)
    logits = random.normal(size=(batch,) + allowed.shape)
    weights = np.where(allowed, np.exp(logits), 0.0)
    probabilities = weights / weights.sum(axis=-1, keepdims=True)
    return probabilities.astype(np.float32), allowed


def test_saliency_matches_numpy_reference_with_masked_zeros():
    probabilities, allowed = masked_probabilities(seed=0)
    assert (probabilities == 0).mean() > 0.5  # mostly masked
    result = saliency.key_saliency(probabilities, (4, 4), output_grid=(8, 8)).numpy()
    expected = reference_saliency(probabilities, (4, 4), factor=2)
    assert result.shape == (2, 8, 8, 8)
    np.testing.assert_allclose(result, expected, rtol=1e-6, atol=1e-7)
    # The key nobody attends gets 0 (the original would divide 0 by 0), everywhere in its 2x2 block.
    row, column = divmod(5, 4)
    assert np.all(result[:, :, 2 * row : 2 * row + 2, 2 * column : 2 * column + 2] == 0.0)


def test_saliency_on_the_key_grid_divides_by_the_number_of_queries_that_see_each_key():
    probabilities, allowed = masked_probabilities(seed=1)
    result = saliency.key_saliency(probabilities, (4, 4)).numpy()  # no resize
    seen_by = allowed.sum(axis=1).astype(np.float64)  # [heads, Nk] queries allowed to see each key
    assert np.all(seen_by[:, 5] == 0) and np.all(np.delete(seen_by, 5, axis=1) > 0)
    expected = np.where(seen_by > 0, probabilities.sum(axis=2) / np.maximum(seen_by, 1), 0.0)
    np.testing.assert_allclose(result.reshape(2, 8, 16), expected, rtol=1e-6, atol=1e-7)


def test_saliency_of_a_real_ylg_layer_counts_exactly_the_unmasked_queries():
    layer = LocalSparseAttention(pattern="ylg")
    inputs = tf.random.stateless_normal([1, 8, 8, 64], seed=[3, 4])
    _, probabilities = layer(inputs, return_attention=True)
    probabilities = probabilities.numpy()
    # Masked entries are exact zeros, unmasked ones are not: the count is the mask's column count.
    np.testing.assert_array_equal(probabilities[0] != 0, layer.masks)
    result = saliency.key_saliency(probabilities, layer.key_grid, output_grid=(8, 8)).numpy()
    np.testing.assert_allclose(result, reference_saliency(probabilities, (4, 4), 2), rtol=1e-6, atol=1e-7)


def test_saliency_rejects_a_key_grid_that_does_not_fit():
    probabilities, _ = masked_probabilities(seed=2)
    with pytest.raises(ValueError, match="key_grid"):
        saliency.key_saliency(probabilities, (4, 5))
    with pytest.raises(ValueError, match="attention='none'"):
        saliency.key_saliency(None, (4, 4))


def test_query_index_maps_pixels_to_the_query_grid():
    # 32x32 image, 16x16 query grid: pixel (r, c) -> cell (r // 2, c // 2).
    assert saliency.query_index((0, 0), 32, (16, 16)) == 0
    assert saliency.query_index((5, 9), 32, (16, 16)) == 2 * 16 + 4
    assert saliency.query_index((31, 31), 32, (16, 16)) == 255
    with pytest.raises(ValueError, match=r"outside the 32x32 image"):
        saliency.query_index((32, 0), 32, (16, 16))
    with pytest.raises(ValueError, match=r"outside the 32x32 image"):
        saliency.query_index((0, -1), 32, (16, 16))


def test_query_attention_is_the_query_row_on_the_key_grid():
    probabilities, _ = masked_probabilities(seed=3)
    maps = saliency.query_attention(probabilities, 37, (4, 4))
    assert maps.shape == (2, 8, 4, 4)
    np.testing.assert_array_equal(maps.reshape(2, 8, 16), probabilities[:, :, 37, :])
    np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="query index 64"):
        saliency.query_attention(probabilities, 64, (4, 4))


