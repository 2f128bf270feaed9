"""Block-sparse YLG local attention: only the keys each query may see are scored, O(N sqrt N) cost.

`ylg_tf.attention.layers.LocalSparseAttention` builds the full [heads, Nq, Nk] score matrix and adds -1000
to the masked logits, whose probabilities then underflow to exactly 0. Every head of the YLG patterns lets
a query see about sqrt(n) keys (n = Nk, stride s = floor(sqrt(n))), so this module scores only those, with
the same outputs and gradients.

Keys are permuted once into the pattern's enumeration order (`masks.pattern_layout`: ESA or raster) and
padded to J = ceil(n / s) blocks of s; queries are sorted by the enumeration position `a` of their mask row
(`masks.query_key_rows`, "original" folding or "aligned"), each position holding r = Nq / n queries. In that
order every head kind is a small dense attention:

* "floor" (floor heads): the queries of block j attend the s keys of block j;
* "window" (strided window): the queries of block j attend the 2s keys of blocks j - 1 and j;
* "column" (strided periodic): the queries at offset c of every block attend the keys at offset c of
  every block;
* "summary" (repetitive, one-directional repetitive, dense): every query attends a fixed list of m summary
  keys (block ends or complete-block starts, ~sqrt(n); all keys for dense) plus its own diagonal key, the
  diagonal being masked when it already is a summary key so that it counts once.

Within each of those, the keys a head's 1-D mask excludes get the same additive -1000 as the dense path, so
their probabilities are the same exact zeros. The dense [B, heads, Nq, Nk] map is built (by scattering the
sparse probabilities) only when asked for. All index tables are static NumPy constants, so the layer runs
under XLA on CPU, GPU and TPU with an unknown batch size.

Einsum letters: b batch, g heads of one group, j blocks (or block offsets for "column"), q queries of one
block, k key slots, m summary keys, d channels of one head.
"""

import dataclasses
from typing import Dict, Tuple

import numpy as np
import tensorflow as tf

from ylg_tf.attention import masks
from ylg_tf.attention.layers import MASK_LOGIT_PENALTY, LocalPatternAttention, softmax_dtype

# masks.HEAD_KINDS kind -> the block formulation computing it.
FAMILY_OF_KIND: Dict[str, str] = {
    "floor": "floor",
    "strided_window": "window",
    "strided_periodic": "column",
    "repetitive": "summary",
    "one_directional_repetitive": "summary",
    "dense": "summary",
}
FAMILIES = ("floor", "window", "column", "summary")


@dataclasses.dataclass(frozen=True, eq=False)
class HeadGroup:
    """Heads computed by one block formulation.

    `key_positions[h, a, slot]` is the enumeration position of the key that head `heads[h]` scores in `slot`
    for queries at position `a` (0 <= a < padded_keys), or -1 when the slot is masked (outside the head's
    mask, padding, or a duplicate). Slots: "floor" k -> j*s + k; "window" k -> (j-1)*s + k; "column"
    k -> k*s + a % s; "summary" k < m -> summary_positions[h, k], k = m -> a (the diagonal).
    """

    family: str
    heads: Tuple[int, ...]
    key_positions: np.ndarray  # [g, padded_keys, slots] int64
    summary_positions: np.ndarray  # [g, m] int64 ("summary" only, else [g, 0])

    @property
    def allowed(self) -> np.ndarray:
        return self.key_positions >= 0

    def logits_bias(self) -> np.ndarray:
        """0 where a slot is scored, MASK_LOGIT_PENALTY elsewhere; float32 [g, padded_keys, slots]."""
        return np.where(self.allowed, 0.0, MASK_LOGIT_PENALTY).astype(np.float32)


