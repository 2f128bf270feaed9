"""Attention probabilities read as pictures: per-key saliency and the attention of one query point.

Both functions take the probabilities an attention layer returns, [B, heads, Nq, Nk], with queries on an
(hq, wq) grid and keys on the 2x2-pooled (hk, wk) grid, both numbered in raster order.

Saliency (YLG's `inverse_image.py`, spec section 6): for each key, the mean attention it receives over the
queries that can see it, i.e. the sum over queries divided by the number of non-zero entries in its column.
Masked entries of YLG's sparse heads are exactly 0.0 after the softmax, so they are not counted; a key no
query attends to gets 0 (the original divides 0 by 0 there). The key-grid map is then resized (nearest) to
the grid of the features the loss weighs.

Shape comments: B batch, heads attention heads, Nq queries, Nk keys.
"""

import numpy as np
import tensorflow as tf


def _check_probabilities(probabilities, key_grid):
    if probabilities is None:
        raise ValueError("no attention probabilities: the network has no attention layer (attention='none')")
    shape = tuple(probabilities.shape)
    if len(shape) != 4:
        raise ValueError(f"attention probabilities must be [B, heads, Nq, Nk], got shape {shape}")
    key_rows, key_columns = (int(size) for size in key_grid)
    num_keys = shape[-1]
    if num_keys is not None and key_rows * key_columns != num_keys:
        raise ValueError(f"key_grid={tuple(key_grid)} has {key_rows * key_columns} cells but there are {num_keys} keys")
    return key_rows, key_columns


def key_saliency(probabilities, key_grid, output_grid=None):
    """Per-head saliency of every key. [B, heads, Nq, Nk] -> [B, heads, rows, columns] float32.

    Args:
      probabilities: attention probabilities, masked entries exactly zero.
      key_grid: (hk, wk) with hk * wk == Nk.
      output_grid: (rows, columns) to resize to with nearest neighbours (the feature grid); None keeps
        the key grid.
    """
    key_rows, key_columns = _check_probabilities(probabilities, key_grid)
    probabilities = tf.convert_to_tensor(probabilities, tf.float32)
    total = tf.reduce_sum(probabilities, axis=2)  # [B, heads, Nk]
    seen_by = tf.math.count_nonzero(probabilities, axis=2, dtype=tf.float32)  # [B, heads, Nk]
    saliency = tf.math.divide_no_nan(total, seen_by)  # [B, heads, Nk]
    batch, heads = tf.shape(saliency)[0], saliency.shape[1]
    saliency = tf.reshape(saliency, [batch, heads, key_rows, key_columns])
    if output_grid is None or tuple(int(size) for size in output_grid) == (key_rows, key_columns):
        return saliency
    rows, columns = (int(size) for size in output_grid)
    # tf.image.resize works on [N, H, W, C]: put heads on the channel axis.
    resized = tf.image.resize(
        tf.transpose(saliency, [0, 2, 3, 1]), [rows, columns], method=tf.image.ResizeMethod.NEAREST_NEIGHBOR
    )
    return tf.transpose(resized, [0, 3, 1, 2])  # [B, heads, rows, columns]


def query_index(pixel, image_size, query_grid):
    """The raster index of the query cell that covers image pixel (row, column)."""
    row, column = (int(value) for value in pixel)
    if not (0 <= row < image_size and 0 <= column < image_size):
        raise ValueError(
            f"query point {(row, column)} is outside the {image_size}x{image_size} image; "
            f"rows and columns must be in [0, {image_size - 1}]"
        )
    query_rows, query_columns = (int(size) for size in query_grid)
    return (row * query_rows // image_size) * query_columns + column * query_columns // image_size


def query_attention(probabilities, query, key_grid):
    """The attention of one query over the key grid. [B, heads, Nq, Nk] -> [B, heads, hk, wk] (NumPy)."""
    key_rows, key_columns = _check_probabilities(probabilities, key_grid)
    probabilities = np.asarray(probabilities, dtype=np.float32)
    if not 0 <= query < probabilities.shape[2]:
        raise ValueError(f"query index {query} is outside [0, {probabilities.shape[2] - 1}]")
    row = probabilities[:, :, query, :]  # [B, heads, Nk]
    return row.reshape(row.shape[0], row.shape[1], key_rows, key_columns)
