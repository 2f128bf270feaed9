"""ylg_tf.evaluation.real_statistics: the real-statistics cache (also on a non-local tf.io.gfile path),
its provenance-keyed path, and the real batches in order."""

import os
import uuid

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from evaluation_doubles import LinearClassifier, batched, random_images
from ylg_tf.data import datasets
from ylg_tf.evaluation import classifiers, real_statistics
from ylg_tf.evaluation import metrics


def test_real_statistics_are_cached_reused_and_recomputed_on_provenance_change(tmp_path):
    classifier = LinearClassifier(seed=2)
    images = random_images(seed=3, count=12)
    calls = []

    def make_batches():
        calls.append(1)
        return batched(images, [5, 5, 5])  # slices of 5, 5 and 2 images

    provenance = {"dataset": "builtin", "classifier": {"fingerprint": "a"}}
    path = str(tmp_path / "cache" / "real.npz")
    first, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, provenance)
    assert not reused and len(calls) == 1 and os.path.isfile(path)
    expected = classifier(images)["pool_3"].numpy().astype(np.float64)
    np.testing.assert_allclose(first.mean, expected.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(first.covariance, np.cov(expected, rowvar=False), rtol=1e-9, atol=1e-12)

    modified = os.path.getmtime(path)
    again, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, provenance)
    assert reused and len(calls) == 1 and os.path.getmtime(path) == modified
    np.testing.assert_array_equal(again.covariance, first.covariance)
    assert again.provenance == provenance

    changed = {"dataset": "builtin", "classifier": {"fingerprint": "b"}}
    _, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, changed)
    assert not reused and len(calls) == 2
    assert metrics.ActivationStatistics.load(path).provenance == changed
    _, reused = real_statistics.real_statistics(classifier, make_batches, 10, path, changed)  # other count
    assert not reused and len(calls) == 3

    with pytest.raises(classifiers.EvaluationError, match="only 12 images, fewer than the num_samples=13"):
        real_statistics.real_statistics(classifier, make_batches, 13, None, changed)


def test_real_statistics_cache_works_on_a_non_local_filesystem():
    # ram:// is TensorFlow's in-memory file system: any os.* call on the path would fail.
    classifier = LinearClassifier(seed=6)
    images = random_images(seed=7, count=6)
    directory = f"ram://evaluation-{uuid.uuid4().hex}/real_statistics"
    path = f"{directory}/real.npz"
    first, reused = real_statistics.real_statistics(classifier, lambda: batched(images, [3, 3]), 6, path, {"a": 1})
    again, reused_again = real_statistics.real_statistics(classifier, lambda: iter(()), 6, path, {"a": 1})
    assert (reused, reused_again) == (False, True)
    np.testing.assert_array_equal(again.covariance, first.covariance)
    assert tf.io.gfile.listdir(directory) == ["real.npz"]  # the temporary file was renamed, not left


def test_statistics_path_depends_on_provenance(tmp_path):
    description = {"kind": "inception", "source": "/m", "resize": "module", "fingerprint": "f"}
    provenance = real_statistics.real_data_provenance(
        description, dataset="imagenet_resized/32x32", split="validation", image_size=32, num_samples=100)
    path = real_statistics.real_statistics_path(tmp_path, provenance)
    assert os.path.dirname(path) == str(tmp_path / "evaluation" / "real_statistics")
    assert os.path.basename(path).startswith("imagenet_resized-32x32_validation_32px_100_")
    other = dict(provenance, classifier=dict(description, resize="bilinear_299"))
    assert real_statistics.real_statistics_path(tmp_path, other) != path
    with pytest.raises(classifiers.EvaluationError, match="unknown dataset 'mnist'"):
        real_statistics.real_data_provenance(description, dataset="mnist", split="train", image_size=32,
                                        num_samples=10)


def write_folder_dataset(directory, images_per_class):
    generator = np.random.default_rng(0)
    for class_name in ("a", "b"):
        (directory / class_name).mkdir(parents=True)
        for index in range(images_per_class):
            pixels = generator.integers(0, 256, size=[12, 10, 3], dtype=np.uint8)
            Image.fromarray(pixels).save(directory / class_name / f"{index}.png")
    return directory


def test_real_batches_are_the_first_images_in_order_and_too_few_is_an_error(tmp_path):
    folder = write_folder_dataset(tmp_path / "folder", images_per_class=3)
    batches = list(real_statistics.make_real_batches(
        "folder", split="train", image_size=8, num_samples=5, batch_size=2, data_dir=str(folder)))
    assert [int(batch.shape[0]) for batch in batches] == [2, 2, 1]
    expected = next(iter(datasets.make_dataset(
        "folder", split="train", image_size=8, batch_size=5, data_dir=str(folder), shuffle=False,
        repeat=False, num_examples=5)))[0]
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    with pytest.raises(classifiers.EvaluationError, match="has 6 images, fewer than the num_samples=7"):
        real_statistics.make_real_batches("folder", split="train", image_size=8, num_samples=7, batch_size=2,
                                     data_dir=str(folder))
