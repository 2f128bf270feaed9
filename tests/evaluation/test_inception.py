"""Loading the Inception classifier: local SavedModel, pre-filled TF-Hub cache, fast failures."""

import shutil
import socket
import time

import numpy as np
import pytest
import tensorflow as tf
from ylg_tf.tfgan_import import TFGAN_WAS_SHIMMED, tfgan
import tensorflow_hub as hub

from fake_inception import write_fake_inception_savedmodel
from ylg_tf.evaluation import inception


@pytest.fixture(scope="module")
def fake_module_directory(tmp_path_factory):
    return write_fake_inception_savedmodel(tmp_path_factory.mktemp("fake_inception") / "module")


@pytest.fixture
def empty_hub_cache(tmp_path, monkeypatch):
    cache = tmp_path / "tfhub_cache"
    monkeypatch.setenv("TFHUB_CACHE_DIR", str(cache))
    return cache


@pytest.fixture
def closed_port_url():
    # A port nothing listens on: connections are refused at once, no network involved.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}/tensorflow/tfgan/eval/inception/1"


def random_images(seed, count, size):
    generator = np.random.default_rng(seed)
    return generator.uniform(-1.0, 1.0, size=[count, size, size, 3]).astype(np.float32)


def assert_how_to_message(error):
    # An OSError: entry points print it as a one-line user error (exit code 2), not a traceback.
    assert isinstance(error, OSError)
    message = str(error)
    assert "\n" not in message
    assert "?tf-hub-format=compressed" in message
    assert "--inception=DIR" in message
    assert "TFHUB_CACHE_DIR" in message


@pytest.mark.filterwarnings("ignore:`tf.layers.flatten` is deprecated")  # inside TF-GAN
def test_local_directory_matches_module_on_bilinear_resized_images(fake_module_directory):
    classifier = inception.load_classifier(str(fake_module_directory))
    images = random_images(seed=0, count=3, size=16)
    outputs = classifier(images)
    assert outputs["logits"].shape == (3, 1008) and outputs["logits"].dtype == tf.float32
    assert outputs["pool_3"].shape == (3, 2048) and outputs["pool_3"].dtype == tf.float32

    module = tf.saved_model.load(str(fake_module_directory))
    resized = tf.image.resize(images, [299, 299], method="bilinear")
    expected = module(resized)
    for field in ("logits", "pool_3"):
        np.testing.assert_allclose(outputs[field], expected[field], rtol=1e-6, atol=1e-6)
    if not TFGAN_WAS_SHIMMED:
        # TF-GAN's own classifier function on the same directory, as `run_inception` would call it (it
        # flattens through tf.compat.v1.layers, which TF >= 2.16 maps to Keras 3, where it raises).
        tfgan_outputs = tfgan.eval.classifier_fn_from_tfhub(str(fake_module_directory), None)(resized)
        for field in ("logits", "pool_3"):
            np.testing.assert_allclose(outputs[field], tfgan_outputs[field], rtol=1e-6, atol=1e-6)

    # The outputs depend on the image and on how it was resized.
    assert not np.allclose(outputs["logits"][0], outputs["logits"][1], atol=1e-3)
    nearest = module(tf.image.resize(images, [299, 299], method="nearest"))
    assert not np.allclose(outputs["pool_3"], nearest["pool_3"], atol=1e-4)


def test_images_already_299_pass_through_unchanged(fake_module_directory):
    classifier = inception.load_classifier(str(fake_module_directory))
    images = random_images(seed=1, count=2, size=299)
    expected = tf.saved_model.load(str(fake_module_directory))(images)
    np.testing.assert_allclose(
        classifier(images)["logits"], expected["logits"], rtol=1e-6, atol=1e-6)


def test_legacy_interpolation_resizes_with_tf1s_kernel(fake_module_directory):
    from test_resizing import legacy_bilinear_reference

    classifier = inception.load_classifier(str(fake_module_directory), interpolation="legacy_bilinear")
    images = random_images(seed=5, count=2, size=16)
    module = tf.saved_model.load(str(fake_module_directory))
    expected = module(tf.constant(legacy_bilinear_reference(images, 299), tf.float32))
    np.testing.assert_allclose(classifier(images)["pool_3"], expected["pool_3"], rtol=1e-4, atol=1e-4)
    half_pixel = module(tf.image.resize(images, [299, 299], method="bilinear"))
    assert not np.allclose(classifier(images)["pool_3"], half_pixel["pool_3"], atol=1e-3)


