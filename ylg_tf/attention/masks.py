"""Sparse attention masks of Your Local GAN (YLG), built in NumPy.

This module owns the boolean attention masks and nothing else: the 1-D sparsity patterns
(floor, repetitive, strided, fixed), the enumerations of a 2-D grid (ESA and raster), the
relabelling of a 1-D pattern onto a grid, the query-to-key-row folding of the original code,
and the information-flow checks (Full Information) used to reason about the patterns.

Convention everywhere: ``mask[q, k] == True`` means query (output) ``q`` may attend to key
(input) ``k``. Grid cells are numbered in raster order, ``raster = row * cols + col``.

The masks reproduce the official code (giannisdaras/ylg, ``masks.py`` and
``ops.get_grid_masks``), including two of its quirks:

* the 1-D pattern is built on the key grid only (``n = key_rows * key_cols`` and stride
  ``s = floor(sqrt(n))``) and query ``q`` uses key row ``q mod n`` (``geometry="original"``);
  ``geometry="aligned"`` is a separately named, geometry-preserving alternative;
* RightRepetitive only keeps the start of a block whose last element exists, so when ``s``
  does not divide ``n`` the incomplete last block has no summary key.

Layout for a block-sparse implementation (see ``pattern_layout``): with keys numbered
``a = 0 .. n-1`` by the pattern's enumeration (``key_order[a]`` is the raster index of key
``a``) and query row ``a`` (see ``query_key_rows``), the heads are

* ``floor`` / left: keys ``a - a % s .. a`` (the causal part of ``a``'s block of ``s``);
* ``floor`` / right: keys ``a .. min(a - a % s + s, n) - 1``;
* ``repetitive`` / left: every block end ``b % s == s - 1`` plus the diagonal ``a``;
* ``repetitive`` / right: every block start ``b % s == 0`` whose block is complete
  (``b + s <= n``) plus the diagonal ``a``;
* ``one_directional_repetitive`` / left: left repetitive restricted to ``b <= a``;
* ``strided_window`` / left: keys ``max(0, a - s + 1) .. a``;
* ``strided_periodic`` / both: keys ``b`` with ``|a - b| % s == 0``;
* ``dense`` / both: every key.
"""

import dataclasses
import math
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

PATTERNS = ("ylg", "ylg_no_esa", "ylg_strided", "fixed", "dense")
GEOMETRIES = ("original", "aligned")
ENUMERATIONS = ("esa", "raster")

# Head order of the original YLG layer: heads 0-3 right-to-left, heads 4-7 left-to-right,
# each two-step pattern written twice.
_YLG_HEADS = (
    "right_floor",
    "right_repetitive",
    "right_floor",
    "right_repetitive",
    "left_floor",
    "left_repetitive",
    "left_floor",
    "left_repetitive",
)

# pattern -> (1-D mask name per head, key enumeration); dense has no fixed heads.
_PATTERN_DEFINITIONS: Dict[str, Tuple[Tuple[str, ...], str]] = {
    "ylg": (_YLG_HEADS, "esa"),
    "ylg_no_esa": (_YLG_HEADS, "raster"),
    "ylg_strided": (("strided_1", "strided_2") * 4, "esa"),
    "fixed": (("left_floor", "one_directional_repetitive") * 4, "esa"),
}

# 1-D mask name -> (kind, direction) for block-sparse implementations.
HEAD_KINDS: Dict[str, Tuple[str, str]] = {
    "left_floor": ("floor", "left"),
    "right_floor": ("floor", "right"),
    "left_repetitive": ("repetitive", "left"),
    "right_repetitive": ("repetitive", "right"),
    "one_directional_repetitive": ("one_directional_repetitive", "left"),
    "strided_1": ("strided_window", "left"),
    "strided_2": ("strided_periodic", "both"),
    "dense": ("dense", "both"),
}

# 1-D mask name -> class name in the original masks.py.
ORIGINAL_MASK_NAMES: Dict[str, str] = {
    "left_floor": "LeftFloorMask",
    "right_floor": "RightFloorMask",
    "left_repetitive": "LeftRepetitiveMask",
    "right_repetitive": "RightRepetitiveMask",
    "one_directional_repetitive": "OneDirectionalRepetitiveMask",
    "strided_1": "StridedMask1",
    "strided_2": "StridedMask2",
}


