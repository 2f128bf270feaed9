"""ylg_tf.evaluation.evaluate: IS/FID of streamed samples against NumPy/SciPy references and TF-GAN,
result paths, summaries and writing to any file system."""

import json
import uuid

import numpy as np
import tensorflow as tf

from evaluation_doubles import LinearClassifier, batched, random_images, toy_sample_function
from metric_references import reference_frechet_distance, reference_inception_score
from ylg_tf.evaluation import evaluate, real_statistics, samples
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
