"""Pictures: image grids and PNG/GIF files from generator outputs in [-1, 1], attention overlays
(the magma colour map at alpha 0.65 over the image, as YLG's saliency pictures), matplotlib figures
(loss curves, titled side-by-side comparisons) drawn without pyplot's global state, and the picture sets
the tools write: a generator's class grids, interpolations and query-point attention (tools/generate.py;
latents laid out by `ylg_tf.latents`), and an inversion's pictures (tools/invert.py)."""

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
    from ylg_tf.storage.files import write_bytes_atomically  # here: the rest of this module needs no TensorFlow

    return write_bytes_atomically(path, png_bytes(image))


def save_gif(frames, path, seconds_per_frame=0.1):
    """Writes uint8 [H, W, 3] frames (or [-1, 1] floats) as a looping GIF, atomically; any tf.io.gfile path."""
    from ylg_tf.storage.files import write_bytes_atomically

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

    from ylg_tf.storage.files import write_bytes_atomically

    FigureCanvasAgg(figure)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return write_bytes_atomically(path, buffer.getvalue())


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


# ----------------------------------------------------------------------------------------------
# Picture sets of the tools.

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


def write_class_grid(generator, labels, samples_per_label, seed, truncation, path, progress=None):
    """class grid PNG: one row per label, samples_per_label samples each (latents: `latents.class_grid_inputs`),
    each enlarged for display. progress(count) is called after each batch of G. Returns the path."""
    from ylg_tf import latents as latent_inputs  # here: drawing pictures from arrays needs no TensorFlow

    z_dim = generator.model_config.z_dim
    latents, labels = latent_inputs.class_grid_inputs(labels, samples_per_label, z_dim, seed, truncation)
    images = latent_inputs.generate_images(generator, latents, labels, progress=progress)
    return save_png(image_grid(enlarge_for_display(images), columns=samples_per_label), path)


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


def write_interpolations(generator, labels, num_steps, seed, truncation, png_path, gif_path, progress=None):
    """Interpolation strip (PNG) and animation (GIF): per label, G along a straight line between two latents
    (`latents.interpolation_inputs`). Returns (png_path, gif_path)."""
    from ylg_tf import latents as latent_inputs

    z_dim = generator.model_config.z_dim
    latents, repeated = latent_inputs.interpolation_inputs(labels, num_steps, z_dim, seed, truncation)
    images = enlarge_for_display(latent_inputs.generate_images(generator, latents, repeated, progress=progress))
    strip, frames = interpolation_pictures(images, len(labels), num_steps)
    return save_png(strip, png_path), save_gif(frames, gif_path, seconds_per_frame=0.15)


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


def write_query_attention(
    generator, labels, samples_per_label, seed, truncation, pixel, path, attention_resolution=None
):
    """G's attention of one image pixel over the keys, for the first sample of each class-grid row.

    pixel (row, column) of the generated image is mapped to the query grid of G's attention layer on
    `attention_resolution` maps (None: the default place's, or G's first). Returns
    (path, query index, query grid, number of heads).
    """
    from ylg_tf import latents as latent_inputs
    from ylg_tf.attention import saliency as attention_pictures

    if not generator.attention_layers:
        raise ValueError(
            "query attention needs a generator with attention; this model has "
            f"attention={generator.model_config.attention!r}, attention_block={generator.model_config.attention_block!r}"
        )
    attention_resolution = generator.attention_resolution(attention_resolution)
    layer = generator.attention_layers[attention_resolution]
    size = generator.model_config.image_size
    query_grid = layer.query_grid
    query = attention_pictures.query_index(pixel, size, query_grid)
    latents, _ = latent_inputs.class_grid_inputs(
        labels, samples_per_label, generator.model_config.z_dim, seed, truncation
    )
    latents = latents[::samples_per_label]  # the first sample of each label's row
    images, probabilities = generator(
        (latents, np.asarray(labels, np.int32)),
        training=False,
        return_attention=True,
        attention_resolution=attention_resolution,
    )
    key_grid = layer.key_grid
    maps = attention_pictures.query_attention(probabilities.numpy(), query, key_grid)  # [L, heads, hk, wk]
    pictures = enlarge_for_display(images.numpy())
    scale = pictures.shape[1] // size
    row, column = (int(value) for value in pixel)
    grid = query_attention_panels(pictures, maps, (row * scale + scale // 2, column * scale + scale // 2))
    return save_png(grid, path), query, tuple(query_grid), maps.shape[1]


def save_inversion_pictures(result, output_dir):
    """The pictures of an inversion (a `ylg_tf.inversion.invert.InversionResult`) in output_dir:
    target.png, reconstruction_<r>.png, best.png, comparison.png (target | best | restarts),
    saliency_head<h>.png and saliency_mean.png (D's saliency over the target, enlarged to at least
    SALIENCY_OVERLAY_SIZE) and loss_curve.png (every restart's own loss, the best in bold)."""
    best = result.best_index
    save_png(result.target_image, os.path.join(output_dir, "target.png"))
    for index, image in enumerate(result.images):
        save_png(image, os.path.join(output_dir, f"reconstruction_{index}.png"))
    save_png(result.images[best], os.path.join(output_dir, "best.png"))
    final = result.final_loss
    save_side_by_side(
        [result.target_image, result.images[best]] + list(result.images),
        ["target", f"best (restart {best})"] + [f"restart {i}\nloss {final[i]:.3g}" for i in range(len(final))],
        os.path.join(output_dir, "comparison.png"),
    )
    target = enlarge_for_display(result.target_image[None], SALIENCY_OVERLAY_SIZE)[0]
    for head, head_saliency in enumerate(result.saliency):
        save_png(attention_overlay(target, head_saliency), os.path.join(output_dir, f"saliency_head{head}.png"))
    save_png(attention_overlay(target, result.saliency.mean(axis=0)), os.path.join(output_dir, "saliency_mean.png"))
    save_loss_curve(
        result.loss_history,
        os.path.join(output_dir, "loss_curve.png"),
        highlight=best,
        title=f"saliency-weighted feature loss, heads {list(result.heads)}",
    )
