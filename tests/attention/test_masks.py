"""Tests for ylg_tf.attention.masks: the original code's fixtures, brute-force references, invariants."""

import hashlib
import itertools
import json

import numpy as np
import pytest

from conftest import ORIGINAL_FIXTURE_DIRECTORY, ORIGINAL_MASKS_DIRECTORY
from ylg_tf.attention import masks

ONE_DIMENSIONAL_FUNCTIONS = {
    "left_floor": masks.left_floor_mask,
    "right_floor": masks.right_floor_mask,
    "left_repetitive": masks.left_repetitive_mask,
    "right_repetitive": masks.right_repetitive_mask,
    "one_directional_repetitive": masks.one_directional_repetitive_mask,
    "strided_1": masks.strided_mask_1,
    "strided_2": masks.strided_mask_2,
}


def load_original_masks():
    path = ORIGINAL_MASKS_DIRECTORY / "masks_small.npz"
    assert path.is_file(), f"missing fixture {path} (set YLG_ORIGINAL_MASKS)"
    with np.load(path) as archive:
        return {key: archive[key] for key in archive.files}


def load_mask_convention():
    path = ORIGINAL_FIXTURE_DIRECTORY / "fixture.json"
    assert path.is_file(), f"missing fixture {path} (set YLG_ORIGINAL_FIXTURE)"
    with open(path) as handle:
        return json.load(handle)["mask_convention"]


# ------------------------------------------------------------------------------------------
# Loop references written from the original's definitions (spec section 3).
# ------------------------------------------------------------------------------------------
def reference_1d(name, n, stride):
    mask = np.zeros((n, n), dtype=bool)
    block_ends = [k for k in range(n) if k % stride == stride - 1]
    for query in range(n):
        if name in ("left_floor", "right_floor"):
            for key in range(query - query % stride, query + 1):
                mask[query, key] = True
        elif name in ("left_repetitive", "one_directional_repetitive"):
            mask[query, query] = True
            mask[query, block_ends] = True
        elif name == "right_repetitive":
            mask[query, query] = True
            mask[query, [end - (stride - 1) for end in block_ends]] = True
        elif name == "strided_1":
            for key in range(max(0, query - stride + 1), query + 1):
                mask[query, key] = True
        elif name == "strided_2":
            for key in range(n):
                mask[query, key] = abs(query - key) % stride == 0
    if name == "right_floor":
        mask = mask.T  # the original writes the left floor's indices as [key, query]
    if name == "one_directional_repetitive":
        mask &= np.tril(np.ones((n, n), dtype=bool))
    return mask


def brute_force_esa(rows, cols):
    cells = [(i, j) for i in range(rows) for j in range(cols)]
    return np.array(sorted(cells, key=lambda cell: (cell[0] + cell[1], cell[0])))


def brute_force_product_has_path(steps, output, input_):
    """Depth-first search of the layered information-flow graph."""
    frontier = {input_}
    for step in steps:
        frontier = {q for q in range(step.shape[0]) if any(step[q, k] for k in frontier)}
    return output in frontier


# ------------------------------------------------------------------------------------------
# Fixtures from the original code.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "key, query_grid, key_grid",
    [("grid_masks_q4x4_k2x2", (4, 4), (2, 2)), ("grid_masks_q8x8_k4x4", (8, 8), (4, 4))],
)
def test_ylg_grid_masks_match_original(key, query_grid, key_grid):
    expected = load_original_masks()[key].astype(bool)
    actual = masks.attention_masks("ylg", query_grid, key_grid)
    assert actual.dtype == bool
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(actual, expected)


@pytest.mark.parametrize("name", sorted(masks.ORIGINAL_MASK_NAMES))
def test_one_dimensional_masks_match_original(name):
    expected = load_original_masks()[f"1d_{masks.ORIGINAL_MASK_NAMES[name]}_n16"].astype(bool)
    np.testing.assert_array_equal(ONE_DIMENSIONAL_FUNCTIONS[name](16), expected)
    np.testing.assert_array_equal(masks.one_dimensional_mask(name, 16, stride=4), expected)


