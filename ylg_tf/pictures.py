"""Pictures drawn from arrays: image grids of generator outputs in [-1, 1], PNG and GIF encodings, attention
overlays (the magma colour map at alpha 0.65 over the image, as YLG's saliency pictures), matplotlib figures
(loss curves, titled side-by-side comparisons) drawn without pyplot's global state, and the layouts of the
tools' pictures: class grids, interpolations and query-point attention (tools/generate.py), and an
inversion's pictures (tools/invert.py).

This module only draws: it runs no model and opens no file. Encoded pictures are bytes, which the callers
write (`ylg_tf.storage.files.write_bytes_atomically`, any tf.io.gfile path).
"""

import io

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


def gif_bytes(frames, seconds_per_frame=0.1):
    """Looping GIF encoding of uint8 [H, W, 3] frames (or [-1, 1] floats)."""
    frames = [np.asarray(frame) for frame in frames]
    if not frames:
        raise ValueError("a GIF needs at least one frame, got none")
    pictures = [Image.fromarray(frame if frame.dtype == np.uint8 else to_uint8(frame)) for frame in frames]
    buffer = io.BytesIO()
    pictures[0].save(
        buffer, format="GIF", save_all=True, append_images=pictures[1:], duration=int(seconds_per_frame * 1000),
        loop=0,
    )
    return buffer.getvalue()


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


def _figure_png(figure):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def loss_curve_png(losses, highlight=None, title="loss", ylabel="loss"):
    """PNG of losses [steps, series] (one line per series, log scale); `highlight` is drawn bold."""
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
    return _figure_png(figure)


def side_by_side_png(images, titles, panel_inches=2.0):
    """PNG of one row of images ([-1, 1] floats or uint8 [H, W, 3]) with a title above each."""
    from matplotlib.figure import Figure

    if len(images) != len(titles) or not images:
        raise ValueError(f"need one title per image and at least one image, got {len(images)} and {len(titles)}")
    figure = Figure(figsize=(panel_inches * len(images), panel_inches + 0.4), dpi=100)
    for index, (image, title) in enumerate(zip(images, titles), start=1):
        axes = figure.add_subplot(1, len(images), index)
        axes.imshow(_as_uint8_image(image), interpolation="nearest")
        axes.set_title(title, fontsize="small")
        axes.axis("off")
    return _figure_png(figure)


# ----------------------------------------------------------------------------------------------
# Layouts of the tools' pictures.

DISPLAY_SIZE = 128  # generated images are enlarged (nearest) to at least this size
SALIENCY_OVERLAY_SIZE = 256  # saliency overlays are drawn at least this large so small models stay readable


def enlargement_factor(size, minimum_size):
    """The smallest integer factor that brings `size` pixels to at least `minimum_size` (at least 1)."""
    return max(1, -(-int(minimum_size) // int(size)))


def enlarge_for_display(images, minimum_size=DISPLAY_SIZE):
    """[N, S, S, 3] in [-1, 1] (or uint8) -> uint8, each image enlarged (nearest) to at least minimum_size."""
    images = np.asarray(images)
    if images.ndim != 4:
        raise ValueError(f"images must be [N, S, S, 3], got shape {images.shape}")
    images = images if images.dtype == np.uint8 else to_uint8(images)
    factor = enlargement_factor(images.shape[1], minimum_size)
    return np.stack([upscale(image, factor) for image in images]) if len(images) else images


def class_grid_picture(images, samples_per_label):
    """Images [L * n, S, S, 3] (label after label, `ylg_tf.latents.class_grid_inputs`) -> one uint8 grid
    with a row per label, each image enlarged for display."""
    return image_grid(enlarge_for_display(images), columns=samples_per_label)


def interpolation_pictures(images, num_labels, num_steps):
    """Display images [L * steps, H, W, 3] (label after label) -> (strip: one row per label, GIF frames:
    one grid of the labels per step, there and back again so the loop has no jump)."""
    images = np.asarray(images)
    if len(images) != num_labels * num_steps:
        raise ValueError(f"need {num_labels} x {num_steps} images, got {len(images)}")
    strip = image_grid(images, columns=num_steps)
    by_label = images.reshape((num_labels, num_steps) + images.shape[1:])  # [L, steps, H, W, 3]
    frames = [image_grid(by_label[:, step], columns=num_labels) for step in range(num_steps)]
    return strip, frames + frames[-2:0:-1]


def query_attention_panels(pictures, maps, marked_pixel):
    """One row per picture: the picture, then each head's map [hk, wk] over it, with marked_pixel crossed.

    pictures: uint8 [L, H, W, 3]; maps: [L, heads, hk, wk]; marked_pixel: (row, column) in the pictures.
    """
    row, column = marked_pixel
    panels = []
    for picture, picture_maps in zip(pictures, maps):
        panels.append(mark_point(picture, row, column))
        for head_map in picture_maps:
            panels.append(mark_point(attention_overlay(picture, head_map), row, column))
    return image_grid(np.stack(panels), columns=1 + maps.shape[1])


def query_attention_picture(images, maps, pixel):
    """G's attention of one image pixel over the keys: images [L, S, S, 3] in [-1, 1] and their maps
    [L, heads, hk, wk] (`ylg_tf.attention.saliency.query_attention`) -> one uint8 grid, a row per image:
    the image enlarged for display, then each head's map over it, with `pixel` (row, column) crossed."""
    pictures = enlarge_for_display(images)
    scale = pictures.shape[1] // np.asarray(images).shape[1]
    row, column = (int(value) for value in pixel)
    return query_attention_panels(pictures, maps, (row * scale + scale // 2, column * scale + scale // 2))


def inversion_pictures(result):
    """The pictures of an inversion (a `ylg_tf.inversion.invert.InversionResult`), PNG bytes by name:
    target, reconstruction_<r>, best, comparison (target | best | restarts), saliency_head<h> and
    saliency_mean (D's saliency over the target, enlarged to at least SALIENCY_OVERLAY_SIZE) and loss_curve
    (every restart's own loss, the best in bold)."""
    best = result.best_index
    encoded = {"target": png_bytes(result.target_image)}
    for index, image in enumerate(result.images):
        encoded[f"reconstruction_{index}"] = png_bytes(image)
    encoded["best"] = png_bytes(result.images[best])
    final = result.final_loss
    encoded["comparison"] = side_by_side_png(
        [result.target_image, result.images[best]] + list(result.images),
        ["target", f"best (restart {best})"] + [f"restart {i}\nloss {final[i]:.3g}" for i in range(len(final))],
    )
    target = enlarge_for_display(result.target_image[None], SALIENCY_OVERLAY_SIZE)[0]
    for head, head_saliency in enumerate(result.saliency):
        encoded[f"saliency_head{head}"] = png_bytes(attention_overlay(target, head_saliency))
    encoded["saliency_mean"] = png_bytes(attention_overlay(target, result.saliency.mean(axis=0)))
    encoded["loss_curve"] = loss_curve_png(
        result.loss_history, highlight=best, title=f"saliency-weighted feature loss, heads {list(result.heads)}"
    )
    return encoded
