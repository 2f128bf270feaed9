"""Tests for ylg_tf.attention.saliency and the overlays and picture layouts of ylg_tf.pictures, against NumPy
references (the pictures that run a generator are checked end to end by the tools' tests).

Saliency reference (spec section 6): per key, the sum of its attention column over the queries divided by the
number of non-zero entries in that column (0 when there is none), reshaped to the key grid and enlarged by
nearest neighbours (an integer factor: every key value repeated over its factor x factor block).
"""

import numpy as np
import pytest
import tensorflow as tf
from matplotlib import colormaps

from ylg_tf.attention import masks
from ylg_tf.attention import saliency
from ylg_tf import pictures
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


def test_attention_overlay_blends_magma_at_alpha_065():
    image = np.zeros((4, 6, 3), np.uint8)
    image[..., 0] = 200
    values = np.array([[0.0, 1.0], [2.0, 4.0]])  # enlarged bilinearly to 4x6
    overlay = pictures.attention_overlay(image, values)
    assert overlay.shape == (4, 6, 3) and overlay.dtype == np.uint8
    enlarged = pictures.resize_map(values, 4, 6)
    scaled = (enlarged - enlarged.min()) / (enlarged.max() - enlarged.min())
    colours = np.round(colormaps["magma"](scaled)[..., :3] * 255.0)
    expected = np.round(0.65 * colours + 0.35 * image.astype(np.float64))
    np.testing.assert_allclose(overlay, expected, atol=1)
    # Bilinear enlargement keeps the corners of the map.
    np.testing.assert_allclose(enlarged[0, 0], 0.0, atol=1e-6)
    np.testing.assert_allclose(enlarged[-1, -1], 4.0, atol=1e-6)


def test_mark_point_draws_a_cross_centred_on_the_point():
    image = np.zeros((16, 16, 3), np.uint8)
    marked = pictures.mark_point(image, 5, 9, colour=(0, 255, 0), arm=2)
    green = marked[..., 1] == 255
    expected = np.zeros((16, 16), bool)
    expected[3:8, 9] = True
    expected[5, 7:12] = True
    np.testing.assert_array_equal(green, expected)
    assert not image.any()  # the input is untouched


def test_enlarge_for_display_repeats_pixels_to_at_least_the_minimum_size():
    images = np.random.default_rng(0).uniform(-1, 1, size=(2, 10, 10, 3)).astype(np.float32)
    enlarged = pictures.enlarge_for_display(images, minimum_size=25)
    assert enlarged.shape == (2, 30, 30, 3) and enlarged.dtype == np.uint8  # factor 3: 10 * 3 >= 25
    for image, big in zip(images, enlarged):
        np.testing.assert_array_equal(big, pictures.upscale(pictures.to_uint8(image), 3))
    np.testing.assert_array_equal(big[3:6, 0], np.repeat(big[3:4, 0], 3, axis=0))
    # Large images stay as they are.
    assert pictures.enlarge_for_display(images, minimum_size=8).shape == (2, 10, 10, 3)


def test_interpolation_pictures_lay_out_rows_per_label_and_frames_there_and_back():
    labels, steps, size = 2, 3, 4
    images = np.zeros((labels * steps, size, size, 3), np.uint8)
    for index in range(labels * steps):
        images[index] = 10 * index  # image (label l, step s) has value 10 * (l * steps + s)
    strip, frames = pictures.interpolation_pictures(images, labels, steps)
    assert strip.shape == (labels * (size + 2) + 2, steps * (size + 2) + 2, 3)
    assert strip[2 + (size + 2), 2 + 2 * (size + 2), 0] == 10 * (1 * steps + 2)  # row 1, column 2
    # Frames: steps 0, 1, 2, then back 1 (the first frame follows the last without a jump).
    assert len(frames) == steps + steps - 2
    for frame, step in zip(frames, [0, 1, 2, 1]):
        assert frame.shape == (size + 4, labels * (size + 2) + 2, 3)
        assert frame[2, 2, 0] == 10 * step and frame[2, 2 + size + 2, 0] == 10 * (steps + step)
    with pytest.raises(ValueError, match="need 2 x 4 images"):
        pictures.interpolation_pictures(images, labels, 4)


def test_query_attention_panels_show_the_picture_then_one_overlay_per_head():
    random = np.random.default_rng(1)
    images = random.integers(0, 256, size=(2, 8, 8, 3), dtype=np.uint8)
    maps = random.uniform(size=(2, 3, 4, 4))
    grid = pictures.query_attention_panels(images, maps, (2, 5))
    assert grid.shape == (2 * 10 + 2, 4 * 10 + 2, 3)
    for row in range(2):
        top = 2 + row * 10
        np.testing.assert_array_equal(grid[top : top + 8, 2 : 10], pictures.mark_point(images[row], 2, 5))
        for head in range(3):
            left = 2 + (head + 1) * 10
            expected = pictures.mark_point(pictures.attention_overlay(images[row], maps[row, head]), 2, 5)
            np.testing.assert_array_equal(grid[top : top + 8, left : left + 8], expected)
