"""tools/evaluate.py end to end, offline: a tiny work directory scored through a local SavedModel with the
Inception module's interface (loaded the way a real module is), the cached real statistics, and one-line
errors for bad input (a corrupt checkpoint among them)."""

import json
import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from ylg_tf.tfgan_import import tfgan
from PIL import Image

from fake_inception import write_fake_inception_savedmodel
from metric_references import reference_frechet_distance, reference_inception_score
from resize_references import legacy_bilinear_reference
from tool_runner import assert_one_line_error, run_tool
from ylg_tf.data import datasets
from ylg_tf.evaluation import class_accuracy, classifiers, protocols, sample_metrics, samples
from ylg_tf.storage import workdir
from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig
from ylg_tf.models.networks import Discriminator, Generator

TOOL = "tools/evaluate.py"
STEP = 7
NUM_SAMPLES = 16
BATCH_SIZE = 8


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("evaluate_tool")
    config = ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=4, generator_channels=32, discriminator_channels=32,
                          attention="ylg"),
        data=DataConfig(dataset="builtin"),
    )
    directory = root / "workdir"
    workdir.save_config(config, directory)
    generator = Generator(config.model).build_for_config()
    discriminator = Discriminator(config.model).build_for_config()
    workdir.write_checkpoint(directory, generator, discriminator, STEP)
    # Accepts any image size and resizes to 299 inside, like the TF-Hub module; 64 pool features keep
    # the covariance square roots fast.
    module = write_fake_inception_savedmodel(root / "inception", resize_inside=True, pool_features=64)
    environment = dict(
        CUDA_VISIBLE_DEVICES="", TFHUB_CACHE_DIR=str(root / "empty_tfhub_cache"),
        YLG_TF_CACHE_DIR=str(root / "classifier_cache"))
    return {"root": root, "workdir": directory, "config": config, "module": str(module),
            "environment": environment}


def run_evaluate(setup, *arguments):
    return run_tool(TOOL, *arguments, cwd=setup["root"], timeout=300, env=setup["environment"])


def score_arguments(setup, output):
    return [f"--workdir={setup['workdir']}", f"--inception={setup['module']}",
            f"--num_samples={NUM_SAMPLES}", f"--batch_size={BATCH_SIZE}", "--dataset=builtin",
            f"--output={output}"]


@pytest.fixture(scope="module")
def first_run(setup):
    output = setup["root"] / "first.json"
    completed = run_evaluate(setup, *score_arguments(setup, output))
    assert completed.returncode == 0, completed.stderr[-3000:]
    return completed, json.loads(output.read_text())


def test_result_json_records_scores_and_provenance(setup, first_run):
    completed, result = first_run
    assert result["num_samples"] == NUM_SAMPLES and result["step"] == STEP
    assert result["checkpoint"] == str(setup["workdir"] / "checkpoints" / f"ckpt-{STEP}")
    assert result["inception"] == setup["module"]
    assert result["classifier"]["kind"] == "inception" and result["classifier"]["resize"] == "module"
    assert result["dataset"] == "builtin" and result["split"] == "validation"  # the config's eval split
    assert result["class_accuracy"] is None  # Inception's classes are not the generator's
    assert np.isfinite(result["fid"]) and result["fid"] > 0
    assert 1.0 <= result["inception_score"] <= 1008
    for timing in ("restore_seconds", "load_classifier_seconds", "real_statistics_seconds",
                   "sampling_seconds", "metric_seconds", "total_seconds"):
        assert result["timings"][timing] >= 0
    assert not result["real_statistics"]["reused"]
    assert f"FID {result['fid']:.4f}" in completed.stdout
    assert "real-data statistics: computed and cached in" in completed.stderr
    assert "generated images: 16/16 (100%)" in completed.stderr  # progress
    # The default protocol, recorded with its parameters; 16 samples are not comparable with 50,000.
    assert result["protocol"] == protocols.STANDARD.to_dict()
    assert result["comparable"] is False
    assert result["deviations"] == ["num_samples=16 is below the standard protocol's 50000"]
    warnings = [line for line in completed.stderr.splitlines() if line.startswith("warning:")]
    assert warnings == ["warning: scores not comparable with 50,000-sample scores (the community standard): "
                        "num_samples=16 is below the standard protocol's 50000"]
    assert "protocol standard (not comparable)" in completed.stdout


