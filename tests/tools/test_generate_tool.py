"""tools/generate.py end to end, on a work directory as training writes it and on one imported from the
original code's fixture checkpoint (tools/import_original.py), where tools/invert.py runs too (its own tests
use a training work directory). The tools run as subprocesses, from another directory; independent runs go
side by side, two at a time.
"""

import concurrent.futures
import json
import re

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from tool_runner import run_tool
from ylg_tf import pictures
from ylg_tf.attention.analytics import attention_statistics
from ylg_tf.storage import workdir
from ylg_tf.config import get_preset
from ylg_tf.latents import interpolate_latents, standard_normal_latents
from ylg_tf.models.networks import build_networks

PADDING = 2  # image_grid's padding
CONFIG = get_preset("test")  # 32x32, YLG attention
OUT_OF_RANGE_LABEL = CONFIG.model.num_classes  # labels run from 0 to num_classes - 1


def grid_shape(rows, columns, size):
    return (rows * (size + PADDING) + PADDING, columns * (size + PADDING) + PADDING, 3)


def grid_cell(grid, row, column, size):
    top, left = PADDING + row * (size + PADDING), PADDING + column * (size + PADDING)
    return grid[top : top + size, left : left + size]


BAD_INPUTS = {
    "label out of range": (
        [f"--labels=0,{OUT_OF_RANGE_LABEL}"],
        f"label {OUT_OF_RANGE_LABEL} is out of range: the model has {OUT_OF_RANGE_LABEL} classes",
    ),
    "no label": (["--labels=,"], "names no class"),
    "point outside the image": (["--attention_at=32,0"], "outside the 32x32 image"),
    "point not a pair": (["--attention_at=5"], "must be ROW,COLUMN"),
    "negative truncation": (["--truncation=-1"], "--truncation=-1.0 must be >= 0"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory, original_checkpoint_prefix):
    root = tmp_path_factory.mktemp("generate")
    trained = root / "trained"
    tf_keras.utils.set_random_seed(0)
    generator, discriminator = build_networks(CONFIG.model)
    workdir.save_config(CONFIG, trained)
    workdir.write_checkpoint(trained, generator, discriminator, step=2)

    imported = root / "imported"
    prefix = original_checkpoint_prefix
    commands = {
        "import": ("import_original.py", [f"--checkpoint={prefix}", f"--workdir={imported}", "--attention=ylg"]),
        "trained": (
            "generate.py",
            [f"--workdir={trained}", "--labels=0,3", "--num=3", "--truncation=0.5", "--seed=4"]
            + ["--interpolate", "--interpolation_steps=4", "--attention_at=31,0"],
        ),
    }
    for case, (arguments, _) in BAD_INPUTS.items():
        commands[case] = ("generate.py", [f"--workdir={trained}", f"--output_dir={root / 'bad'}"] + arguments)
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            case: pool.submit(run_tool, f"tools/{tool}", *arguments, cwd=root)
            for case, (tool, arguments) in commands.items()
        }
        results = {case: future.result() for case, future in futures.items()}
    assert results["import"].returncode == 0, results["import"].stderr
    on_imported = {
        "imported": (
            "generate.py",
            [f"--workdir={imported}", "--labels=9", "--num=2", "--attention_at=64,100", f"--output_dir={root / 'out'}"],
        ),
        "inverted": (
            "invert.py",
            [f"--workdir={imported}", "--label=9", "--restarts=2", "--steps=2", f"--output_dir={root / 'inverted'}"],
        ),
    }
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            case: pool.submit(run_tool, f"tools/{tool}", *arguments, cwd=root)
            for case, (tool, arguments) in on_imported.items()
        }
        results.update((case, future.result()) for case, future in futures.items())
    return dict(root=root, trained=trained, generator=generator, results=results)


