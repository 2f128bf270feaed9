"""Pictures: image grids and PNG/GIF files from generator outputs in [-1, 1]."""

import io
import os

import numpy as np
from PIL import Image


def to_uint8(images):
    """[-1, 1] floats -> uint8 with the same rounding as the SavedModel export."""
    images = np.asarray(images, dtype=np.float32)
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def image_grid(images, columns=None, padding=2, background=255):
    """[N, H, W, 3] images ([-1, 1] floats or uint8) -> one uint8 [rows*(H+p)+p, cols*(W+p)+p, 3] grid."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] not in (1, 3):
        raise ValueError(f"images must be [N, H, W, 3], got shape {images.shape}")
    if images.dtype != np.uint8:
        images = to_uint8(images)
    if images.shape[-1] == 1:
        images = np.repeat(images, 3, axis=-1)
    count, height, width, _ = images.shape
    columns = columns or int(np.ceil(np.sqrt(count)))
    rows = int(np.ceil(count / columns))
    grid = np.full(
        (rows * (height + padding) + padding, columns * (width + padding) + padding, 3), background, np.uint8
    )
    for index, image in enumerate(images):
        row, column = divmod(index, columns)
        top, left = padding + row * (height + padding), padding + column * (width + padding)
        grid[top : top + height, left : left + width] = image
    return grid


def upscale(image, factor):
    """Nearest-neighbour enlargement, so small samples are visible."""
    return np.repeat(np.repeat(np.asarray(image), factor, axis=0), factor, axis=1)


def save_png(image, path):
    """Writes a uint8 [H, W, 3] array (or [-1, 1] floats) as PNG, atomically."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp.png"
    Image.fromarray(image).save(temporary, format="PNG")
    os.replace(temporary, path)
    return path


def save_gif(frames, path, seconds_per_frame=0.1):
    """Writes uint8 [H, W, 3] frames as a looping GIF."""
    pictures = [Image.fromarray(to_uint8(f) if np.asarray(f).dtype != np.uint8 else np.asarray(f)) for f in frames]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    pictures[0].save(
        path, save_all=True, append_images=pictures[1:], duration=int(seconds_per_frame * 1000), loop=0
    )
    return path


def png_bytes(image):
    """PNG encoding of a uint8 image, for TensorBoard or tests."""
    buffer = io.BytesIO()
    Image.fromarray(np.asarray(image)).save(buffer, format="PNG")
    return buffer.getvalue()
