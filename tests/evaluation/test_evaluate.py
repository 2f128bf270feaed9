"""ylg_tf.evaluation.evaluate: IS/FID of streamed samples against NumPy/SciPy references and TF-GAN,
result paths, summaries and writing to any file system, and a work directory scored under the ylg protocol."""

import json
import uuid

import numpy as np
import pytest
import tensorflow as tf

from evaluation_doubles import LinearClassifier, batched, random_images, tiny_config, toy_sample_function
from fake_inception import write_fake_inception_savedmodel
from metric_references import reference_frechet_distance, reference_inception_score
from resize_references import legacy_bilinear_reference
from ylg_tf.data import datasets
from ylg_tf.evaluation import classifiers, evaluate, metrics, protocols, real_statistics, samples
from ylg_tf.models.networks import Discriminator, Generator
from ylg_tf.storage import workdir as workdirs
from ylg_tf.tfgan_import import tfgan

RELATIVE_TOLERANCE = 1e-6


def test_evaluate_generator_equals_reference_formulas_with_partial_last_batch():
    classifier = LinearClassifier(seed=0)
    real_images = random_images(seed=1, count=23)
    real, reused = real_statistics.real_statistics(
        classifier, lambda: batched(real_images, [6, 6, 6, 6]), 23, None, {"test": 1})
    assert not reused and real.count == 23

    result = evaluate.evaluate_generator(
        toy_sample_function, classifier, num_samples=19, batch_size=6, num_classes=3, z_dim=16,
        real_statistics=real, seed=5)

    # Reference: the same 19 samples drawn explicitly (batches of 6; the last keeps 1 row).
    generated_images = np.concatenate([
        toy_sample_function(*samples.sample_latents(index, 6, 3, 16, seed=5)).numpy()
        for index in range(4)])[:19]
    generated_outputs = classifier(generated_images)
    real_pool = classifier(real_images)["pool_3"].numpy()
    expected_fid = reference_frechet_distance(generated_outputs["pool_3"].numpy(), real_pool)
    expected_score = reference_inception_score(generated_outputs["logits"].numpy())
    assert result["num_samples"] == 19
    np.testing.assert_allclose(result["fid"], expected_fid, rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(result["inception_score"], expected_score, rtol=RELATIVE_TOLERANCE)
    # ... and TF-GAN's one-shot functions on the same in-memory arrays.
    tfgan_fid = tfgan.eval.frechet_classifier_distance_from_activations(
        tf.constant(generated_outputs["pool_3"].numpy(), tf.float64), tf.constant(real_pool, tf.float64))
    tfgan_score = tfgan.eval.classifier_score_from_logits(
        tf.constant(generated_outputs["logits"].numpy(), tf.float64))
    np.testing.assert_allclose(result["fid"], float(tfgan_fid), rtol=1e-5)
    np.testing.assert_allclose(result["inception_score"], float(tfgan_score), rtol=RELATIVE_TOLERANCE)
    # Every classifier call had the full batch size (short batches are padded): one trace only.
    assert set(classifier.calls[:-2]) == {6}


def example_result(step):
    return {"fid": 12.3456, "inception_score": 3.21, "num_samples": 64, "step": step,
            "saved_model": None if step is not None else "/runs/a/export", "inception": "builtin",
            "classifier": {"held_out_accuracy": 0.987}, "workdir": "ram://unused"}


def test_result_paths_summary_and_writing_to_any_filesystem():
    workdir = f"ram://results-{uuid.uuid4().hex}"
    result = dict(example_result(7), workdir=workdir)
    assert evaluate.default_result_path(result) == f"{workdir}/evaluation/step_7.json"
    assert evaluate.default_result_path(dict(example_result(None), workdir=workdir)) == (
        f"{workdir}/evaluation/export.json")
    written = evaluate.write_result(result)
    with tf.io.gfile.GFile(written) as file:
        assert json.loads(file.read()) == result
    assert tf.io.gfile.listdir(f"{workdir}/evaluation") == ["step_7.json"]
    assert evaluate.result_summary(result) == (
        "FID 12.3456  IS 3.2100  (64 samples, step 7, classifier builtin, classifier held-out accuracy 0.987)")
    assert "export /runs/a/export" in evaluate.result_summary(example_result(None))


@pytest.fixture(scope="module")
def small_fake_inception(tmp_path_factory):
    return str(write_fake_inception_savedmodel(
        tmp_path_factory.mktemp("fake") / "module", resize_inside=True, pool_features=32, num_logits=10))


def first_validation_images(count, offset=0):
    """Images offset .. offset + count - 1 of the built-in "validation" split, in order, at 32x32."""
    images = next(iter(datasets.make_dataset(
        "builtin", split="validation", image_size=32, batch_size=count + offset, shuffle=False, repeat=False,
        num_examples=count + offset)))[0]
    return images[offset:]


def test_ylg_protocol_scores_the_first_validation_images_in_order_resized_the_legacy_way(
        tmp_path, small_fake_inception):
    # The config evaluates on "train"; the ylg protocol takes the validation split, as the YLG code did.
    config = tiny_config().replace(data={"eval_split": "train"})
    directory = tmp_path / "workdir"
    workdirs.save_config(config, directory)
    workdirs.write_checkpoint(directory, Generator(config.model).build_for_config(),
                              Discriminator(config.model).build_for_config(), 3)
    messages = []
    result = evaluate.evaluate_workdir(
        directory, protocol="ylg", num_samples=8, batch_size=4, classifier_source=small_fake_inception,
        log=messages.append)
    assert result["split"] == "validation" and result["num_samples"] == 8
    assert result["protocol"] == protocols.YLG.to_dict()
    assert result["classifier"]["resize"] == classifiers.RESIZE_LEGACY_BILINEAR_299
    assert result["comparable"] is False
    assert result["deviations"] == ["num_samples=8 is below the ylg protocol's 32768"]
    warnings = [message for message in messages if message.startswith("warning:")]
    assert warnings == ["warning: scores not comparable with the YLG paper's scores: num_samples=8 is below "
                        "the ylg protocol's 32768"]

    # The real statistics are those of the first 8 validation images, legacy-resized to 299 before the module.
    module = tf.saved_model.load(small_fake_inception)

    def pool_mean(images):
        resized = tf.constant(legacy_bilinear_reference(images, 299), tf.float32)
        return np.asarray(module(resized)["pool_3"], np.float64).mean(axis=0)

    statistics = metrics.ActivationStatistics.load(result["real_statistics"]["path"])
    np.testing.assert_allclose(statistics.mean, pool_mean(first_validation_images(8)), rtol=1e-4, atol=1e-5)
    # Another choice of images would be seen: one image later, or the config's own split.
    assert not np.allclose(statistics.mean, pool_mean(first_validation_images(8, offset=1)), rtol=1e-3)
    train_images = next(iter(datasets.make_dataset(
        "builtin", split="train", image_size=32, batch_size=8, shuffle=False, repeat=False, num_examples=8)))[0]
    assert not np.allclose(statistics.mean, pool_mean(train_images), rtol=1e-3)