@pytest.mark.parametrize("rows, cols", [(8, 8), (4, 6)])
def test_esa_enumeration_matches_original(rows, cols):
    expected = load_original_masks()[f"esa_enumeration_{rows}x{cols}"]
    np.testing.assert_array_equal(masks.esa_enumeration(rows, cols), expected)


def test_production_mask_matches_original_checksum_and_key_counts():
    convention = load_mask_convention()
    actual = masks.attention_masks("ylg", (32, 32), (16, 16))
    assert list(actual.shape) == convention["shape"]
    digest = hashlib.sha256(np.ascontiguousarray(actual, dtype=np.float32).tobytes()).hexdigest()
    assert digest == convention["sha256_float32_C_order"]
    counts = masks.keys_per_query(actual)  # [heads, Nq]
    assert [int(counts.min()), int(counts.max())] == convention["row_nonzeros_min_max"]
    heads = masks.pattern_heads("ylg")
    original_names = [masks.ORIGINAL_MASK_NAMES[name][: -len("Mask")] for name in heads]
    assert original_names == convention["heads"]
    # Spec: 1-16 keys on floor heads, 16-17 on repetitive heads.
    for head, name in enumerate(heads):
        low, high = (1, 16) if "floor" in name else (16, 17)
        assert (counts[head].min(), counts[head].max()) == (low, high), name


# ------------------------------------------------------------------------------------------
# 1-D masks and enumerations against brute force.
# ------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(ONE_DIMENSIONAL_FUNCTIONS))
@pytest.mark.parametrize("n, stride", [(16, None), (10, None), (12, 5), (7, 7), (9, 1), (64, 8)])
def test_one_dimensional_masks_match_loop_reference(name, n, stride):
    effective_stride = int(np.floor(np.sqrt(n))) if stride is None else stride
    actual = ONE_DIMENSIONAL_FUNCTIONS[name](n, stride=stride)
    assert actual.dtype == bool and actual.shape == (n, n)
    np.testing.assert_array_equal(actual, reference_1d(name, n, effective_stride))


def test_right_repetitive_drops_start_of_incomplete_block():
    # n = 10, stride 3: block ends 2, 5, 8 -> starts 0, 3, 6; the lone key 9 is no summary.
    mask = masks.right_repetitive_mask(10)
    np.testing.assert_array_equal(np.flatnonzero(mask[1]), [0, 1, 3, 6])
    assert not mask[:9, 9].any()


@pytest.mark.parametrize("rows, cols", [(1, 1), (1, 5), (5, 1), (3, 7), (6, 4), (8, 8), (16, 16)])
def test_esa_enumeration_matches_brute_force_sort(rows, cols):
    np.testing.assert_array_equal(masks.esa_enumeration(rows, cols), brute_force_esa(rows, cols))


def test_raster_enumeration():
    expected = np.array([(i, j) for i in range(3) for j in range(5)])
    np.testing.assert_array_equal(masks.raster_enumeration(3, 5), expected)


def test_relabel_to_grid_follows_definition():
    rng = np.random.default_rng(0)
    rows, cols = 3, 4
    enumeration = masks.raster_enumeration(rows, cols)[rng.permutation(rows * cols)]
    mask_1d = rng.random((12, 12)) < 0.3
    relabelled = masks.relabel_to_grid(mask_1d, enumeration)
    for a, b in itertools.product(range(12), repeat=2):
        raster_a = enumeration[a, 0] * cols + enumeration[a, 1]
        raster_b = enumeration[b, 0] * cols + enumeration[b, 1]
        assert relabelled[raster_a, raster_b] == mask_1d[a, b]


def test_no_esa_uses_raster_order_directly():
    grid_masks = masks.key_grid_masks("ylg_no_esa", (4, 6))
    for head, name in enumerate(masks.pattern_heads("ylg_no_esa")):
        np.testing.assert_array_equal(grid_masks[head], masks.one_dimensional_mask(name, 24))


