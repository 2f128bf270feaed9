"""The exported SavedModel serves exactly the Keras generator's inference images, statelessly and atomically."""

import os
import pathlib
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf.storage import export
from ylg_tf.config import ModelConfig
from ylg_tf.models.networks import Generator

MODEL_CONFIG = ModelConfig(
    image_size=32, num_classes=4, generator_channels=32, discriminator_channels=64, attention="ylg"
)


def _randomized_generator(seed):
    """A built generator whose u vectors, moving statistics and attention gate are random, not initial."""
    tf_keras.utils.set_random_seed(seed)
    generator = Generator(MODEL_CONFIG).build_for_config()
    rng = np.random.default_rng(seed)
    for variable in generator.variables:
        name = variable.name
        shape = variable.shape.as_list()
        if "moving_variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "moving_mean" in name or "spectral_norm_u" in name or "beta" in name:
            value = rng.normal(0.0, 0.3 if "beta" in name else 1.0, shape)
        elif "gamma" in name:
            value = 1.0 + rng.normal(0.0, 0.1, shape)
        elif "sigma_ratio" in name:
            value = rng.uniform(0.3, 1.0, shape)
        else:
            continue
        variable.assign(value.astype(np.float32))
    return generator


def _reference_images(generator, z, labels):
    """The Keras generator's inference images, mapped to uint8 in NumPy."""
    images = generator((tf.constant(z), tf.constant(labels)), training=False).numpy()
    return np.clip(np.round((images + 1.0) * 127.5), 0, 255).astype(np.uint8)


def _inputs(batch, seed):
    rng = np.random.default_rng(seed)
    z = rng.standard_normal([batch, MODEL_CONFIG.z_dim]).astype(np.float32)
    labels = (np.arange(batch) % MODEL_CONFIG.num_classes).astype(np.int32)
    return z, labels


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    generator = _randomized_generator(seed=3)
    directory = tmp_path_factory.mktemp("export") / "export"
    written = export.export_generator(generator, MODEL_CONFIG, directory)
    return dict(generator=generator, directory=pathlib.Path(written))


def test_signature_has_the_specified_inputs_and_output(exported):
    loaded = tf.saved_model.load(str(exported["directory"]))
    assert list(loaded.signatures) == ["serving_default"]
    signature = loaded.signatures["serving_default"]
    inputs = signature.structured_input_signature[1]
    assert sorted(inputs) == ["labels", "z"]
    assert inputs["z"].dtype == tf.float32 and inputs["z"].shape.as_list() == [None, MODEL_CONFIG.z_dim]
    assert inputs["labels"].dtype == tf.int32 and inputs["labels"].shape.as_list() == [None]
    outputs = signature.structured_outputs
    assert list(outputs) == ["images"]
    assert outputs["images"].dtype == tf.uint8
    assert outputs["images"].shape.as_list() == [None, 32, 32, 3]


def test_export_serves_the_keras_generator_inference_images_exactly(exported):
    signature = tf.saved_model.load(str(exported["directory"])).signatures["serving_default"]
    for batch, seed in ((5, 0), (1, 1)):  # the batch size is not fixed by the export
        z, labels = _inputs(batch, seed)
        served = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
        expected = _reference_images(exported["generator"], z, labels)
        assert served.dtype == np.uint8 and served.shape == (batch, 32, 32, 3)
        np.testing.assert_array_equal(served, expected)
        assert len(np.unique(served)) > 50  # real images, not a constant


def test_serving_is_a_pure_function(exported):
    loaded = tf.saved_model.load(str(exported["directory"]))
    signature = loaded.signatures["serving_default"]
    before = [variable.numpy().copy() for variable in loaded.generator_variables]
    z, labels = _inputs(4, 2)
    first = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    second = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_array_equal(first, second)
    after = [variable.numpy() for variable in loaded.generator_variables]
    assert len(before) == len(exported["generator"].variables)
    for old, new in zip(before, after):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("precision", ["mixed_float16", "mixed_bfloat16"])
