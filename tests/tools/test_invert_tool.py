"""tools/invert.py end to end on a tiny work directory (ylg_tf.data.image_io, which reads its --image:
tests/data/test_image_io.py).

The tool runs as a subprocess (as a user would), from another directory.
"""

import concurrent.futures
import json

import numpy as np
import pytest
import tensorflow as tf
import tf_keras
from PIL import Image

from image_files import write_bad_inputs
from tool_runner import run_tool
from ylg_tf import pictures
from ylg_tf.storage import workdir
from ylg_tf.config import get_preset
from ylg_tf.models.networks import build_networks

CONFIG = get_preset("test")  # as training writes it: 32x32, YLG attention
OUT_OF_RANGE_LABEL = CONFIG.model.num_classes  # labels run from 0 to num_classes - 1
PICTURES = ["target.png", "best.png", "comparison.png", "saliency_mean.png", "loss_curve.png"]
LABEL = 3


# Bad input -> (arguments, fragment of the one-line error).
BAD_INPUTS = {
    "missing file": (["--image={inputs}/missing.png", "--label=0"], "does not exist"),
    "zero-byte file": (["--image={inputs}/empty.png", "--label=0"], "is empty (0 bytes)"),
    "corrupt image": (["--image={inputs}/truncated.png", "--label=0"], "corrupt or truncated"),
    "non-image file": (["--image={inputs}/notes.txt", "--label=0"], "is not an image file"),
    "label out of range": (
        ["--image={inputs}/good.png", f"--label={OUT_OF_RANGE_LABEL}"],
        f"label {OUT_OF_RANGE_LABEL} is out of range: the model has {OUT_OF_RANGE_LABEL} classes",
    ),
    "self-inversion label out of range": ([f"--label={OUT_OF_RANGE_LABEL}"], f"label {OUT_OF_RANGE_LABEL} is out"),
    "label missing": (["--image={inputs}/good.png"], "--label is required"),
    "heads out of range": (["--heads=0,8", "--steps=1"], "heads [8] are out of range"),
    "output through a file": (["--label=0", "--output_dir={inputs}/good.png/run"], "not a directory"),
}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """Every tool run of this module. They are independent, so they run side by side, two at a time."""
    root = tmp_path_factory.mktemp("invert")
    directory = root / "workdir"
    tf_keras.utils.set_random_seed(0)
    generator, discriminator = build_networks(CONFIG.model)
    workdir.save_config(CONFIG, directory)
    workdir.write_checkpoint(directory, generator, discriminator, step=2)

    inputs = root / "inputs"
    inputs.mkdir()
    latent = tf.random.stateless_normal([1, CONFIG.model.z_dim], seed=[0, 1])
    sample = generator((latent, tf.constant([LABEL])), training=False)
    (inputs / "sample.png").write_bytes(pictures.png_bytes(sample.numpy()[0]))
    ramp = np.tile(np.linspace(0, 255, 45).astype(np.uint8), (30, 1))  # 30 high, 45 wide, dark to light
    Image.fromarray(ramp, mode="L").save(inputs / "gray picture.jpg", quality=95)
    write_bad_inputs(inputs)

    common = [f"--workdir={directory}"]
    commands = {
        "self": common + ["--label=3", "--restarts=2", "--steps=3", f"--output_dir={root / 'self'}"],
        "png": common
        + [f"--image={inputs / 'sample.png'}", f"--label={LABEL}", "--restarts=3", "--steps=4", "--heads=0,1,2,3"]
        + [f"--output_dir={root / 'png'}"],
        # No --output_dir: the default, <workdir>/inversion/<image name>.
        "jpeg": common
        + [f"--image={inputs / 'gray picture.jpg'}", "--label=0", "--restarts=2", "--steps=2"]
        + ["--per_restart_objective"],
    }
    for case, (arguments, _) in BAD_INPUTS.items():
        commands[case] = common + [f"--output_dir={root / 'bad'}"] + [a.format(inputs=inputs) for a in arguments]
    with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
        futures = {
            name: pool.submit(run_tool, "tools/invert.py", *arguments, cwd=root) for name, arguments in commands.items()
        }
        results = {name: future.result() for name, future in futures.items()}
    return dict(root=root, workdir=directory, inputs=inputs, results=results)