# ------------------------------------------------------------------------------------------
# Query geometry.
# ------------------------------------------------------------------------------------------
def test_original_geometry_folds_queries_as_spec_describes():
    rows = masks.query_key_rows((32, 32), (16, 16), "original")
    for r, c in itertools.product(range(32), repeat=2):
        key_row, key_col = 2 * (r % 8) + c // 16, c % 16
        assert rows[r * 32 + c] == key_row * 16 + key_col


@pytest.mark.parametrize(
    "query_grid, key_grid",
    [((8, 8), (4, 4)), ((6, 9), (3, 4)), ((5, 7), (5, 7)), ((4, 6), (8, 3)), ((32, 32), (16, 16))],
)
def test_aligned_geometry_matches_brute_force(query_grid, key_grid):
    (hq, wq), (hk, wk) = query_grid, key_grid
    key_masks = masks.key_grid_masks("ylg", key_grid)  # [heads, Nk, Nk]
    actual = masks.attention_masks("ylg", query_grid, key_grid, geometry="aligned")
    assert actual.shape == (8, hq * wq, hk * wk)
    rows = masks.query_key_rows(query_grid, key_grid, "aligned")
    for r in range(hq):
        for c in range(wq):
            key_cell = (r * hk // hq) * wk + (c * wk // wq)
            assert rows[r * wq + c] == key_cell
            np.testing.assert_array_equal(actual[:, r * wq + c], key_masks[:, key_cell])


def test_original_geometry_tiles_key_grid_mask():
    key_masks = masks.key_grid_masks("fixed", (4, 4))
    actual = masks.attention_masks("fixed", (8, 8), (4, 4))
    np.testing.assert_array_equal(actual, np.tile(key_masks, (1, 4, 1)))


def test_dense_pattern():
    dense = masks.attention_masks("dense", (4, 4), (2, 2), num_heads=3)
    assert dense.shape == (3, 16, 4) and dense.dtype == bool and dense.all()


# ------------------------------------------------------------------------------------------
# Information flow.
# ------------------------------------------------------------------------------------------
def one_dimensional_steps(names, n, stride=None):
    return [masks.one_dimensional_mask(name, n, stride) for name in names]


def grid_steps(pattern, names, grid):
    head_masks = masks.key_grid_masks(pattern, grid)
    heads = masks.pattern_heads(pattern)
    return [head_masks[heads.index(name)] for name in names]


LTR = ("left_floor", "left_repetitive")
RTL = ("right_floor", "right_repetitive")
FIXED = ("left_floor", "one_directional_repetitive")
STRIDED = ("strided_1", "strided_2")


@pytest.mark.parametrize("names", [LTR, RTL])
@pytest.mark.parametrize("n", [16, 64])
def test_ylg_patterns_have_full_information_in_1d(names, n):
    assert masks.has_full_information(one_dimensional_steps(names, n))
    assert masks.reachability_fraction(one_dimensional_steps(names, n)) == 1.0


@pytest.mark.parametrize("names", [LTR, RTL])
# The key grids of attention on 4x4 ... 64x64 feature maps (keys are 2x2-pooled), every place a network has.
@pytest.mark.parametrize("grid", [(2, 2), (4, 4), (8, 8), (16, 16), (32, 32)])
def test_ylg_patterns_have_full_information_on_esa_grids(names, grid):
    assert masks.has_full_information(grid_steps("ylg", names, grid))


@pytest.mark.parametrize("pattern, names", [("fixed", FIXED), ("ylg_strided", STRIDED)])
@pytest.mark.parametrize("n", [16, 64])
def test_fixed_and_strided_lack_full_information(pattern, names, n):
    assert not masks.has_full_information(one_dimensional_steps(names, n))
    side = int(np.sqrt(n))
    grid_masks = grid_steps(pattern, names, (side, side))
    assert not masks.has_full_information(grid_masks)
    assert 0.0 < masks.reachability_fraction(grid_masks) < 1.0


@pytest.mark.parametrize("names", [LTR, RTL])
@pytest.mark.parametrize("n", [16, 64])
def test_reversed_step_order_loses_full_information(names, n):
    assert not masks.has_full_information(one_dimensional_steps(names[::-1], n))


@pytest.mark.parametrize("names", [LTR, RTL])
@pytest.mark.parametrize("n, stride", [(16, 3), (16, 5), (10, None), (20, 3)])
def test_stride_not_dividing_n_loses_full_information(names, n, stride):
    assert not masks.has_full_information(one_dimensional_steps(names, n, stride))


def test_reachability_orientation_and_order():
    n = 5
    identity = np.eye(n, dtype=bool)
    gather_into_zero = identity.copy()
    gather_into_zero[0, :] = True  # output 0 reads every input
    broadcast_zero = identity.copy()
    broadcast_zero[:, 0] = True  # every output reads input 0
    assert masks.has_full_information([gather_into_zero, broadcast_zero])
    assert not masks.has_full_information([broadcast_zero, gather_into_zero])
    # Only output 0 can be reached from input 3 in the reversed order.
    reached = masks.reachability([broadcast_zero, gather_into_zero])
    np.testing.assert_array_equal(np.flatnonzero(reached[:, 3]), [0, 3])


def test_reachability_matches_path_search():
    rng = np.random.default_rng(1)
    steps = [rng.random((7, 7)) < 0.25 for _ in range(3)]
    reached = masks.reachability(steps)
    for output, input_ in itertools.product(range(7), repeat=2):
        assert reached[output, input_] == brute_force_product_has_path(steps, output, input_)
    assert masks.reachability_fraction(steps) == pytest.approx(reached.mean())


# ------------------------------------------------------------------------------------------
# Layout description for block-sparse attention.
# ------------------------------------------------------------------------------------------
def mask_from_layout(head, key_order, stride):
    """Rebuild a key-grid mask from the layout description in the module docstring alone."""
    n = key_order.size
    numbered = np.zeros((n, n), dtype=bool)
    for a in range(n):
        block_start = a - a % stride
        if head.kind == "floor" and head.direction == "left":
            keys = range(block_start, a + 1)
        elif head.kind == "floor" and head.direction == "right":
            keys = range(a, min(block_start + stride, n))
        elif head.kind == "repetitive" and head.direction == "left":
            keys = [b for b in range(n) if b % stride == stride - 1] + [a]
        elif head.kind == "repetitive" and head.direction == "right":
            keys = [b for b in range(n) if b % stride == 0 and b + stride <= n] + [a]
        elif head.kind == "one_directional_repetitive":
            keys = [b for b in range(a + 1) if b % stride == stride - 1 or b == a]
        elif head.kind == "strided_window":
            keys = range(max(0, a - stride + 1), a + 1)
        elif head.kind == "strided_periodic":
            keys = [b for b in range(n) if abs(a - b) % stride == 0]
        elif head.kind == "dense":
            keys = range(n)
        else:
            raise AssertionError(f"unexpected head {head}")
        numbered[a, list(keys)] = True
    grid_mask = np.zeros((n, n), dtype=bool)
    grid_mask[np.ix_(key_order, key_order)] = numbered
    return grid_mask


@pytest.mark.parametrize("pattern", masks.PATTERNS)
@pytest.mark.parametrize("key_grid", [(4, 4), (4, 6), (3, 5)])
def test_pattern_layout_describes_masks(pattern, key_grid):
    num_heads = 2 if pattern == "dense" else None
    layout = masks.pattern_layout(pattern, key_grid, num_heads=num_heads)
    n = key_grid[0] * key_grid[1]
    assert layout.num_keys == n
    assert layout.stride == int(np.floor(np.sqrt(n)))
    assert [head.mask_name for head in layout.heads] == masks.pattern_heads(pattern, num_heads)
    enumeration = masks.grid_enumeration(layout.enumeration, *key_grid)
    raster = enumeration[:, 0] * key_grid[1] + enumeration[:, 1]
    np.testing.assert_array_equal(layout.key_order, raster)
    assert not layout.key_order.flags.writeable
    expected = masks.key_grid_masks(pattern, key_grid, num_heads=num_heads)
    for head_index, head in enumerate(layout.heads):
        np.testing.assert_array_equal(
            mask_from_layout(head, layout.key_order, layout.stride), expected[head_index], str(head)
        )


def test_ylg_layout_heads():
    layout = masks.pattern_layout("ylg", (16, 16))
    assert layout.enumeration == "esa" and layout.stride == 16
    assert [(head.kind, head.direction) for head in layout.heads] == [
        ("floor", "right"), ("repetitive", "right"),
    ] * 2 + [("floor", "left"), ("repetitive", "left")] * 2


# ------------------------------------------------------------------------------------------
# Argument validation.
# ------------------------------------------------------------------------------------------
def test_unknown_pattern_is_rejected_with_allowed_values():
    with pytest.raises(ValueError, match=r"'ylgg'.*ylg, ylg_no_esa, ylg_strided, fixed, dense"):
        masks.attention_masks("ylgg", (4, 4), (2, 2))


def test_unknown_geometry_is_rejected_with_allowed_values():
    with pytest.raises(ValueError, match=r"'folded'.*original, aligned"):
        masks.attention_masks("ylg", (4, 4), (2, 2), geometry="folded")


@pytest.mark.parametrize(
    "bad_grid", [(0, 4), (4, -1), (4.0, 4), (True, 4), (4,), (2, 2, 2), 16, None]
)
def test_bad_grids_are_rejected(bad_grid):
    with pytest.raises(ValueError, match="query_grid must be a"):
        masks.attention_masks("ylg", bad_grid, (2, 2))
    with pytest.raises(ValueError, match="key_grid must be a"):
        masks.attention_masks("ylg", (4, 4), bad_grid)


def test_original_geometry_needs_query_count_multiple_of_key_count():
    with pytest.raises(ValueError, match=r"multiple of the key count.*'aligned'"):
        masks.attention_masks("ylg", (5, 5), (2, 2))
    # The aligned geometry accepts the same grids.
    assert masks.attention_masks("ylg", (5, 5), (2, 2), geometry="aligned").shape == (8, 25, 4)


def test_head_count_validation():
    with pytest.raises(ValueError, match="'dense' needs num_heads"):
        masks.attention_masks("dense", (4, 4), (2, 2))
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        masks.attention_masks("dense", (4, 4), (2, 2), num_heads=0)
    with pytest.raises(ValueError, match=r"'ylg' has exactly 8 heads; got num_heads=4"):
        masks.attention_masks("ylg", (4, 4), (2, 2), num_heads=4)
    assert masks.attention_masks("ylg", (4, 4), (2, 2), num_heads=8).shape == (8, 16, 4)


def test_one_dimensional_argument_validation():
    with pytest.raises(ValueError, match="stride must be a positive integer, got 0"):
        masks.left_floor_mask(16, stride=0)
    with pytest.raises(ValueError, match="n must be a positive integer, got -3"):
        masks.strided_mask_2(-3)
    with pytest.raises(ValueError, match=r"mask name 'upper_floor'.*left_floor"):
        masks.one_dimensional_mask("upper_floor", 16)
    with pytest.raises(ValueError, match="rows must be a positive integer"):
        masks.esa_enumeration(0, 3)


def test_relabel_and_reachability_validation():
    with pytest.raises(ValueError, match="exactly once"):
        masks.relabel_to_grid(np.eye(4, dtype=bool), np.array([[0, 0], [0, 1], [1, 0], [0, 1]]))
    with pytest.raises(ValueError, match=r"square \[4, 4\]"):
        masks.relabel_to_grid(np.eye(3, dtype=bool), masks.esa_enumeration(2, 2))
    with pytest.raises(ValueError, match="at least one mask"):
        masks.has_full_information([])
    with pytest.raises(ValueError, match="step 1 has shape"):
        masks.has_full_information([np.eye(3, dtype=bool), np.eye(4, dtype=bool)])
    with pytest.raises(ValueError, match="single 2-D array"):
        masks.has_full_information(np.eye(3, dtype=bool))