def test_a_mixed_precision_export_serves_float32_latents(precision, exported, tmp_path):
    import dataclasses

    config = dataclasses.replace(MODEL_CONFIG, precision=precision)
    generator = Generator(config).build_for_config()
    for source, target in zip(exported["generator"].variables, generator.variables):
        target.assign(source)
    directory = export.export_generator(generator, config, tmp_path / "export")
    signature = export.load_exported_generator(directory)
    assert signature.structured_input_signature[1]["z"].dtype == tf.float32
    z, labels = _inputs(4, 5)
    served = signature(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_array_equal(served, _reference_images(generator, z, labels))  # the mixed generator's
    float32_images = _reference_images(exported["generator"], z, labels).astype(np.int64)
    assert np.mean(np.abs(served.astype(np.int64) - float32_images)) < 3.0  # within rounding of the float32 ones


def test_load_exported_generator_returns_the_signature_and_rejects_bad_labels(exported):
    generate = export.load_exported_generator(exported["directory"])
    z, labels = _inputs(2, 4)
    images = generate(z=tf.constant(z), labels=tf.constant(labels))["images"].numpy()
    np.testing.assert_array_equal(images, _reference_images(exported["generator"], z, labels))
    for bad in ([0, MODEL_CONFIG.num_classes], [-1, 0]):
        with pytest.raises(tf.errors.InvalidArgumentError, match="labels must be"):
            generate(z=tf.constant(z), labels=tf.constant(bad, tf.int32))
    with pytest.raises(tf.errors.InvalidArgumentError, match="same batch size"):
        generate(z=tf.constant(z), labels=tf.constant([0], tf.int32))
    with pytest.raises(ValueError, match="not an exported generator"):
        export.load_exported_generator(exported["directory"].parent / "missing")


def test_saved_model_cli_reads_the_export(exported):
    script = pathlib.Path(sys.executable).with_name("saved_model_cli")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli"]
    result = subprocess.run(
        command + ["show", "--dir", str(exported["directory"]), "--all"],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    output = result.stdout
    assert "signature_def['serving_default']" in output
    assert "inputs['z']" in output and "inputs['labels']" in output and "outputs['images']" in output
    assert "DT_UINT8" in output and "(-1, 32, 32, 3)" in output and f"(-1, {MODEL_CONFIG.z_dim})" in output


def test_export_replaces_an_old_export_atomically(tmp_path, monkeypatch):
    directory = tmp_path / "export"
    first = _randomized_generator(seed=5)
    second = _randomized_generator(seed=6)
    z, labels = _inputs(3, 7)
    export.export_generator(first, MODEL_CONFIG, directory)
    with pytest.raises(export.ExportError, match="already holds an export; pass --overwrite"):
        export.export_generator(second, MODEL_CONFIG, directory)
    export.export_generator(second, MODEL_CONFIG, directory, overwrite=True)
    assert sorted(os.listdir(tmp_path)) == ["export"]  # no temporary or previous directories left behind
    served = export.load_exported_generator(directory)(z=tf.constant(z), labels=tf.constant(labels))
    expected = _reference_images(second, z, labels)
    assert not np.array_equal(expected, _reference_images(first, z, labels))
    np.testing.assert_array_equal(served["images"].numpy(), expected)

    # A save that fails half-way leaves the previous export untouched and no partial directory.
    def failing_save(module, path, signatures=None):
        pathlib.Path(path, "saved_model.pb").write_bytes(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", failing_save)
    with pytest.raises(OSError, match="disk full"):
        export.export_generator(first, MODEL_CONFIG, directory, overwrite=True)
    monkeypatch.undo()
    assert sorted(os.listdir(tmp_path)) == ["export"]
    served = export.load_exported_generator(directory)(z=tf.constant(z), labels=tf.constant(labels))
    np.testing.assert_array_equal(served["images"].numpy(), expected)


def test_export_refuses_unsafe_targets_and_stateful_generators(tmp_path):
    generator = _randomized_generator(seed=8)
    not_an_export = tmp_path / "results"
    not_an_export.mkdir()
    (not_an_export / "notes.txt").write_text("keep me")
    with pytest.raises(ValueError, match="not an export"):
        export.export_generator(generator, MODEL_CONFIG, not_an_export)
    assert (not_an_export / "notes.txt").read_text() == "keep me"

    with pytest.raises(ValueError, match="built for"):
        export.export_generator(generator, ModelConfig(image_size=32, num_classes=5), tmp_path / "other")

    # A path through a regular file is named as given (not as the temporary sibling).
    (tmp_path / "a_file").write_text("a file")
    with pytest.raises(NotADirectoryError, match=f"cannot create directory {str(tmp_path / 'a_file')!r}"):
        export.export_generator(generator, MODEL_CONFIG, tmp_path / "a_file" / "export")

    # A generator whose inference pass stores a spectral-norm u would serve different images each call.
    generator.g_snh0.u_update = "always"
    with pytest.raises(ValueError, match="writes variables"):
        export.export_generator(generator, MODEL_CONFIG, tmp_path / "stateful")
    assert not (tmp_path / "stateful").exists()