def check_outputs(output_dir, restarts, steps):
    for name in PICTURES + [f"reconstruction_{i}.png" for i in range(restarts)]:
        assert (output_dir / name).is_file(), name
    for head in range(8):  # every head of D's YLG attention
        picture = np.asarray(Image.open(output_dir / f"saliency_head{head}.png"))
        assert picture.shape == (256, 256, 3)  # 32x32 target enlarged for the overlay
    assert np.asarray(Image.open(output_dir / "best.png")).shape == (32, 32, 3)
    latents = np.load(output_dir / "latents.npy")
    assert latents.shape == (restarts, CONFIG.model.z_dim)
    report = json.loads((output_dir / "inversion.json").read_text())
    assert report["restarts"] == restarts and report["steps"] == steps
    assert report["heads"] == [0, 1, 2, 3]
    assert len(report["initial_loss"]) == len(report["final_loss"]) == restarts
    best = report["best"]["restart"]
    assert best == int(np.argmin(report["final_loss"]))
    assert report["best"]["final_loss"] == report["final_loss"][best]
    assert report["best"]["initial_loss"] == report["initial_loss"][best]
    assert np.all(np.isfinite(report["final_loss"]))
    # best.png is the best restart's reconstruction.
    np.testing.assert_array_equal(
        np.asarray(Image.open(output_dir / "best.png")),
        np.asarray(Image.open(output_dir / f"reconstruction_{best}.png")),
    )
    return report


def test_self_inversion_reports_the_distance_to_the_true_latent(runs):
    result = runs["results"]["self"]
    assert result.returncode == 0, result.stderr
    report = check_outputs(runs["root"] / "self", restarts=2, steps=3)
    assert report["image"] is None and report["label"] == 3 and report["checkpoint_step"] == 2
    assert report["per_restart_objective"] is False  # the original's objective by default
    distances = report["self_inversion"]
    assert len(distances["initial_latent_distance"]) == len(distances["final_latent_distance"]) == 2
    best = report["best"]["restart"]
    assert distances["best_final_latent_distance"] == distances["final_latent_distance"][best]
    assert "distance to the true latent" in result.stdout


def test_inversion_of_a_generated_png(runs):
    result = runs["results"]["png"]
    assert result.returncode == 0, result.stderr
    output_dir = runs["root"] / "png"
    report = check_outputs(output_dir, restarts=3, steps=4)
    assert report["image"] == str(runs["inputs"] / "sample.png") and report["label"] == LABEL
    assert "self_inversion" not in report
    # A PNG at the model's size goes in unchanged: the target is the sample itself.
    np.testing.assert_array_equal(
        np.asarray(Image.open(output_dir / "target.png")), np.asarray(Image.open(runs["inputs"] / "sample.png"))
    )


def test_inversion_of_a_grayscale_jpeg_of_another_size_with_the_per_restart_objective_and_default_directory(runs):
    result = runs["results"]["jpeg"]
    assert result.returncode == 0, result.stderr
    output_dir = runs["workdir"] / "inversion" / "gray picture"
    report = check_outputs(output_dir, restarts=2, steps=2)
    assert report["label"] == 0 and report["per_restart_objective"] is True
    target = np.asarray(Image.open(output_dir / "target.png"))
    assert target.shape == (32, 32, 3)
    np.testing.assert_array_equal(target[..., 0], target[..., 1])  # gray stays gray
    # The whole 45x30 left-to-right ramp, squeezed to 32x32 as the original does, still darkens to the left.
    assert target[16, 0, 0] < target[16, 31, 0]


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
def test_bad_input_gives_a_one_line_error_and_exit_code_2(runs, case):
    result = runs["results"][case]
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 2, result.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    assert BAD_INPUTS[case][1] in lines[0], lines[0]
    if case == "output through a file":
        assert "inverting" not in result.stdout  # refused before the inversion started
