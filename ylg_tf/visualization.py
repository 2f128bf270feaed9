"""Pictures: image grids and PNG/GIF files from generator outputs in [-1, 1], attention overlays
(the magma colour map at alpha 0.65 over the image, as YLG's saliency pictures), and matplotlib figures
(loss curves, titled side-by-side comparisons) drawn without pyplot's global state."""

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
    """Writes a uint8 [H, W, 3] array (or [-1, 1] floats) as PNG, atomically; `path` may be any tf.io.gfile
    path (gs://... for a TPU run's work directory)."""
    from ylg_tf.workdir import write_bytes_atomically  # here: the rest of this module needs no TensorFlow

    return write_bytes_atomically(path, png_bytes(image))


def save_gif(frames, path, seconds_per_frame=0.1):
    """Writes uint8 [H, W, 3] frames (or [-1, 1] floats) as a looping GIF, atomically; any tf.io.gfile path."""
    from ylg_tf.workdir import write_bytes_atomically

    frames = [np.asarray(frame) for frame in frames]
    if not frames:
        raise ValueError("save_gif needs at least one frame, got none")
    pictures = [Image.fromarray(frame if frame.dtype == np.uint8 else to_uint8(frame)) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    return write_bytes_atomically(path, buffer.getvalue())


def png_bytes(image):
    """PNG encoding of a uint8 image (or [-1, 1] floats), for files, TensorBoard or tests."""
    image = np.asarray(image)
    if image.dtype != np.uint8:
        image = to_uint8(image)
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return buffer.getvalue()


# ----------------------------------------------------------------------------------------------
# Attention overlays and figures.

OVERLAY_COLORMAP = "magma"
OVERLAY_ALPHA = 0.65


def _as_uint8_image(image):
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"image must be [H, W, 3], got shape {image.shape}")
    return image if image.dtype == np.uint8 else to_uint8(image)


def colorize(values, colormap=OVERLAY_COLORMAP):
    """[H, W] values -> uint8 [H, W, 3], scaled so the smallest value is the colour map's start and the
    largest its end (a constant map gets the start colour)."""
    from matplotlib import colormaps

    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values must be [H, W], got shape {values.shape}")
    low, high = float(values.min()), float(values.max())
    scaled = (values - low) / (high - low) if high > low else np.zeros_like(values)
    colours = colormaps[colormap](scaled)[..., :3]  # [H, W, 3] in [0, 1]
    return np.round(colours * 255.0).astype(np.uint8)


def resize_map(values, height, width):
    """Bilinear resize of a [h, w] float map to [height, width] (PIL, float precision)."""
    values = np.asarray(values, dtype=np.float32)
    if values.shape == (height, width):
        return values
    resized = Image.fromarray(values).resize((width, height), resample=Image.BILINEAR)
    return np.asarray(resized, dtype=np.float32)


def attention_overlay(image, values, alpha=OVERLAY_ALPHA, colormap=OVERLAY_COLORMAP):
    """The map `values` [h, w] (resized bilinearly to the image) in `colormap`, blended over `image`.

    Result = alpha * colour + (1 - alpha) * image, uint8 [H, W, 3]: YLG drew the colour map at alpha 0.65
    under the image at alpha 0.35.
    """
    image = _as_uint8_image(image)
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha={alpha!r} must be in [0, 1]")
    colours = colorize(resize_map(values, image.shape[0], image.shape[1]), colormap)
    blended = alpha * colours.astype(np.float32) + (1.0 - alpha) * image.astype(np.float32)
    return np.clip(np.round(blended), 0, 255).astype(np.uint8)


def mark_point(image, row, column, colour=(0, 255, 0), arm=None):
    """A copy of a uint8 [H, W, 3] image with a cross (arms of `arm` pixels) centred on (row, column)."""
    image = _as_uint8_image(image).copy()
    height, width = image.shape[:2]
    arm = arm if arm is not None else max(2, min(height, width) // 32)
    top, bottom = max(0, row - arm), min(height, row + arm + 1)
    left, right = max(0, column - arm), min(width, column + arm + 1)
    image[top:bottom, min(max(column, 0), width - 1)] = colour
    image[min(max(row, 0), height - 1), left:right] = colour
    return image


def _save_figure(figure, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    temporary = f"{path}.tmp.png"
    figure.savefig(temporary, format="png", bbox_inches="tight")
    os.replace(temporary, path)
    return path


def save_loss_curve(losses, path, highlight=None, title="loss", ylabel="loss"):
    """Plots losses [steps, series] (one line per series, log scale) to a PNG; `highlight` is drawn bold."""
    from matplotlib.figure import Figure

    losses = np.asarray(losses, dtype=np.float64)
    if losses.ndim == 1:
        losses = losses[:, None]
    if losses.ndim != 2 or losses.shape[0] == 0:
        raise ValueError(f"losses must be [steps, series], got shape {losses.shape}")
    figure = Figure(figsize=(6, 4), dpi=100)
    axes = figure.add_subplot()
    steps = np.arange(losses.shape[0])
    for index in range(losses.shape[1]):
        bold = index == highlight
        axes.plot(
            steps,
            losses[:, index],
            linewidth=2.0 if bold else 0.8,
            alpha=1.0 if bold or highlight is None else 0.6,
            label=f"restart {index}" + (" (best)" if bold else ""),
        )
    if np.all(losses > 0):
        axes.set_yscale("log")
    axes.set_xlabel("step")
    axes.set_ylabel(ylabel)
    axes.set_title(title)
    axes.grid(True, alpha=0.3)
    if losses.shape[1] <= 16:
        axes.legend(fontsize="small")
    return _save_figure(figure, path)


def save_side_by_side(images, titles, path, panel_inches=2.0):
    """One row of images ([-1, 1] floats or uint8 [H, W, 3]) with a title above each, as a PNG."""
    from matplotlib.figure import Figure

    if len(images) != len(titles) or not images:
        raise ValueError(f"need one title per image and at least one image, got {len(images)} and {len(titles)}")
    figure = Figure(figsize=(panel_inches * len(images), panel_inches + 0.4), dpi=100)
    for index, (image, title) in enumerate(zip(images, titles), start=1):
        axes = figure.add_subplot(1, len(images), index)
        axes.imshow(_as_uint8_image(image), interpolation="nearest")
        axes.set_title(title, fontsize="small")
        axes.axis("off")
    return _save_figure(figure, path)