def generated_and_real_images(setup, split):
    config = setup["config"]
    _, generator, _, _ = workdir.restore_networks(setup["workdir"])
    generated = np.concatenate([
        generator(samples.sample_latents(index, BATCH_SIZE, config.model.num_classes, config.model.z_dim),
                  training=False).numpy()
        for index in range(NUM_SAMPLES // BATCH_SIZE)])
    real = next(iter(datasets.make_dataset(
        "builtin", split=split, image_size=32, batch_size=NUM_SAMPLES, shuffle=False, repeat=False,
        num_examples=NUM_SAMPLES)))[0]
    return generated, real.numpy()


def test_scores_equal_an_independent_recomputation(setup, first_run):
    _, result = first_run
    generated, real = generated_and_real_images(setup, "validation")
    module = tf.saved_model.load(setup["module"])  # the module resizes 32 -> 299 itself
    generated_outputs, real_outputs = module(tf.constant(generated)), module(tf.constant(real))

    expected_fid = reference_frechet_distance(generated_outputs["pool_3"], real_outputs["pool_3"])
    expected_score = reference_inception_score(generated_outputs["logits"])
    np.testing.assert_allclose(result["fid"], expected_fid, rtol=1e-4)
    np.testing.assert_allclose(result["inception_score"], expected_score, rtol=1e-5)
    tfgan_fid = tfgan.eval.frechet_classifier_distance_from_activations(
        tf.cast(generated_outputs["pool_3"], tf.float64), tf.cast(real_outputs["pool_3"], tf.float64))
    np.testing.assert_allclose(result["fid"], float(tfgan_fid), rtol=1e-4)


def test_ylg_protocol_resizes_both_sides_with_the_legacy_kernel(setup):
    output = setup["root"] / "ylg.json"
    arguments = [argument for argument in score_arguments(setup, output) if not argument.startswith("--num")]
    completed = run_evaluate(setup, *arguments, "--protocol=ylg", f"--num_samples={NUM_SAMPLES}")
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["protocol"] == protocols.YLG.to_dict()
    assert result["protocol"]["num_samples"] == 32768 and result["protocol"]["resize"] == "legacy_bilinear_299"
    assert result["classifier"]["resize"] == "legacy_bilinear_299" and result["split"] == "validation"
    assert result["comparable"] is False
    assert [line for line in completed.stderr.splitlines() if line.startswith("warning:")] == [
        "warning: scores not comparable with the YLG paper's scores: num_samples=16 is below the ylg "
        "protocol's 32768"]

    # Independently: both sides resized to 299 by the NumPy reference of TF1's kernel, then the module.
    generated, real = generated_and_real_images(setup, "validation")
    module = tf.saved_model.load(setup["module"])
    generated_outputs = module(tf.constant(legacy_bilinear_reference(generated, 299), tf.float32))
    real_outputs = module(tf.constant(legacy_bilinear_reference(real, 299), tf.float32))
    expected_fid = reference_frechet_distance(generated_outputs["pool_3"], real_outputs["pool_3"])
    half_pixel_generated, half_pixel_real = (
        module(tf.image.resize(images, [299, 299], method="bilinear"))["pool_3"] for images in (generated, real))
    half_pixel_fid = reference_frechet_distance(half_pixel_generated, half_pixel_real)
    np.testing.assert_allclose(result["fid"], expected_fid, rtol=1e-5)
    np.testing.assert_allclose(
        result["inception_score"], reference_inception_score(generated_outputs["logits"]), rtol=1e-5)
    # Resized the TF2 way on both sides, FID differs far beyond that tolerance (here the fake module's 4x4
    # pooling hides most of the shift, yet it is about 2% of FID).
    assert abs(half_pixel_fid - result["fid"]) > 1e-3 * result["fid"]


def test_an_unknown_protocol_is_one_line_naming_it(setup):
    result = run_evaluate(setup, f"--workdir={setup['workdir']}", "--protocol=bogus")
    assert_one_line_error(result, "--protocol=bogus", "standard", "ylg")


def test_second_run_reuses_the_cached_real_statistics(setup, first_run):
    _, first = first_run
    path = first["real_statistics"]["path"]
    assert path.startswith(str(setup["workdir"] / "evaluation" / "real_statistics"))
    modified = os.path.getmtime(path)
    output = setup["root"] / "second.json"
    completed = run_evaluate(setup, *score_arguments(setup, output))
    assert completed.returncode == 0, completed.stderr[-3000:]
    second = json.loads(output.read_text())
    assert second["real_statistics"] == {"path": path, "reused": True}
    assert f"real-data statistics: reused {path}" in completed.stderr
    assert os.path.getmtime(path) == modified
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-9)
    assert second["inception_score"] == pytest.approx(first["inception_score"], rel=1e-9)


def write_tiny_folder(directory):
    if not directory.exists():
        for class_name in ("a", "b"):
            (directory / class_name).mkdir(parents=True)
            for index in range(3):
                Image.new("RGB", (8, 8), (40 * index, 200, 10)).save(directory / class_name / f"{index}.png")
    return directory


def bad_input(setup, case):
    """(arguments, text the error line must contain) for one kind of bad input."""
    workdir_flag = f"--workdir={setup['workdir']}"
    counts = [f"--num_samples={NUM_SAMPLES}", f"--batch_size={BATCH_SIZE}"]
    if case == "missing_workdir":
        return [f"--workdir={setup['root'] / 'nowhere'}"], "does not exist"
    if case == "missing_checkpoint":
        return [workdir_flag, f"--checkpoint={setup['workdir'] / 'checkpoints' / 'ckpt-999'}"], "ckpt-999"
    if case == "unreachable_module":
        return [workdir_flag, "--inception=http://127.0.0.1:9/x", "--network_timeout=5", *counts], (
            "--inception=DIR")
    if case == "corrupt_checkpoint":
        corrupt = setup["root"] / "corrupt_workdir"
        if not corrupt.exists():
            shutil.copytree(setup["workdir"], corrupt)
            data_file = corrupt / "checkpoints" / f"ckpt-{STEP}.data-00000-of-00001"
            data_file.write_bytes(data_file.read_bytes()[:1000])  # a truncated copy
        prefix = corrupt / "checkpoints" / f"ckpt-{STEP}"
        return [f"--workdir={corrupt}", *counts], f"checkpoint '{prefix}' is corrupt"
    if case == "output_through_a_file":
        (setup["root"] / "a_file").write_text("not a directory")
        return [workdir_flag, f"--output={setup['root'] / 'a_file' / 'result.json'}", *counts], "not a directory"
    if case == "fewer_samples_than_batch":
        return [workdir_flag, "--num_samples=4", "--batch_size=8"], "num_samples=4 is smaller than batch_size=8"
    assert case == "dataset_too_small"
    folder = write_tiny_folder(setup["root"] / "folder")
    return [workdir_flag, f"--inception={setup['module']}", "--dataset=folder", "--split=train",
            f"--data_dir={folder}", *counts], "has 6 images, fewer than the num_samples=16"


@pytest.mark.parametrize("case", [
    "missing_workdir", "missing_checkpoint", "corrupt_checkpoint", "unreachable_module",
    "fewer_samples_than_batch", "dataset_too_small", "output_through_a_file"])
def test_bad_input_exits_2_with_one_line(setup, case):
    arguments, expected = bad_input(setup, case)
    result = run_evaluate(setup, *arguments)
    assert_one_line_error(result, expected)
    if case == "output_through_a_file":
        assert "images:" not in result.stderr  # refused before any sampling


def test_classifier_cache_default_comes_from_the_environment(monkeypatch, tmp_path):
    # The library takes the cache directory explicitly; entry points resolve this default.
    from ylg_tf import command_line

    monkeypatch.setenv("YLG_TF_CACHE_DIR", str(tmp_path / "explicit"))
    assert command_line.default_classifier_cache_directory() == str(tmp_path / "explicit")
    monkeypatch.delenv("YLG_TF_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert command_line.default_classifier_cache_directory() == str(tmp_path / "xdg" / "ylg_tf")
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert command_line.default_classifier_cache_directory() == str(tmp_path / "home" / ".cache" / "ylg_tf")


def test_more_metrics_equal_the_sample_metrics_of_recomputed_features(setup):
    output = setup["root"] / "more.json"
    completed = run_evaluate(setup, *score_arguments(setup, output), "--metrics=kid,precision_recall,density_coverage",
                             "--per_class")
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert "real features images: 16/16 (100%)" in completed.stderr  # the second pass over the real images

    # Independently: the same images through the module, then the metrics on the full feature arrays.
    config = setup["config"]
    generated, real = generated_and_real_images(setup, "validation")
    module = tf.saved_model.load(setup["module"])
    generated_pool = module(tf.constant(generated))["pool_3"].numpy()
    real_pool = module(tf.constant(real))["pool_3"].numpy()
    generated_labels = np.concatenate([
        samples.sample_latents(index, BATCH_SIZE, config.model.num_classes, config.model.z_dim)[1].numpy()
        for index in range(NUM_SAMPLES // BATCH_SIZE)])
    real_labels = next(iter(datasets.make_dataset(
        "builtin", split="validation", image_size=32, batch_size=NUM_SAMPLES, shuffle=False, repeat=False,
        num_examples=NUM_SAMPLES)))[1].numpy()

    kid = sample_metrics.kernel_inception_distance(generated_pool, real_pool, subset_size=NUM_SAMPLES, seed=0)
    np.testing.assert_allclose(result["kid"]["mean"], kid.mean, rtol=1e-4, atol=1e-7)
    assert result["kid"]["subset_size"] == NUM_SAMPLES  # min(1000, N)
    precision_recall = sample_metrics.precision_and_recall(real_pool, generated_pool)
    density_coverage = sample_metrics.density_and_coverage(real_pool, generated_pool)
    for name, value in (*precision_recall._asdict().items(), *density_coverage._asdict().items()):
        np.testing.assert_allclose(result[name], value, atol=1e-9, err_msg=name)
    # Per-class FID for each of the generator's 4 classes with at least 2 images on both sides.
    covered = [label for label in range(config.model.num_classes)
               if min(np.sum(real_labels == label), np.sum(generated_labels == label)) >= 2]
    assert covered and sorted(result["per_class_fid"], key=int) == [str(label) for label in covered]
    assert result["per_class_fid_skipped"] == [label for label in range(4) if label not in covered]
    for label in covered:
        expected = reference_frechet_distance(real_pool[real_labels == label],
                                              generated_pool[generated_labels == label])
        np.testing.assert_allclose(result["per_class_fid"][str(label)], expected, rtol=1e-4)
    assert f"KID {result['kid']['mean']:.4f}" in completed.stdout and "precision" in completed.stdout


def test_an_unknown_metric_is_one_line_naming_it(setup):
    result = run_evaluate(setup, f"--workdir={setup['workdir']}", "--metrics=kid,bogus")
    assert_one_line_error(result, "--metrics=kid,bogus", "unknown metric 'bogus'", "precision_recall")


def test_built_in_data_scored_by_the_built_in_classifier_reports_class_accuracy(tmp_path):
    config = ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=10, generator_channels=16, discriminator_channels=16,
                          attention="none"),
        data=DataConfig(dataset="builtin", eval_split="train"),
    )
    directory = tmp_path / "workdir"
    workdir.save_config(config, directory)
    generator = Generator(config.model).build_for_config()
    workdir.write_checkpoint(directory, generator, Discriminator(config.model).build_for_config(), STEP)
    output = tmp_path / "result.json"
    completed = run_tool(TOOL, f"--workdir={directory}", "--num_samples=40", "--batch_size=20",
                         f"--output={output}", cwd=tmp_path, timeout=300, env={"CUDA_VISIBLE_DEVICES": ""})
    assert completed.returncode == 0, completed.stderr[-3000:]
    result = json.loads(output.read_text())
    assert result["classifier"]["kind"] == "builtin"  # the default for the built-in dataset
    # The same 40 evaluation latents, classified by the same cached classifier, outside the tool.
    classifier = classifiers.load_evaluation_classifier(
        "builtin", image_size=32, cache_directory=os.environ["YLG_TF_CACHE_DIR"])
    expected = class_accuracy.class_accuracy(
        samples.generator_sample_function(generator), classifier.function, num_classes=10,
        z_dim=config.model.z_dim, num_samples=40, batch_size=20)
    assert result["class_accuracy"] == expected.to_dict()
    assert f"class accuracy {expected.accuracy:.1%}" in completed.stdout
