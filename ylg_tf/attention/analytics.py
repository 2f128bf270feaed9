"""What an attention layer does, in two numbers per head: how spread its attention is and how far it looks.

For attention probabilities [B, heads, Nq, Nk] (queries on an (hq, wq) grid, keys on the 2x2-pooled
(hk, wk) grid, both in raster order; each row sums to 1, masked entries of YLG's sparse heads exactly 0):

  entropy    mean over the batch and the queries of -sum_k p log p, in nats (0 log 0 = 0): log(Nk) for a head
             that attends uniformly, 0 for one that looks at a single key
  distance   mean over the batch and the queries of sum_k p * |query - key|, the Euclidean distance in pixels
             of the key grid; a query (r, c) sits at ((r + 0.5) * hk / hq - 0.5, (c + 0.5) * wk / wq - 0.5)
             there, the centre of its pixel on the key grid's scale. This is geometry, not the original's
             folded query-to-key mapping (`attention_geometry="original"`), under which a head local in the
             original's sense need not look near in pixels

Computed in float64 on the host, one head at a time (a 32x32 layer's map of a batch of 16 is 33 MB per head).
"""

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class AttentionStatistics:
    """Per head (arrays of length heads): mean entropy in nats, mean attention distance in key-grid pixels."""

    entropy: np.ndarray
    distance: np.ndarray


def _grid_positions(rows, columns, scale_rows=1.0, scale_columns=1.0):
    """[rows * columns, 2] (row, column) positions in raster order, scaled to another grid's pixels."""
    row, column = np.meshgrid(np.arange(rows), np.arange(columns), indexing="ij")
    return np.stack([(row.ravel() + 0.5) * scale_rows - 0.5, (column.ravel() + 0.5) * scale_columns - 0.5], axis=1)


def attention_statistics(probabilities, query_grid, key_grid):
    """AttentionStatistics of attention probabilities [B, heads, Nq, Nk] (NumPy or a tensor)."""
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 4:
        raise ValueError(f"attention probabilities must be [B, heads, Nq, Nk], got shape {probabilities.shape}")
    (query_rows, query_columns), (key_rows, key_columns) = query_grid, key_grid
    _, heads, num_queries, num_keys = probabilities.shape
    if (query_rows * query_columns, key_rows * key_columns) != (num_queries, num_keys):
        raise ValueError(
            f"query_grid={tuple(query_grid)} and key_grid={tuple(key_grid)} do not give the map's "
            f"{num_queries} queries and {num_keys} keys"
        )
    queries = _grid_positions(query_rows, query_columns, key_rows / query_rows, key_columns / query_columns)
    keys = _grid_positions(key_rows, key_columns)
    distances = np.sqrt(((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1))  # [Nq, Nk]
    entropy, distance = np.zeros(heads), np.zeros(heads)
    for head in range(heads):
        p = probabilities[:, head].astype(np.float64)  # [B, Nq, Nk]
        logarithm = np.log(np.where(p > 0, p, 1.0))
        entropy[head] = -(p * logarithm).sum(-1).mean()
        distance[head] = (p * distances).sum(-1).mean()
    return AttentionStatistics(entropy, distance)
