"""NumPy references of the two bilinear resizes evaluation can use before Inception: TF1's (no half-pixel
centres; the YLG code's resize to 299) and TF2's `tf.image.resize(..., "bilinear")` (half-pixel centres)."""

import numpy as np


def bilinear_reference(images, size, half_pixel_centers):
    """images [N, H, W, C] resized bilinearly to [N, size, size, C] in float64.

    Output index i samples the input at i * in / out (TF1, align_corners=False), or at
    (i + 0.5) * in / out - 0.5 clamped to the image (half-pixel centres, TF2), between the rows (columns)
    floor(.) and min(floor(.) + 1, in - 1).
    """
    images = np.asarray(images, np.float64)

    def sample_points(input_size):
        source = np.arange(size) * (input_size / size)
        if half_pixel_centers:
            source = np.clip(source + 0.5 * input_size / size - 0.5, 0, input_size - 1)
        lower = np.floor(source).astype(np.int64)
        return lower, np.minimum(lower + 1, input_size - 1), source - lower

    top_row, bottom_row, row_fraction = sample_points(images.shape[1])
    left_column, right_column, column_fraction = sample_points(images.shape[2])
    column_fraction = column_fraction[None, None, :, None]
    row_fraction = row_fraction[None, :, None, None]

    def along_columns(rows):  # [N, size, W, C] -> [N, size, size, C]
        return rows[:, :, left_column] * (1 - column_fraction) + rows[:, :, right_column] * column_fraction

    return (along_columns(images[:, top_row]) * (1 - row_fraction)
            + along_columns(images[:, bottom_row]) * row_fraction)


def legacy_bilinear_reference(images, size):
    """TF1 `tf.compat.v1.image.resize(images, [size, size], BILINEAR)`."""
    return bilinear_reference(images, size, half_pixel_centers=False)


def half_pixel_bilinear_reference(images, size):
    """TF2 `tf.image.resize(images, [size, size], "bilinear")`."""
    return bilinear_reference(images, size, half_pixel_centers=True)