def test_image_size_none_leaves_resizing_to_the_module(tmp_path):
    directory = write_fake_inception_savedmodel(tmp_path / "module32", image_size=32, seed=3)
    images = random_images(seed=2, count=2, size=32)
    classifier = inception.load_classifier(str(directory), image_size=None)
    expected = tf.saved_model.load(str(directory))(images)
    np.testing.assert_allclose(classifier(images)["pool_3"], expected["pool_3"], rtol=1e-6)
    # This module takes only 32x32: other sizes fail loudly instead of giving empty features.
    with pytest.raises(ValueError):
        classifier(random_images(seed=2, count=2, size=16))
    # With image_size=32 the same module takes any size.
    resized_classifier = inception.load_classifier(str(directory), image_size=32)
    assert resized_classifier(random_images(seed=2, count=2, size=16))["logits"].shape == (2, 1008)


def test_prefilled_hub_cache_resolves_url_without_network(
        fake_module_directory, empty_hub_cache, closed_port_url):
    cached = inception.hub_cache_directory(closed_port_url)
    assert cached.startswith(str(empty_hub_cache))
    shutil.copytree(fake_module_directory, cached)
    assert hub.resolve(closed_port_url) == cached  # the same place tensorflow_hub looks

    images = random_images(seed=4, count=2, size=20)
    from_url = inception.load_classifier(closed_port_url)(images)
    from_directory = inception.load_classifier(str(fake_module_directory))(images)
    np.testing.assert_array_equal(from_url["logits"], from_directory["logits"])


def test_missing_directory_fails_fast_with_how_to(tmp_path):
    start = time.monotonic()
    with pytest.raises(inception.InceptionUnavailableError, match="no such file") as error:
        inception.load_classifier(str(tmp_path / "no_inception_here"))
    assert time.monotonic() - start < 5.0
    assert_how_to_message(error.value)
    assert f"{inception.DEFAULT_INCEPTION}?tf-hub-format=compressed" in str(error.value)


def test_directory_without_savedmodel_fails(tmp_path):
    (tmp_path / "README.txt").write_text("not a model")
    with pytest.raises(inception.InceptionUnavailableError, match="saved_model.pb"):
        inception.load_classifier(str(tmp_path))


def test_unreachable_url_fails_fast_with_how_to(empty_hub_cache, closed_port_url):
    start = time.monotonic()
    with pytest.raises(inception.InceptionUnavailableError, match="network unreachable") as error:
        inception.load_classifier(closed_port_url)
    assert time.monotonic() - start < 20.0
    assert_how_to_message(error.value)
    assert f"{closed_port_url}?tf-hub-format=compressed" in str(error.value)


def test_silent_server_times_out_instead_of_hanging(empty_hub_cache):
    # A server that accepts connections (kernel backlog) but never answers.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        url = f"http://127.0.0.1:{server.getsockname()[1]}/inception/1"
        start = time.monotonic()
        with pytest.raises(inception.InceptionUnavailableError, match="within 1 s") as error:
            inception.load_classifier(url, network_timeout_seconds=1.0)
        assert time.monotonic() - start < 10.0
    assert_how_to_message(error.value)


def test_module_without_inception_outputs_is_rejected(tmp_path):
    class Classifier(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 299, 299, 3], tf.float32)])
        def __call__(self, images):
            return {"probabilities": tf.reduce_mean(images, axis=[1, 2])}

    tf.saved_model.save(Classifier(), str(tmp_path / "other"))
    with pytest.raises(inception.InceptionUnavailableError, match="pool_3"):
        inception.load_classifier(str(tmp_path / "other"))


def test_url_detection_and_one_line_messages():
    assert inception.is_url(inception.DEFAULT_INCEPTION) and inception.is_url("http://host/m")
    assert not inception.is_url("/models/inception") and not inception.is_url("gs://bucket/inception")
    assert inception.one_line("a\n  b\tc \n") == "a b c"
    assert inception.one_line(ValueError("x\ny")) == "x y"


def test_bad_arguments(fake_module_directory):
    with pytest.raises(ValueError, match="image_size"):
        inception.load_classifier(str(fake_module_directory), image_size=0)
    with pytest.raises(ValueError, match="source"):
        inception.load_classifier("")
    with pytest.raises(ValueError, match="network_timeout_seconds"):
        inception.load_classifier(str(fake_module_directory), network_timeout_seconds=0)
    with pytest.raises(ValueError, match="interpolation must be one of .* got 'area'"):
        inception.load_classifier(str(fake_module_directory), interpolation="area")
    classifier = inception.load_classifier(str(fake_module_directory))
    with pytest.raises(ValueError, match=r"\[N, H, W, 3\]"):
        classifier(np.zeros([8, 8, 3], np.float32))
