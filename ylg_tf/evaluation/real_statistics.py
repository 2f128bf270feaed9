"""Real-data statistics (mean and covariance of the classifier's "pool_3"), computed once and cached.

They are computed once per dataset, split, data directory, resolution, sample count and classifier, saved
under `<workdir>/evaluation/real_statistics/` with that provenance, and reused while it matches. The real
images are the first `num_samples` of the split, in order, preprocessed by `ylg_tf.data.datasets`.
`real_features` gives the same images' pool_3 rows and labels themselves, for the metrics that need them.
"""

import hashlib
import json
import logging
import os
import re

import numpy as np
import tensorflow as tf

from ylg_tf.data import datasets
from ylg_tf.evaluation import inception, metrics
from ylg_tf.storage import files
from ylg_tf.storage.evaluation_history import EVALUATION_DIRECTORY
from ylg_tf.evaluation.classifiers import Classifier, EvaluationError, classify_in_batches

REAL_STATISTICS_DIRECTORY = "real_statistics"
REAL_DATA_SEED = 0


def real_data_provenance(classifier, *, dataset, split, image_size, num_samples, data_dir=None):
    """What real-data statistics depend on; cached statistics are reused only when this matches."""
    if dataset not in datasets.DATASET_NAMES:
        raise EvaluationError(f"unknown dataset {dataset!r}; expected one of {datasets.DATASET_NAMES}")
    description = classifier.description if isinstance(classifier, Classifier) else classifier
    if data_dir:
        data_dir = files.absolute_path(data_dir)
    return {
        "kind": "real_data_pool_3_statistics",
        "dataset": dataset,
        "split": split,
        "data_dir": str(data_dir or ""),
        "image_size": int(image_size),
        "num_samples": int(num_samples),
        "data_seed": REAL_DATA_SEED,
        "classifier": {key: description.get(key) for key in ("kind", "source", "resize", "fingerprint")},
    }


def real_statistics_path(workdir, provenance):
    """<workdir>/evaluation/real_statistics/<dataset>_<split>_<size>px_<count>_<provenance hash>.npz."""
    digest = hashlib.sha256(json.dumps(provenance, sort_keys=True).encode("utf8")).hexdigest()[:10]
    dataset = re.sub(r"[^A-Za-z0-9._-]+", "-", provenance["dataset"])
    name = (f"{dataset}_{provenance['split']}_{provenance['image_size']}px_"
            f"{provenance['num_samples']}_{digest}.npz")
    return os.path.join(os.fspath(workdir), EVALUATION_DIRECTORY, REAL_STATISTICS_DIRECTORY, name)


def make_real_batches(dataset, *, split, image_size, num_samples, batch_size, data_dir=None, with_labels=False):
    """The first `num_samples` images of a split, in order, in batches of `batch_size` (last one shorter);
    with_labels: (images, labels) batches.

    Raises EvaluationError when the split has fewer images than `num_samples`.
    """
    data_dir = data_dir or None
    available = datasets.count_examples(dataset, split, data_dir)  # None: unbounded ("builtin")
    if available is not None and available < num_samples:
        raise EvaluationError(
            f"dataset {dataset!r} split {split!r} has {available} images, fewer than the "
            f"num_samples={num_samples} requested; lower --num_samples or use a larger split")
    # One example per element, then re-batched: make_dataset drops a partial last batch.
    examples = datasets.make_dataset(
        dataset, split=split, image_size=image_size, batch_size=1, data_dir=data_dir,
        shuffle=False, repeat=False, seed=REAL_DATA_SEED, num_examples=num_samples)
    if not with_labels:
        examples = examples.map(lambda images, labels: images)
    return examples.unbatch().batch(batch_size)


def real_statistics(classifier, make_batches, num_samples, cache_path, provenance, progress=None):
    """Mean and covariance of the classifier's "pool_3" on real images, cached with their provenance.

    Args:
        classifier: a Classifier, or its function.
        make_batches: callable returning an iterable of image batches [B, H, W, 3] in [-1, 1] (or of
            (images, labels) pairs); called only when the statistics must be computed.
        num_samples: number of images to summarise (the first ones the batches give).
        cache_path: .npz path to reuse/write, or None for no cache.
        provenance: JSON dict describing the data and classifier (`real_data_provenance`).
        progress: optional callback(done, total) after each batch computed.

    Returns:
        (metrics.ActivationStatistics, reused) where reused says whether the cache was used.
    """
    expected = json.loads(json.dumps(provenance, sort_keys=True))
    if cache_path and tf.io.gfile.exists(cache_path):
        try:
            cached = metrics.ActivationStatistics.load(cache_path)
        except ValueError as error:
            logging.warning("Ignoring unreadable real-data statistics %s: %s", cache_path, error)
        else:
            if cached.provenance == expected and cached.count == num_samples:
                logging.info("Reusing real-data statistics from %s", cache_path)
                return cached, True
            logging.info("Real-data statistics in %s have another provenance; recomputing", cache_path)

    statistics = None
    for pool, _ in classified_rows(classifier, make_batches, num_samples, progress):
        if statistics is None:
            statistics = metrics.ActivationStatistics(pool.shape[1], expected)
        statistics.update(pool)
    if cache_path:
        # Training and the tool share the cache: a concurrent reader must never load half a file.
        files.write_atomically(cache_path, statistics.save, suffix=".npz")
    return statistics, False


def classified_rows(classifier, make_batches, num_samples, progress=None):
    """Yields (pool_3 rows [rows, D], labels [rows] or None) of the first `num_samples` images that
    `make_batches()` gives (image batches, or (images, labels) pairs); raises EvaluationError when it gives
    fewer. progress(done, total) is called after each batch."""
    function = classifier.function if isinstance(classifier, Classifier) else classifier
    done = 0
    batch_size = None
    for batch in make_batches():
        images, labels = batch if isinstance(batch, (tuple, list)) else (batch, None)
        batch_size = batch_size or int(images.shape[0])
        rows = min(int(images.shape[0]), num_samples - done)
        pool = classify_in_batches(function, images, batch_size)[inception.POOL][:rows]  # [rows, D]
        yield pool, None if labels is None else np.asarray(labels)[:rows]
        done += rows
        if progress is not None:
            progress(done, num_samples)
        if done >= num_samples:
            break
    if done < num_samples:
        raise EvaluationError(
            f"the real data gave only {done} images, fewer than the num_samples={num_samples} requested")


def real_features(classifier, make_batches, num_samples, progress=None):
    """(pool_3 features float32 [N, D], labels int32 [N]) of the first `num_samples` real images, for the
    metrics that need every row (`ylg_tf.evaluation.sample_metrics`); `make_batches` gives (images, labels)
    batches. Not cached: they cost one more pass of the classifier over the real images."""
    features, labels = [], []
    for pool, batch_labels in classified_rows(classifier, make_batches, num_samples, progress):
        features.append(np.asarray(pool, np.float32))
        labels.append(np.asarray(batch_labels, np.int32))
    return np.concatenate(features), np.concatenate(labels)
