"""ylg_tf.pictures against NumPy references: overlays, crosses, enlargements, picture layouts (the pictures
that run a generator are checked end to end by the tools' tests)."""

import numpy as np
import pytest
from matplotlib import colormaps

from ylg_tf import pictures


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
