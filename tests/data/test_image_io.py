"""ylg_tf.data.image_io, which reads tools/invert.py's --image: resizing as the original, the central crop
of the data pipeline, colour modes, one-line typed errors."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from image_files import write_bad_inputs
from ylg_tf.data import image_io
from ylg_tf.data.datasets import preprocess_image


def test_load_image_resizes_the_whole_image_as_the_original(tmp_path):
    random = np.random.default_rng(2)
    pixels = random.integers(0, 256, size=(20, 37, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    loaded = image_io.load_image(tmp_path / "wide.png", 32)
    # The original maps [0, 255] to [-1, 1] and then resizes with tf.image.resize (bilinear, half-pixel).
    expected = tf.image.resize(pixels.astype(np.float64) * 2.0 / 255.0 - 1.0, (32, 32), method="bilinear")
    assert loaded.shape == (32, 32, 3) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, expected.numpy(), atol=1e-5)
    # A squeeze, not a crop: the cropped version differs.
    assert np.abs(loaded - image_io.load_image(tmp_path / "wide.png", 32, center_crop=True)).max() > 0.05


def test_load_image_can_crop_the_central_square_like_the_data_pipeline(tmp_path):
    random = np.random.default_rng(1)
    pixels = random.integers(0, 256, size=(20, 37, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "wide.png")
    loaded = image_io.load_image(tmp_path / "wide.png", 32, center_crop=True)
    assert loaded.shape == (32, 32, 3) and loaded.dtype == np.float32
    np.testing.assert_allclose(loaded, preprocess_image(pixels, 32).numpy(), atol=1e-6)
    # Largest central square, offset rounded up: columns 9..28 of 37. Corners are aligned, so the output
    # corners are exactly the crop's corners.
    np.testing.assert_allclose(loaded[0, 0], pixels[0, 9] * 2.0 / 255.0 - 1.0, atol=1e-5)
    np.testing.assert_allclose(loaded[-1, -1], pixels[19, 28] * 2.0 / 255.0 - 1.0, atol=1e-5)


def test_read_rgb_converts_grayscale_sixteen_bit_and_transparency(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    Image.fromarray(gray, mode="L").save(tmp_path / "gray.png")
    np.testing.assert_array_equal(image_io.read_rgb(tmp_path / "gray.png"), np.repeat(gray[..., None], 3, axis=-1))

    deep = (np.arange(64, dtype=np.uint16).reshape(8, 8) * 1000).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "deep.png")
    rgb = image_io.read_rgb(tmp_path / "deep.png")
    np.testing.assert_array_equal(rgb[..., 0], np.round(deep / 257.0).astype(np.uint8))

    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[:2, :, :] = (10, 20, 30, 255)  # opaque top half; transparent black bottom half
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    rgb = image_io.read_rgb(tmp_path / "rgba.png")
    np.testing.assert_array_equal(rgb[0, 0], (10, 20, 30))
    np.testing.assert_array_equal(rgb[3, 3], (255, 255, 255))  # composited over white, not black


def test_read_rgb_errors_are_one_line_and_typed(tmp_path):
    write_bad_inputs(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        image_io.read_rgb(tmp_path / "missing.png")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        image_io.read_rgb(tmp_path)
    cases = {"empty.png": "is empty", "truncated.png": "corrupt or truncated", "notes.txt": "is not an image file"}
    for name, fragment in cases.items():
        with pytest.raises(ValueError, match=fragment) as error:
            image_io.read_rgb(tmp_path / name)
        assert "\n" not in str(error.value)