# --------------------------------------------------------------------------------------
# Argument validation.
# --------------------------------------------------------------------------------------
def _is_integer(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _check_positive_integer(value, name: str) -> int:
    if not _is_integer(value) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)


def _check_grid(grid, name: str) -> Tuple[int, int]:
    if (
        not isinstance(grid, (tuple, list))
        or len(grid) != 2
        or not all(_is_integer(size) and size >= 1 for size in grid)
    ):
        raise ValueError(f"{name} must be a (rows, cols) pair of positive integers, got {grid!r}.")
    return int(grid[0]), int(grid[1])


def _check_choice(value, name: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise ValueError(f"Unknown {name} {value!r}; allowed: {', '.join(allowed)}.")
    return value


def default_stride(n: int) -> int:
    """The original's default stride ``floor(sqrt(n))``."""
    n = _check_positive_integer(n, "n")
    return math.isqrt(n)


def _length_and_stride(n, stride) -> Tuple[int, int]:
    n = _check_positive_integer(n, "n")
    stride = default_stride(n) if stride is None else _check_positive_integer(stride, "stride")
    return n, stride


def _query_and_key_indices(n: int) -> Tuple[np.ndarray, np.ndarray]:
    positions = np.arange(n)
    return positions[:, None], positions[None, :]  # [n, 1] queries, [1, n] keys


# --------------------------------------------------------------------------------------
# 1-D masks, each [n, n] bool.
# --------------------------------------------------------------------------------------
def left_floor_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """LeftFloor: query ``q`` sees its own block of ``stride`` up to itself (``k <= q``)."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return (key >= query - query % stride) & (key <= query)


def right_floor_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """RightFloor: query ``q`` sees its own block of ``stride`` from itself on (``k >= q``)."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return (key // stride == query // stride) & (key >= query)


def left_repetitive_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """LeftRepetitive: every block end (``k % stride == stride - 1``) plus the diagonal."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return (key % stride == stride - 1) | (key == query)


def right_repetitive_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """RightRepetitive: every block start plus the diagonal.

    As in the original, a block start only counts when its whole block fits in ``n``
    (the original derives the starts from the block ends by subtracting ``stride - 1``).
    """
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    complete_block_start = (key % stride == 0) & (key + stride <= n)
    return complete_block_start | (key == query)


def one_directional_repetitive_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """OneDirectionalRepetitive (the "fixed" second step): LeftRepetitive with ``k <= q``."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return left_repetitive_mask(n, stride) & (key <= query)


def strided_mask_1(n: int, stride: Optional[int] = None) -> np.ndarray:
    """StridedMask1: the causal window ``q - stride < k <= q``."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return (key > query - stride) & (key <= query)


def strided_mask_2(n: int, stride: Optional[int] = None) -> np.ndarray:
    """StridedMask2: keys at a multiple of ``stride`` from ``q`` in both directions."""
    n, stride = _length_and_stride(n, stride)
    query, key = _query_and_key_indices(n)
    return np.abs(query - key) % stride == 0


def dense_mask(n: int, stride: Optional[int] = None) -> np.ndarray:
    """Every query sees every key (``stride`` is accepted for a uniform signature)."""
    n, _ = _length_and_stride(n, stride)
    return np.ones((n, n), dtype=bool)


MASK_FUNCTIONS: Dict[str, Callable[..., np.ndarray]] = {
    "left_floor": left_floor_mask,
    "right_floor": right_floor_mask,
    "left_repetitive": left_repetitive_mask,
    "right_repetitive": right_repetitive_mask,
    "one_directional_repetitive": one_directional_repetitive_mask,
    "strided_1": strided_mask_1,
    "strided_2": strided_mask_2,
    "dense": dense_mask,
}


def one_dimensional_mask(name: str, n: int, stride: Optional[int] = None) -> np.ndarray:
    """The 1-D mask called ``name`` (a key of ``MASK_FUNCTIONS``), [n, n] bool."""
    _check_choice(name, "mask name", tuple(MASK_FUNCTIONS))
    return MASK_FUNCTIONS[name](n, stride)


# --------------------------------------------------------------------------------------
# Grid enumerations and relabelling.
# --------------------------------------------------------------------------------------
def esa_enumeration(rows: int, cols: int) -> np.ndarray:
    """ESA numbering: row ``a`` of the result is the ``(i, j)`` cell numbered ``a``.

    Cells are ordered by Manhattan distance ``i + j`` from ``(0, 0)``, ties by increasing
    row ``i``. Returns int64 [rows * cols, 2].
    """
    rows = _check_positive_integer(rows, "rows")
    cols = _check_positive_integer(cols, "cols")
    row_index, col_index = np.divmod(np.arange(rows * cols), cols)
    order = np.lexsort((row_index, row_index + col_index))  # last key sorts first
    return np.stack([row_index[order], col_index[order]], axis=1).astype(np.int64)


def raster_enumeration(rows: int, cols: int) -> np.ndarray:
    """Raster numbering: row ``a`` is ``(a // cols, a % cols)``; int64 [rows * cols, 2]."""
    rows = _check_positive_integer(rows, "rows")
    cols = _check_positive_integer(cols, "cols")
    row_index, col_index = np.divmod(np.arange(rows * cols), cols)
    return np.stack([row_index, col_index], axis=1).astype(np.int64)


def grid_enumeration(name: str, rows: int, cols: int) -> np.ndarray:
    """The enumeration called ``name`` ("esa" or "raster") of a rows x cols grid."""
    _check_choice(name, "enumeration", ENUMERATIONS)
    builder = esa_enumeration if name == "esa" else raster_enumeration
    return builder(rows, cols)


def enumeration_to_raster(enumeration: np.ndarray) -> np.ndarray:
    """Raster index of each numbered cell, [n] int64, for a complete enumeration [n, 2].

    The grid size is read from the enumeration (rows = max i + 1, cols = max j + 1); the
    enumeration must visit every cell of that grid exactly once.
    """
    enumeration = np.asarray(enumeration)
    if enumeration.ndim != 2 or enumeration.shape[1] != 2 or enumeration.shape[0] == 0:
        raise ValueError(
            f"enumeration must have shape [n, 2] with n >= 1, got {enumeration.shape}."
        )
    if not np.issubdtype(enumeration.dtype, np.integer) or enumeration.min() < 0:
        raise ValueError("enumeration must hold non-negative integer (row, col) cells.")
    rows = int(enumeration[:, 0].max()) + 1
    cols = int(enumeration[:, 1].max()) + 1
    raster = enumeration[:, 0].astype(np.int64) * cols + enumeration[:, 1]
    if rows * cols != enumeration.shape[0] or np.unique(raster).size != raster.size:
        raise ValueError(
            f"enumeration must list every cell of its {rows}x{cols} grid exactly once; "
            f"got {enumeration.shape[0]} cells."
        )
    return raster


def relabel_to_grid(mask_1d: np.ndarray, enumeration: np.ndarray) -> np.ndarray:
    """Move a 1-D mask over enumeration numbers onto raster indices.

    ``result[raster(e(a)), raster(e(b))] = mask_1d[a, b]`` where ``e(a)`` is row ``a`` of
    ``enumeration``. Returns [n, n] with ``mask_1d``'s dtype.
    """
    mask_1d = np.asarray(mask_1d)
    raster = enumeration_to_raster(enumeration)  # [n]
    n = raster.size
    if mask_1d.shape != (n, n):
        raise ValueError(
            f"mask_1d must be square [{n}, {n}] to match the enumeration, got {mask_1d.shape}."
        )
    relabelled = np.empty_like(mask_1d)
    relabelled[np.ix_(raster, raster)] = mask_1d
    return relabelled


# --------------------------------------------------------------------------------------
# Patterns and grid masks.
# --------------------------------------------------------------------------------------
def _check_pattern_heads(pattern: str, num_heads) -> int:
    _check_choice(pattern, "pattern", PATTERNS)
    if pattern == "dense":
        if num_heads is None:
            raise ValueError("pattern 'dense' needs num_heads (a positive integer), got None.")
        return _check_positive_integer(num_heads, "num_heads")
    fixed_heads = len(_PATTERN_DEFINITIONS[pattern][0])
    if num_heads is not None and num_heads != fixed_heads:
        raise ValueError(
            f"pattern {pattern!r} has exactly {fixed_heads} heads; got num_heads={num_heads!r} "
            f"(pass None or {fixed_heads})."
        )
    return fixed_heads


def pattern_heads(pattern: str, num_heads: Optional[int] = None) -> List[str]:
    """1-D mask name (a key of ``MASK_FUNCTIONS``) of each head of ``pattern``."""
    head_count = _check_pattern_heads(pattern, num_heads)
    if pattern == "dense":
        return ["dense"] * head_count
    return list(_PATTERN_DEFINITIONS[pattern][0])


def pattern_enumeration(pattern: str) -> str:
    """Name of the key enumeration ("esa" or "raster") the pattern's 1-D masks run over."""
    _check_choice(pattern, "pattern", PATTERNS)
    if pattern == "dense":
        return "raster"  # any order gives the same all-True mask
    return _PATTERN_DEFINITIONS[pattern][1]


def query_key_rows(query_grid, key_grid, geometry: str = "original") -> np.ndarray:
    """Key-grid raster index whose mask row each query uses, int64 [hq * wq].

    "original": query ``q`` (raster on the query grid) uses key row ``q mod n`` with
    ``n = hk * wk``, as the original tiles the key-grid mask along queries; the query count
    must be a multiple of ``n``. "aligned": query ``(r, c)`` uses key cell
    ``(r * hk // hq, c * wk // wq)``, the key cell covering it.
    """
    query_rows, query_cols = _check_grid(query_grid, "query_grid")
    key_rows, key_cols = _check_grid(key_grid, "key_grid")
    _check_choice(geometry, "geometry", GEOMETRIES)
    num_queries = query_rows * query_cols
    num_keys = key_rows * key_cols
    if geometry == "original":
        if num_queries % num_keys != 0:
            raise ValueError(
                f"geometry 'original' needs the query count to be a multiple of the key count; "
                f"query_grid {query_grid!r} has {num_queries} cells, key_grid {key_grid!r} has "
                f"{num_keys}. Use geometry='aligned' for other grids."
            )
        return np.arange(num_queries, dtype=np.int64) % num_keys
    row_index, col_index = np.divmod(np.arange(num_queries, dtype=np.int64), query_cols)
    return (row_index * key_rows // query_rows) * key_cols + col_index * key_cols // query_cols


def key_grid_masks(pattern: str, key_grid, num_heads: Optional[int] = None) -> np.ndarray:
    """Square per-head masks over the key grid, [heads, n, n] bool in raster indices."""
    key_rows, key_cols = _check_grid(key_grid, "key_grid")
    heads = pattern_heads(pattern, num_heads)
    num_keys = key_rows * key_cols
    enumeration = grid_enumeration(pattern_enumeration(pattern), key_rows, key_cols)
    per_name = {
        name: relabel_to_grid(one_dimensional_mask(name, num_keys), enumeration)
        for name in set(heads)
    }
    return np.stack([per_name[name] for name in heads])  # [heads, n, n]


def attention_masks(
    pattern: str,
    query_grid,
    key_grid,
    geometry: str = "original",
    num_heads: Optional[int] = None,
) -> np.ndarray:
    """Per-head attention masks, bool [heads, hq * wq, hk * wk].

    ``mask[h, q, k]`` is True when query ``q`` (raster on ``query_grid``) may attend key
    ``k`` (raster on ``key_grid``) in head ``h``. Patterns: "ylg" (the original YLG heads
    over the ESA enumeration), "ylg_no_esa" (same over raster order), "ylg_strided",
    "fixed" and "dense" (``num_heads`` required). See ``query_key_rows`` for ``geometry``.
    """
    _check_choice(pattern, "pattern", PATTERNS)
    _check_choice(geometry, "geometry", GEOMETRIES)
    _check_pattern_heads(pattern, num_heads)
    rows = query_key_rows(query_grid, key_grid, geometry)  # [Nq]
    return key_grid_masks(pattern, key_grid, num_heads)[:, rows, :]  # [heads, Nq, Nk]


@dataclasses.dataclass(frozen=True)
class HeadLayout:
    """One head: its 1-D mask name, kind and direction (see the module docstring)."""

    mask_name: str
    kind: str  # floor | repetitive | one_directional_repetitive | strided_* | dense
    direction: str  # left | right | both


@dataclasses.dataclass(frozen=True, eq=False)
class PatternLayout:
    """What a block-sparse attention needs to know about a pattern on a key grid.

    ``key_order[a]`` is the raster index of the key numbered ``a`` by ``enumeration``; the
    1-D masks act on those numbers with block size ``stride`` over ``num_keys`` keys.
    """

    pattern: str
    key_grid: Tuple[int, int]
    enumeration: str
    key_order: np.ndarray  # [n] int64, read-only
    stride: int
    heads: Tuple[HeadLayout, ...]

    @property
    def num_keys(self) -> int:
        return int(self.key_order.size)


def pattern_layout(pattern: str, key_grid, num_heads: Optional[int] = None) -> PatternLayout:
    """Structural description of ``pattern`` on ``key_grid`` (for block-sparse attention)."""
    key_rows, key_cols = _check_grid(key_grid, "key_grid")
    heads = pattern_heads(pattern, num_heads)
    enumeration_name = pattern_enumeration(pattern)
    key_order = enumeration_to_raster(grid_enumeration(enumeration_name, key_rows, key_cols))
    key_order.setflags(write=False)
    return PatternLayout(
        pattern=pattern,
        key_grid=(key_rows, key_cols),
        enumeration=enumeration_name,
        key_order=key_order,
        stride=default_stride(key_rows * key_cols),
        heads=tuple(HeadLayout(name, *HEAD_KINDS[name]) for name in heads),
    )


# --------------------------------------------------------------------------------------
# Information flow.
# --------------------------------------------------------------------------------------
def reachability(steps: Sequence[np.ndarray]) -> np.ndarray:
    """Boolean product ``M_p ... M_1`` of masks applied in order, [n, n] bool.

    Step ``t`` lets its output ``q`` read its input ``k`` when ``M_t[q, k]``, so after all
    steps output ``q`` depends on input ``k`` exactly when the product's ``[q, k]`` is True.
    """
    if isinstance(steps, np.ndarray) and steps.ndim == 2:
        raise ValueError("steps must be a sequence of masks, got a single 2-D array.")
    steps = [np.asarray(step) for step in steps]
    if not steps:
        raise ValueError("steps must hold at least one mask, got none.")
    if steps[0].ndim != 2:
        raise ValueError(f"steps must be 2-D square masks; step 0 has shape {steps[0].shape}.")
    n = steps[0].shape[0]
    for index, step in enumerate(steps):
        if step.shape != (n, n):
            raise ValueError(
                f"every step must be a square [{n}, {n}] mask like step 0; "
                f"step {index} has shape {step.shape}."
            )
    reached = steps[0] != 0
    for step in steps[1:]:
        # Counts of paths stay <= n, far below int64 overflow.
        reached = ((step != 0).astype(np.int64) @ reached.astype(np.int64)) > 0
    return reached


def has_full_information(steps: Sequence[np.ndarray]) -> bool:
    """True when every output of the chained steps is reachable from every input."""
    return bool(reachability(steps).all())


def reachability_fraction(steps: Sequence[np.ndarray]) -> float:
    """Fraction of (output, input) pairs connected by the chained steps, in [0, 1]."""
    return float(reachability(steps).mean())


def keys_per_query(masks: np.ndarray) -> np.ndarray:
    """Number of keys each query may attend, ``masks.sum(-1)`` as int64."""
    return np.asarray(masks).astype(bool).sum(axis=-1, dtype=np.int64)