@dataclasses.dataclass(frozen=True, eq=False)
class BlockSparsePlan:
    """Static index tables of one pattern on one (query grid, key grid, geometry).

    `key_order[a]` is the raster index of the key at enumeration position a; `query_order[a * r + t]` is the
    raster index of the t-th query whose mask row is position a.
    """

    pattern: str
    query_grid: Tuple[int, int]
    key_grid: Tuple[int, int]
    geometry: str
    num_heads: int
    stride: int
    num_keys: int
    queries_per_key: int
    key_order: np.ndarray  # [n] int64
    query_order: np.ndarray  # [Nq] int64
    groups: Tuple[HeadGroup, ...]

    @property
    def num_queries(self) -> int:
        return int(self.query_order.size)

    @property
    def num_blocks(self) -> int:
        return -(-self.num_keys // self.stride)

    @property
    def padded_keys(self) -> int:
        return self.num_blocks * self.stride

    def dense_masks(self) -> np.ndarray:
        """The masks the plan computes, bool [heads, Nq, Nk] (for tests and visualisation; O(Nq Nk))."""
        dense = np.zeros((self.num_heads, self.num_queries, self.num_keys), dtype=bool)
        for _, _, heads, queries, keys in self.scatter_coordinates():
            dense[heads, queries, keys] = True
        return dense

    def scatter_coordinates(self):
        """Per group, one entry per scored slot: (group, source, layer head, query raster, key raster).

        `source` indexes the group's probabilities [B, g, padded_keys, r, slots] flattened per batch element
        after dropping the padded positions, i.e. as [B, g * n * r * slots]. All arrays are int64.
        """
        r = self.queries_per_key
        queries_by_position = self.query_order.reshape(self.num_keys, r)  # [n, r]
        for group in self.groups:
            positions = group.key_positions[:, : self.num_keys]  # [g, n, slots]
            allowed = np.broadcast_to(
                (positions >= 0)[:, :, None, :], (len(group.heads), self.num_keys, r, positions.shape[-1])
            )
            source = np.flatnonzero(allowed)
            head_index, position, query_index, slot = np.unravel_index(source, allowed.shape)
            heads = np.asarray(group.heads, dtype=np.int64)[head_index]
            queries = queries_by_position[position, query_index]
            keys = self.key_order[positions[head_index, position, slot]]
            yield group, source.astype(np.int64), heads, queries, keys


def _group_key_positions(family, layout_heads, stride, num_keys):
    """Key positions [g, padded_keys, slots] and summary positions [g, m] of one family's heads."""
    s, n = stride, num_keys
    num_blocks = -(-n // s)
    padded = num_blocks * s
    position = np.arange(padded)[:, None]  # [P, 1] query position a
    block_start = position - position % s
    valid_query = position < n
    tables, summaries = [], []
    for head in layout_heads:
        if family in ("floor", "window"):
            width = s if family == "floor" else 2 * s
            first = block_start if family == "floor" else block_start - s
            key = first + np.arange(width)[None, :]  # [P, w]
            if head.kind == "floor" and head.direction == "left":
                allowed = key <= position
            elif head.kind == "floor":
                allowed = key >= position
            else:  # strided window, causal: a - s < b <= a
                allowed = (key > position - s) & (key <= position)
            allowed &= (key >= 0) & (key < n)
            summary = np.zeros((0,), dtype=np.int64)
        elif family == "column":
            key = np.arange(num_blocks)[None, :] * s + position % s  # [P, J]
            allowed = key < n
            summary = np.zeros((0,), dtype=np.int64)
        else:
            if head.kind == "dense":
                summary = np.arange(n)
            elif head.direction == "left":
                summary = np.arange(n // s) * s + s - 1  # block ends (complete blocks only exist)
            else:
                summary = np.arange(n // s) * s  # starts of complete blocks
            every_summary = np.broadcast_to(summary[None, :], (padded, summary.size))
            key = np.concatenate([every_summary, position], axis=1)  # [P, m + 1]
            allowed = np.ones(key.shape, dtype=bool)
            if head.kind == "one_directional_repetitive":
                allowed[:, :-1] = summary[None, :] <= position
            diagonal_is_summary = np.isin(np.arange(padded), summary)
            allowed[:, -1] = ~diagonal_is_summary
        allowed &= valid_query
        tables.append(np.where(allowed, key, -1).astype(np.int64))
        summaries.append(summary.astype(np.int64))
    return np.stack(tables), np.stack(summaries)


def build_plan(pattern, query_grid, key_grid, geometry="original", num_heads=None) -> BlockSparsePlan:
    """The static tables of a `masks.PATTERNS` pattern for the given grids (num_heads only for "dense").

    Raises ValueError for an unknown pattern or geometry, or when key rows serve unequal numbers of queries
    (never the case for the layer's 2x2-pooled keys).
    """
    if pattern not in masks.PATTERNS:
        raise ValueError(f"pattern={pattern!r} is not one of {masks.PATTERNS}")
    if geometry not in masks.GEOMETRIES:
        raise ValueError(f"geometry={geometry!r} is not one of {masks.GEOMETRIES}")
    layout = masks.pattern_layout(pattern, key_grid, num_heads)
    n, s = layout.num_keys, layout.stride
    rows = masks.query_key_rows(query_grid, key_grid, geometry)  # [Nq] raster key row of each query
    position_of_raster = np.argsort(layout.key_order)  # inverse permutation
    query_positions = position_of_raster[rows]  # [Nq]
    counts = np.bincount(query_positions, minlength=n)
    if counts.min() != counts.max():
        raise ValueError(
            f"block-sparse attention needs every key row to serve the same number of queries; query_grid "
            f"{tuple(query_grid)} on key_grid {tuple(key_grid)} with geometry {geometry!r} gives "
            f"{counts.min()} to {counts.max()}"
        )
    query_order = np.argsort(query_positions, kind="stable").astype(np.int64)
    families = {}
    for head_index, head in enumerate(layout.heads):
        if head.kind not in FAMILY_OF_KIND:
            raise ValueError(
                f"head kind {head.kind!r} has no block formulation; known: {tuple(FAMILY_OF_KIND)}"
            )
        families.setdefault(FAMILY_OF_KIND[head.kind], []).append(head_index)
    groups = []
    for family in FAMILIES:
        if family not in families:
            continue
        heads = tuple(families[family])
        key_positions, summary_positions = _group_key_positions(
            family, [layout.heads[head] for head in heads], s, n
        )
        groups.append(HeadGroup(family, heads, key_positions, summary_positions))
    return BlockSparsePlan(
        pattern=pattern,
        query_grid=tuple(int(size) for size in query_grid),
        key_grid=layout.key_grid,
        geometry=geometry,
        num_heads=len(layout.heads),
        stride=s,
        num_keys=n,
        queries_per_key=int(counts[0]),
        key_order=np.asarray(layout.key_order, dtype=np.int64),
        query_order=query_order,
        groups=tuple(groups),
    )


def _split_permutation(group_indices):
    """x [B, T, d] -> [x[:, index] for index in group_indices], the indices together a permutation of T.

    Its gradient is one concatenation and one gather by the inverse permutation (no scatter-add, no slicing).
    """
    group_indices = [np.asarray(index, dtype=np.int32) for index in group_indices]
    inverse = np.argsort(np.concatenate(group_indices)).astype(np.int32)

    @tf.custom_gradient
    def split(tensor):
        def gradient(*upstream):
            upstream = [
                tf.zeros_like(part) if grad is None else grad for part, grad in zip(parts, upstream)
            ]
            return tf.gather(tf.concat(upstream, axis=1), inverse, axis=1)

        parts = [tf.gather(tensor, index, axis=1) for index in group_indices]
        return tuple(parts), gradient

    return split


def _merge_permutation(group_indices):
    """The adjoint of `_split_permutation`: parts [B, T_g, d] -> y [B, T, d] with y[:, index_g] = part_g."""
    group_indices = [np.asarray(index, dtype=np.int32) for index in group_indices]
    permutation = np.concatenate(group_indices)
    inverse = np.argsort(permutation).astype(np.int32)
    sizes = [index.size for index in group_indices]

    @tf.custom_gradient
    def merge(*parts):
        def gradient(upstream):
            return tuple(tf.split(tf.gather(upstream, permutation, axis=1), sizes, axis=1))

        joined = tf.concat(parts, axis=1) if len(parts) > 1 else parts[0]
        return tf.gather(joined, inverse, axis=1), gradient

    return merge


def _softmax_with_bias(logits, bias):
    """softmax(logits + bias) over the last axis, in float32 for float16/bfloat16 logits (`softmax_dtype`), for
    logits of any rank (CPU softmax kernels take <= 5)."""
    logits = tf.cast(logits, softmax_dtype(logits.dtype))
    biased = logits + tf.constant(bias, dtype=logits.dtype)
    flat = tf.reshape(biased, [-1, biased.shape[-1]])
    return tf.reshape(tf.nn.softmax(flat, axis=-1), tf.shape(biased))


class _PlanTensors:
    """The plan's constants arranged for the TF computation (built once per layer)."""

    def __init__(self, plan: BlockSparsePlan):
        self.plan = plan
        n, num_queries = plan.num_keys, plan.num_queries
        query_indices, key_indices = [], []
        for group in plan.groups:
            heads = np.asarray(group.heads, dtype=np.int64)[:, None]
            # Flattened [heads * positions] indices: the group's heads, queries sorted by position, keys
            # in enumeration order.
            query_indices.append((heads * num_queries + plan.query_order[None, :]).reshape(-1))
            key_indices.append((heads * n + plan.key_order[None, :]).reshape(-1))
        self.split_queries = _split_permutation(query_indices)
        self.split_keys = _split_permutation(key_indices)
        self.merge_outputs = _merge_permutation(query_indices)
        s, blocks = plan.stride, plan.num_blocks
        self.biases = []
        self.summary_index = []
        for group in plan.groups:
            bias = group.logits_bias()  # [g, P, slots]
            g = len(group.heads)
            if group.family in ("floor", "window"):
                bias = bias.reshape(g, blocks, s, 1, -1)  # [g, J, s, 1, w]
            elif group.family == "column":
                bias = bias.reshape(g, blocks, s, 1, blocks).transpose(0, 2, 1, 3, 4)  # [g, s, J, 1, J]
            else:
                bias = bias[:, :, None, :]  # [g, P, 1, m + 1]
            self.biases.append(np.ascontiguousarray(bias))
            # Summary keys gathered from the group's flattened [g * P] keys.
            offsets = np.arange(g)[:, None] * plan.padded_keys
            self.summary_index.append((offsets + group.summary_positions).reshape(-1).astype(np.int32))


def _previous_blocks(blocks_tensor):
    """[B, g, J, s, d] -> the same shifted by one block along J, block 0 being zeros."""
    shifted = tf.pad(blocks_tensor, [[0, 0], [0, 0], [1, 0], [0, 0], [0, 0]])
    return tf.split(shifted, [blocks_tensor.shape[2], 1], axis=2)[0]


def _attend_group(family, bias, summary_index, queries, keys, values, stride):
    """One group of heads in the sorted, padded layout.

    queries [B, g, P, r, d], keys [B, g, P, d], values [B, g, P, dv]
    -> (outputs [B, g, P, r, dv], probabilities [B, g, P, r, slots]).
    """
    batch = tf.shape(queries)[0]
    g, padded, r, depth = queries.shape[1], queries.shape[2], queries.shape[3], queries.shape[4]
    value_depth = values.shape[-1]
    s = stride
    blocks = padded // s
    if family in ("floor", "window"):
        query_blocks = tf.reshape(queries, [batch, g, blocks, s * r, depth])
        key_blocks = tf.reshape(keys, [batch, g, blocks, s, depth])
        value_blocks = tf.reshape(values, [batch, g, blocks, s, value_depth])
        if family == "window":
            key_blocks = tf.concat([_previous_blocks(key_blocks), key_blocks], axis=3)  # [B, g, J, 2s, d]
            value_blocks = tf.concat([_previous_blocks(value_blocks), value_blocks], axis=3)
        width = key_blocks.shape[3]
        logits = tf.einsum("bgjqd,bgjkd->bgjqk", query_blocks, key_blocks)  # [B, g, J, s r, w]
        logits = tf.reshape(logits, [batch, g, blocks, s, r, width])
        probabilities = _softmax_with_bias(logits, bias)
        weights = tf.cast(tf.reshape(probabilities, [batch, g, blocks, s * r, width]), values.dtype)
        outputs = tf.einsum("bgjqk,bgjkd->bgjqd", weights, value_blocks)
        outputs = tf.reshape(outputs, [batch, g, padded, r, value_depth])
        return outputs, tf.reshape(probabilities, [batch, g, padded, r, width])
    if family == "column":
        # Offset c of every block: [B, g, J, s, ...] -> [B, g, s, J, ...].
        query_columns = tf.transpose(tf.reshape(queries, [batch, g, blocks, s, r, depth]), [0, 1, 3, 2, 4, 5])
        query_columns = tf.reshape(query_columns, [batch, g, s, blocks * r, depth])
        key_columns = tf.transpose(tf.reshape(keys, [batch, g, blocks, s, depth]), [0, 1, 3, 2, 4])
        value_columns = tf.transpose(tf.reshape(values, [batch, g, blocks, s, value_depth]), [0, 1, 3, 2, 4])
        logits = tf.einsum("bgjqd,bgjkd->bgjqk", query_columns, key_columns)  # [B, g, s, J r, J]
        probabilities = _softmax_with_bias(tf.reshape(logits, [batch, g, s, blocks, r, blocks]), bias)
        weights = tf.cast(tf.reshape(probabilities, [batch, g, s, blocks * r, blocks]), values.dtype)
        outputs = tf.einsum("bgjqk,bgjkd->bgjqd", weights, value_columns)
        outputs = tf.transpose(tf.reshape(outputs, [batch, g, s, blocks, r, value_depth]), [0, 1, 3, 2, 4, 5])
        probabilities = tf.transpose(probabilities, [0, 1, 3, 2, 4, 5])  # [B, g, J, s, r, J]
        return (
            tf.reshape(outputs, [batch, g, padded, r, value_depth]),
            tf.reshape(probabilities, [batch, g, padded, r, blocks]),
        )
    # summary: m fixed keys for every query plus the diagonal.
    num_summary = summary_index.size // g
    summary_keys = tf.gather(tf.reshape(keys, [batch, g * padded, depth]), summary_index, axis=1)
    summary_keys = tf.reshape(summary_keys, [batch, g, num_summary, depth])
    summary_values = tf.gather(tf.reshape(values, [batch, g * padded, value_depth]), summary_index, axis=1)
    summary_values = tf.reshape(summary_values, [batch, g, num_summary, value_depth])
    summary_logits = tf.einsum(
        "bgqd,bgmd->bgqm", tf.reshape(queries, [batch, g, padded * r, depth]), summary_keys
    )  # [B, g, P r, m]
    summary_logits = tf.reshape(summary_logits, [batch, g, padded, r, num_summary])
    diagonal_logits = tf.reduce_sum(queries * keys[:, :, :, None, :], axis=-1, keepdims=True)  # [B,g,P,r,1]
    probabilities = _softmax_with_bias(tf.concat([summary_logits, diagonal_logits], axis=-1), bias)
    summary_probabilities, diagonal_probabilities = tf.split(
        tf.cast(probabilities, values.dtype), [num_summary, 1], axis=-1)
    summary_probabilities = tf.reshape(summary_probabilities, [batch, g, padded * r, num_summary])
    outputs = tf.einsum("bgqm,bgmd->bgqd", summary_probabilities, summary_values)
    outputs = tf.reshape(outputs, [batch, g, padded, r, value_depth])
    outputs += diagonal_probabilities * values[:, :, :, None, :]
    return outputs, probabilities


def block_sparse_attend(plan_tensors: _PlanTensors, queries, keys, values, return_probabilities=False):
    """Block-sparse `attend`: queries [B, heads, Nq, d], keys [B, heads, Nk, d], values [B, heads, Nk, dv]
    -> (outputs [B, heads, Nq, dv], probabilities).

    probabilities is None unless return_probabilities, then the dense [B, heads, Nq, Nk] map, exactly zero
    where the masks forbid.
    """
    plan = plan_tensors.plan
    batch = tf.shape(queries)[0]
    heads, n, r, num_queries = plan.num_heads, plan.num_keys, plan.queries_per_key, plan.num_queries
    padding = plan.padded_keys - n
    depth, value_depth = queries.shape[-1], values.shape[-1]
    group_queries = plan_tensors.split_queries(tf.reshape(queries, [batch, heads * num_queries, depth]))
    group_keys = plan_tensors.split_keys(tf.reshape(keys, [batch, heads * n, depth]))
    group_values = plan_tensors.split_keys(tf.reshape(values, [batch, heads * n, value_depth]))
    outputs, probabilities = [], []
    for index, group in enumerate(plan.groups):
        g = len(group.heads)
        group_query = tf.reshape(group_queries[index], [batch, g, n, r, depth])
        group_key = tf.reshape(group_keys[index], [batch, g, n, depth])
        group_value = tf.reshape(group_values[index], [batch, g, n, value_depth])
        if padding:
            group_query = tf.pad(group_query, [[0, 0], [0, 0], [0, padding], [0, 0], [0, 0]])
            group_key = tf.pad(group_key, [[0, 0], [0, 0], [0, padding], [0, 0]])
            group_value = tf.pad(group_value, [[0, 0], [0, 0], [0, padding], [0, 0]])
        group_outputs, group_probabilities = _attend_group(
            group.family,
            plan_tensors.biases[index],
            plan_tensors.summary_index[index],
            group_query,
            group_key,
            group_value,
            plan.stride,
        )
        if padding:
            group_outputs = tf.split(group_outputs, [n, padding], axis=2)[0]
        outputs.append(tf.reshape(group_outputs, [batch, g * num_queries, value_depth]))
        probabilities.append(group_probabilities)
    outputs = plan_tensors.merge_outputs(*outputs)  # [B, heads * Nq, dv]
    outputs = tf.reshape(outputs, [batch, heads, num_queries, value_depth])
    if not return_probabilities:
        return outputs, None
    return outputs, _dense_probabilities(plan, probabilities, batch)


def _dense_probabilities(plan, group_probabilities, batch):
    """Scatter each group's [B, g, P, r, slots] probabilities into the dense [B, heads, Nq, Nk] map."""
    n, num_queries = plan.num_keys, plan.num_queries
    updates, targets = [], []
    coordinates = plan.scatter_coordinates()
    for (_, source, heads, queries, keys), probabilities in zip(coordinates, group_probabilities):
        flat = tf.reshape(probabilities[:, :, :n], [batch, -1])
        updates.append(tf.gather(flat, source.astype(np.int32), axis=1))  # [B, entries]
        targets.append((heads * num_queries + queries) * n + keys)
    updates = tf.transpose(tf.concat(updates, axis=1))  # [entries, B]
    targets = np.concatenate(targets)[:, None]  # every (head, query, key) at most once
    shape = tf.stack([tf.constant(plan.num_heads * num_queries * n, tf.int64), tf.cast(batch, tf.int64)])
    dense = tf.scatter_nd(targets, updates, shape)  # [heads * Nq * Nk, B]
    return tf.reshape(tf.transpose(dense), [batch, plan.num_heads, num_queries, n])


class BlockSparseLocalAttention(LocalPatternAttention):
    """YLG's local sparse attention computed block-sparsely: the weights, outputs and gradients of
    `LocalSparseAttention`, at O(N sqrt N) cost.

    The dense attention map is built only for `call(..., return_attention=True)`; `masks` computes the
    dense boolean masks on demand (O(Nq Nk), for visualisation).
    """

    def build(self, input_shape):
        super().build(input_shape)
        self.plan = build_plan(self.pattern, self.query_grid, self.key_grid, geometry=self.geometry)
        self.check_head_count(self.plan.num_heads)
        self._plan_tensors = _PlanTensors(self.plan)

    def attend(self, queries, keys, values, return_probabilities=False):
        return block_sparse_attend(self._plan_tensors, queries, keys, values, return_probabilities)