def test_class_grid_interpolation_and_attention_on_a_training_work_directory(runs):
    result = runs["results"]["trained"]
    assert result.returncode == 0, result.stderr
    output = runs["trained"] / "generated"
    generator = runs["generator"]

    # Class grid: one row per label, samples from seed 4 with |z| <= 0.5, each enlarged 4x to 128 pixels.
    grid = np.asarray(Image.open(output / "class_grid.png"))
    assert grid.shape == grid_shape(2, 3, 128)
    latents = standard_normal_latents(6, CONFIG.model.z_dim, [4, 0], truncation=0.5)
    assert np.abs(latents).max() <= 0.5
    expected = generator((latents, tf.constant([0, 0, 0, 3, 3, 3])), training=False).numpy()
    for index in range(6):
        row, column = divmod(index, 3)
        enlarged = pictures.upscale(pictures.to_uint8(expected[index]), 4)
        np.testing.assert_allclose(grid_cell(grid, row, column, 128), enlarged, atol=1)

    # Interpolation: a straight line between two latents per label; the GIF goes there and back.
    strip = np.asarray(Image.open(output / "interpolation.png"))
    assert strip.shape == grid_shape(2, 4, 128)
    ends = standard_normal_latents(4, CONFIG.model.z_dim, [4, 1], truncation=0.5)
    path = interpolate_latents(ends[2], ends[3], 4)  # label 3's line
    expected = generator((path, tf.constant([3] * 4)), training=False).numpy()
    for column in range(4):
        enlarged = pictures.upscale(pictures.to_uint8(expected[column]), 4)
        np.testing.assert_allclose(grid_cell(strip, 1, column, 128), enlarged, atol=1)
    with Image.open(output / "interpolation.gif") as animation:
        assert animation.n_frames == 4 + 2

    # Attention of pixel (31, 0): query (15, 0) of G's 16x16 attention grid; the image then 8 heads per label.
    assert "query 240 of the (16, 16) grid, 8 heads" in result.stdout
    # The per-head table: entropy and distance of the layer's attention over these two samples.
    _, probabilities = generator((latents[::3], tf.constant([0, 3])), training=False, return_attention=True)
    layer = generator.attention_layers[generator.attention_resolution()]
    statistics = attention_statistics(probabilities.numpy(), layer.query_grid, layer.key_grid)
    rows = [line.split() for line in result.stdout.splitlines() if re.fullmatch(r" +\d+ +[\d.]+ +[\d.]+", line)]
    assert [int(row[0]) for row in rows] == list(range(8))
    np.testing.assert_allclose([float(row[1]) for row in rows], statistics.entropy, atol=1e-3)
    np.testing.assert_allclose([float(row[2]) for row in rows], statistics.distance, atol=1e-2)
    attention = np.asarray(Image.open(output / "attention_r31_c0.png"))
    assert attention.shape == grid_shape(2, 9, 128)
    first = grid_cell(attention, 0, 0, 128)
    sample = grid_cell(grid, 0, 0, 128)  # the same latent and label as the class grid's first sample
    unmarked = np.ones((128, 128), bool)
    unmarked[100:, :30] = False  # the query marker sits at pixel (31 * 4 + 2, 0 * 4 + 2)
    np.testing.assert_allclose(first[unmarked], sample[unmarked], atol=1)
    assert np.all(first[126, :6] == (0, 255, 0))  # the marker


def test_generate_on_an_imported_original_checkpoint(runs):
    result = runs["results"]["imported"]
    assert result.returncode == 0, result.stderr
    output = runs["root"] / "out"
    assert np.asarray(Image.open(output / "class_grid.png")).shape == grid_shape(1, 2, 128)
    # 128x128: G's attention has 32x32 queries; pixel (64, 100) is query (16, 25) -> 16 * 32 + 25 = 537.
    assert "query 537 of the (32, 32) grid, 8 heads" in result.stdout
    assert np.asarray(Image.open(output / "attention_r64_c100.png")).shape == grid_shape(1, 9, 128)
    assert "at step 1234" in result.stdout


def test_invert_on_an_imported_original_checkpoint(runs):
    result = runs["results"]["inverted"]
    assert result.returncode == 0, result.stderr
    output = runs["root"] / "inverted"
    report = json.loads((output / "inversion.json").read_text())
    assert report["checkpoint_step"] == 1234 and report["label"] == 9 and report["heads"] == [0, 1, 2, 3]
    assert len(report["final_loss"]) == 2 and np.all(np.isfinite(report["final_loss"]))
    assert np.asarray(Image.open(output / "best.png")).shape == (128, 128, 3)
    # D's features at 128x128 are 32x32 with 16x16 keys; the overlay is the 128-pixel target enlarged 2x.
    assert np.asarray(Image.open(output / "saliency_head7.png")).shape == (256, 256, 3)
    assert np.load(output / "latents.npy").shape == (2, 128)


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_one_line_error_and_exit_code_2(runs, case):
    result = runs["results"][case]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert BAD_INPUTS[case][1] in lines[0], lines[0]
