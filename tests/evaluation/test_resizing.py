"""ylg_tf.evaluation.resizing: TF1's bilinear resize (no half-pixel centres, the YLG code's resize to 299)
against a NumPy reference of its kernel, and unlike TF2's half-pixel resize."""

import numpy as np
import pytest
import tensorflow as tf

from resize_references import half_pixel_bilinear_reference, legacy_bilinear_reference
from ylg_tf.evaluation import resizing


def random_images(seed, count, size):
    return np.random.default_rng(seed).uniform(-1, 1, size=[count, size, size, 3]).astype(np.float32)


@pytest.mark.parametrize("input_size, output_size", [(16, 299), (128, 299), (32, 299), (12, 5)])
def test_legacy_resize_is_the_no_half_pixel_kernel_and_not_tf2s(input_size, output_size):
    images = random_images(input_size, count=2 if input_size < 128 else 1, size=input_size)
    legacy = resizing.resize_images(images, output_size, resizing.LEGACY_BILINEAR).numpy()
    assert legacy.shape == (images.shape[0], output_size, output_size, 3) and legacy.dtype == np.float32
    np.testing.assert_allclose(legacy, legacy_bilinear_reference(images, output_size), atol=2e-5)
    # What the YLG code called, on this TensorFlow.
    original_call = tf.compat.v1.image.resize(
        images, [output_size, output_size], method=tf.image.ResizeMethod.BILINEAR)
    np.testing.assert_array_equal(legacy, original_call.numpy())

    half_pixel = resizing.resize_images(images, output_size, resizing.BILINEAR).numpy()
    np.testing.assert_allclose(half_pixel, half_pixel_bilinear_reference(images, output_size), atol=2e-5)
    assert np.abs(legacy - half_pixel).max() > 0.05  # the two kernels differ visibly on random images


def test_legacy_resize_keeps_the_top_left_pixel_and_repeats_the_last_row():
    images = random_images(seed=3, count=1, size=8)
    legacy = resizing.resize_images(images, 20, resizing.LEGACY_BILINEAR).numpy()
    np.testing.assert_allclose(legacy[0, 0, 0], images[0, 0, 0], atol=1e-6)  # samples (0, 0) exactly
    np.testing.assert_allclose(legacy[0, -1, -1], images[0, -1, -1], atol=1e-6)  # clamped at the edge
    half_pixel = resizing.resize_images(images, 20, resizing.BILINEAR).numpy()
    # The legacy grid sits 0.5 * (1 - 8/20) = 0.3 input pixels further down and right than TF2's.
    shifted = half_pixel_bilinear_reference(images, 20)
    assert not np.allclose(legacy, shifted, atol=1e-3)
    np.testing.assert_allclose(half_pixel, shifted, atol=2e-5)


def test_bad_names_are_rejected_with_the_allowed_ones():
    with pytest.raises(ValueError, match="'nearest' is not one of"):
        resizing.resize_images(random_images(0, 1, 4), 8, "nearest")
    with pytest.raises(ValueError, match=r"'bilinear' is not one of \('module', 'bilinear_299'"):
        resizing.check_resize_method("bilinear")
    for method in resizing.RESIZE_METHODS:
        resizing.check_resize_method(method)
