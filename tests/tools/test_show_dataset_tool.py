"""tools/show_dataset.py end to end: a row of real examples per class, the rows named, one-line errors."""

import numpy as np
from PIL import Image

from tool_runner import assert_one_line_error, run_tool
from ylg_tf.data import builtin_shapes, datasets
from ylg_tf.pictures import class_grid_picture

TOOL = "tools/show_dataset.py"


def test_draws_the_asked_for_classes_and_names_each_row(tmp_path):
    output = tmp_path / "examples.png"
    completed = run_tool(TOOL, "--labels=4,0", "--num=3", "--image_size=16", f"--output={output}", cwd=tmp_path)
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert completed.stdout.splitlines()[:2] == [
        f"row 0: class 4 {builtin_shapes.CLASS_NAMES[4]}", f"row 1: class 0 {builtin_shapes.CLASS_NAMES[0]}"]
    expected = class_grid_picture(
        datasets.examples_by_class("builtin", split="train", image_size=16, classes=[4, 0], per_class=3), 3)
    np.testing.assert_array_equal(np.asarray(Image.open(output).convert("RGB")), expected)


def test_a_label_out_of_range_is_one_line(tmp_path):
    completed = run_tool(TOOL, "--labels=3,12", f"--output={tmp_path / 'x.png'}", cwd=tmp_path)
    assert_one_line_error(completed, "--labels='3,12'", "label 12 is out of range")
    assert not (tmp_path / "x.png").exists()
