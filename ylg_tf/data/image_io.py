"""Reading one image file as a model input: any format PIL decodes, brought to the model's resolution.

By default the image is brought to the model's resolution as the original inversion script does: scaled to
[-1, 1] and resized bilinearly (`tf.image.resize`) as a whole, so a non-square image is squeezed. With
center_crop=True it goes through the training preprocessing instead (`ylg_tf.data.datasets.preprocess_image`: the
largest central square, bilinear resize with aligned corners). Before that:
- EXIF orientation is applied, so a photo is used the way viewers show it;
- grayscale (8- or 16-bit) becomes RGB by repeating the channel;
- transparency (RGBA, LA, palette with transparency) is composited over white: dropping the alpha channel
  would expose whatever colour is stored under transparent pixels, often black;
- an animated image gives its first frame.
Missing, empty, corrupt and non-image files raise FileNotFoundError / ValueError with a one-line message.
"""

import os

import numpy as np
import tensorflow as tf
from PIL import Image, ImageOps, UnidentifiedImageError

from ylg_tf.data.datasets import preprocess_image

SIXTEEN_BIT_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _to_rgb(picture):
    """A PIL image in any mode -> uint8 [H, W, 3]."""
    if picture.mode in SIXTEEN_BIT_MODES:
        values = np.asarray(picture, dtype=np.float64)
        gray = np.clip(np.round(values / 257.0), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    if picture.mode == "F":
        values = np.asarray(picture, dtype=np.float64)
        scale = 255.0 if values.size and values.max() <= 1.0 else 1.0
        gray = np.clip(np.round(values * scale), 0, 255).astype(np.uint8)
        return np.repeat(gray[..., None], 3, axis=-1)
    has_alpha = picture.mode in ("RGBA", "LA", "PA", "RGBa", "La") or (
        picture.mode == "P" and "transparency" in picture.info
    )
    if has_alpha:
        picture = picture.convert("RGBA")
        background = Image.new("RGBA", picture.size, (255, 255, 255, 255))
        picture = Image.alpha_composite(background, picture)
    return np.asarray(picture.convert("RGB"), dtype=np.uint8)


def read_rgb(path):
    """The pixels of an image file as uint8 [H, W, 3]."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"image file {path!r} does not exist")
    if os.path.isdir(path):
        raise IsADirectoryError(f"image path {path!r} is a directory, not an image file")
    if os.path.getsize(path) == 0:
        raise ValueError(f"image file {path!r} is empty (0 bytes)")
    try:
        with Image.open(path) as picture:
            picture.load()
            picture = ImageOps.exif_transpose(picture)
            pixels = _to_rgb(picture)
    except Image.DecompressionBombError:
        raise ValueError(
            f"image file {path!r} has too many pixels to read safely (more than {2 * Image.MAX_IMAGE_PIXELS})"
        ) from None
    except UnidentifiedImageError:
        raise ValueError(f"{path!r} is not an image file PIL can read (JPEG, PNG, BMP, GIF, WebP, TIFF, ...)") from None
    except (OSError, SyntaxError, ValueError) as error:
        message = " ".join(str(error).split())
        raise ValueError(f"image file {path!r} is corrupt or truncated: {message}") from None
    if pixels.ndim != 3 or min(pixels.shape[:2]) == 0:
        raise ValueError(f"image file {path!r} has no pixels (shape {pixels.shape})")
    return pixels


def load_image(path, image_size, center_crop=False):
    """An image file as the model sees it: float32 [image_size, image_size, 3] in [-1, 1]."""
    pixels = read_rgb(path)
    if center_crop:
        return preprocess_image(pixels, int(image_size)).numpy()
    scaled = pixels.astype(np.float32) * (2.0 / 255.0) - 1.0
    return tf.image.resize(scaled, (int(image_size), int(image_size)), method="bilinear").numpy()
