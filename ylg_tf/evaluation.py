"""Scoring a generator: Inception Score and FID of its samples against cached real-data statistics.

What is computed (spec section 5, as the originals through TF-GAN):
- Generated images come from G in inference mode (`training=False`) with z ~ N(0, I) and labels uniform
  over the generator's classes, drawn with stateless ops keyed by (seed, batch index)
  (`sample_latents`), so a run is reproducible and any sample can be recomputed.
- A classifier maps images [N, H, W, 3] in [-1, 1] to {"logits": [N, K], "pool_3": [N, D]}: the
  TF-GAN Inception module (TF-Hub URL, local SavedModel or pre-filled TFHUB_CACHE_DIR, through
  `ylg_tf.inception`), or, for the built-in dataset, the small classifier of
  `ylg_tf.builtin_classifier`, which has the same interface and goes through the same loading path.
- Resizing to 299: by default the images reach the Inception module at the generator's resolution and
  the module resizes them to 299x299 itself. That is what the originals did: their evaluation called
  `tfgan.eval.sample_and_run_inception` on 128x128 images, and TF-GAN 2.x's `run_inception` /
  `classifier_fn_from_tfhub` pass images to the module unchanged (TF-GAN's self-attention example:
  "Image resizing happens inside the Inception SavedModel"). `resize_to_inception_size=True` resizes
  here instead, with `tf.image.resize` (bilinear), as TF-GAN's CIFAR example does; a local module whose
  input is fixed at 299x299 needs it.
- IS (one split) from "logits" and FID (float64) from "pool_3", with the streaming accumulators of
  `ylg_tf.metrics`: memory is O(K + D^2) whatever the number of samples. They compute what
  `tfgan.eval.classifier_score_from_logits` and `tfgan.eval.frechet_classifier_distance_from_activations`
  compute on the full arrays (tests/test_metrics.py and tests/test_evaluation.py check this).
- Real-data statistics (mean and covariance of "pool_3") are computed once per dataset, split, data
  directory, resolution, sample count and classifier, saved under
  `<workdir>/evaluation/real_statistics/` with that provenance, and reused while it matches. The real
  images are the first `num_samples` of the split, in order, preprocessed by `ylg_tf.datasets`.

Batches are classified at a fixed size (a shorter last batch is padded, and the padding's outputs
dropped), so every function is traced once.

`evaluate_workdir` is the whole job of tools/evaluate.py (restore or load the generator, load the
classifier, score, record provenance and timings); `write_result` stores its JSON. Every file is read and
written through tf.io.gfile, so the work directory may be on gs://.
"""

import dataclasses
import hashlib
import json
import logging
import os
import re
import time

import numpy as np
import tensorflow as tf

from ylg_tf import builtin_classifier, datasets, export, files, inception, metrics
from ylg_tf import workdir as workdirs
from ylg_tf.config import ExperimentConfig, ModelConfig
from ylg_tf.inception import is_url, one_line

BUILTIN_SOURCE = builtin_classifier.SOURCE_NAME
RESIZE_BY_MODULE = "module"
RESIZE_BILINEAR_299 = "bilinear_299"
EVALUATION_DIRECTORY = "evaluation"
REAL_STATISTICS_DIRECTORY = "real_statistics"
REAL_DATA_SEED = 0
MINIMUM_SAMPLES = 2  # a covariance needs two samples


class EvaluationError(ValueError):
    """A user-facing problem with an evaluation request (sample counts, data, generator interface)."""


@dataclasses.dataclass(frozen=True)
class Classifier:
    """The classifier used for IS/FID.

    function: images [N, H, W, 3] float32 in [-1, 1] -> {"logits": [N, K], "pool_3": [N, D]}.
    description: JSON-serialisable facts: "kind" ("inception" or "builtin"), "source", "resize",
        "fingerprint" (SHA-256 prefix of the SavedModel files, None when they are not local) and, for
        the built-in classifier, "held_out_accuracy" and "directory".
    """

    function: object
    description: dict

    @property
    def source(self):
        return self.description["source"]


def default_classifier_source(dataset):
    """The built-in classifier for the built-in dataset (offline), else the TF-Hub Inception module."""
    return BUILTIN_SOURCE if dataset == "builtin" else inception.DEFAULT_INCEPTION


def load_evaluation_classifier(source, *, image_size, resize_to_inception_size=False,
                               cache_directory=None,
                               network_timeout_seconds=inception.DEFAULT_NETWORK_TIMEOUT_SECONDS,
                               training_progress=None):
    """Loads the classifier named by `source` and checks it on a batch of `image_size` images.

    Args:
        source: "builtin", a TF-Hub URL or a directory holding the module (SavedModel).
        image_size: resolution of the images that will be scored.
        resize_to_inception_size: resize to 299 here (bilinear) rather than in the module; ignored for
            the built-in classifier, which works at its own resolution.
        cache_directory: cache root of the built-in classifier (see `ylg_tf.builtin_classifier`);
            required for "builtin".
        network_timeout_seconds: how long a URL source may take to answer.
        training_progress: optional callback(step, loss) while the built-in classifier trains (only
            on its first use with a given cache).

    Returns:
        A Classifier.

    Raises:
        inception.InceptionUnavailableError: the module cannot be reached, loaded or called.
    """
    if not isinstance(source, str) or not source:
        raise EvaluationError(
            f"classifier source must be {BUILTIN_SOURCE!r}, a TF-Hub URL or a directory, got {source!r}")
    if source == BUILTIN_SOURCE:
        if not cache_directory:
            raise EvaluationError(
                f"the {BUILTIN_SOURCE!r} classifier needs a cache_directory to keep it in, got "
                f"{cache_directory!r} (entry points pass command_line.default_classifier_cache_directory())")
        directory, metadata = builtin_classifier.load_or_train(cache_directory, progress=training_progress)
        function = inception.load_classifier(directory, image_size=None)
        description = {
            "kind": "builtin",
            "source": BUILTIN_SOURCE,
            "resize": f"classifier (to {metadata['image_size']}x{metadata['image_size']})",
            "directory": directory,
            "fingerprint": _saved_model_fingerprint(directory),
            "version": metadata["version"],
            "held_out_accuracy": metadata["held_out_accuracy"],
        }
    else:
        resize = RESIZE_BILINEAR_299 if resize_to_inception_size else RESIZE_BY_MODULE
        function = inception.load_classifier(
            source,
            image_size=inception.INCEPTION_IMAGE_SIZE if resize_to_inception_size else None,
            network_timeout_seconds=network_timeout_seconds)
        local_directory = inception.hub_cache_directory(source) if is_url(source) else source
        description = {
            "kind": "inception",
            "source": source,
            "resize": resize,
            "fingerprint": _saved_model_fingerprint(local_directory),
        }
    _check_classifier_interface(function, description, image_size)
    return Classifier(function, description)


def _check_classifier_interface(function, description, image_size):
    probe = tf.zeros([2, image_size, image_size, 3], tf.float32)
    try:
        outputs = function(probe)
        shapes = {field: tuple(outputs[field].shape) for field in inception.OUTPUT_FIELDS}
    except Exception as error:  # A restored function rejects inputs with ValueError/TypeError/OpError.
        hint = ""
        if description.get("resize") == RESIZE_BY_MODULE:
            hint = ("; a module whose input is fixed at 299x299 needs the images resized first "
                    "(resize_to_inception_size / --resize_to_299)")
        raise inception.InceptionUnavailableError(
            f"classifier {description['source']!r} cannot be called on [N, {image_size}, {image_size}, 3] "
            f"float32 images in [-1, 1]: {one_line(error)[:300]}{hint}") from error
    for field, shape in shapes.items():
        if len(shape) != 2 or shape[0] != 2 or shape[1] < 1:
            raise inception.InceptionUnavailableError(
                f"classifier {description['source']!r} returns {field!r} of shape {shape} for 2 images; "
                f"expected [2, features]")
    if shapes[inception.LOGITS][1] < 2:
        raise inception.InceptionUnavailableError(
            f"classifier {description['source']!r} returns {shapes[inception.LOGITS][1]} logit; the "
            f"Inception Score needs at least 2 classes")


def _saved_model_fingerprint(directory):
    """SHA-256 prefix over the relative paths and contents of a local SavedModel's files, or None."""
    if not directory or not tf.io.gfile.isdir(directory):
        return None
    paths = []
    for root, _, file_names in tf.io.gfile.walk(directory):
        paths.extend(os.path.join(root, name) for name in file_names)
    if not paths:
        return None
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(os.path.relpath(path, directory).encode("utf8") + b"\0")
        with tf.io.gfile.GFile(path, "rb") as file:
            while True:
                chunk = file.read(1 << 22)
                if not chunk:
                    break
                digest.update(chunk)
    return digest.hexdigest()[:16]


# ----------------------------------------------------------------------------------------------
# Generated samples.


def check_sample_counts(num_samples, batch_size):
    """Validates the sample count and the batch size (num_samples >= batch_size >= 1)."""
    for name, value, minimum in (("batch_size", batch_size, 1), ("num_samples", num_samples, MINIMUM_SAMPLES)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise EvaluationError(f"{name} must be an integer >= {minimum}, got {value!r}")
    if num_samples < batch_size:
        raise EvaluationError(
            f"num_samples={num_samples} is smaller than batch_size={batch_size}; lower the batch size "
            f"or ask for more samples")


def sample_latents(batch_index, batch_size, num_classes, z_dim, seed=0):
    """(z float32 [batch_size, z_dim] ~ N(0, I), labels int32 [batch_size] uniform in [0, num_classes)).

    Stateless, keyed by (seed, batch_index): the same arguments always give the same draws.
    """
    key = tf.constant([seed, batch_index], tf.int64)
    noise_key, label_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
    z = tf.random.stateless_normal([batch_size, z_dim], seed=noise_key)  # [B, z_dim]
    labels = tf.random.stateless_uniform(
        [batch_size], seed=label_key, minval=0, maxval=num_classes, dtype=tf.int32)  # [B]
    return z, labels


def generator_sample_function(generator):
    """`sample(z, labels) -> images [B, S, S, 3] in [-1, 1]` from a Keras Generator in inference mode."""

    @tf.function(autograph=False)
    def sample(z, labels):
        return generator((z, labels), training=False)

    return sample


def exported_sample_function(signature, model_config: ModelConfig):
    """`sample(z, labels) -> images in [-1, 1]` from an exported generator's serving signature.

    The export returns uint8 round((x + 1) * 127.5); this maps it back with x = u / 127.5 - 1.
    """
    inputs = signature.structured_input_signature[1]
    z_spec = inputs.get("z")
    if z_spec is None or "labels" not in inputs:
        raise EvaluationError(
            f"the exported generator takes inputs {sorted(inputs)}; expected 'z' and 'labels'")
    if z_spec.shape.rank != 2 or z_spec.shape[1] != model_config.z_dim:
        raise EvaluationError(
            f"the exported generator takes z of shape {z_spec.shape}, but the work directory's config "
            f"has z_dim={model_config.z_dim}")

    def sample(z, labels):
        images = signature(z=tf.cast(z, tf.float32), labels=tf.cast(labels, tf.int32))["images"]
        return tf.cast(images, tf.float32) / 127.5 - 1.0

    return sample


def _classify(classifier_function, images, batch_size):
    """Classifier outputs as float32 NumPy arrays, padding a short batch to `batch_size` first."""
    images = tf.convert_to_tensor(images, tf.float32)
    count = int(images.shape[0])
    if count < batch_size:
        padding = tf.zeros([batch_size - count] + images.shape[1:].as_list(), tf.float32)
        images = tf.concat([images, padding], axis=0)
    outputs = classifier_function(images)
    return {field: np.asarray(outputs[field])[:count] for field in inception.OUTPUT_FIELDS}


def evaluate_generator(sample_fn, classifier, num_samples, batch_size, num_classes, z_dim,
                       real_statistics, seed=0, progress=None):
    """IS and FID of `num_samples` generated images, streamed in batches.

    Args:
        sample_fn: sample(z [B, z_dim], labels [B]) -> images [B, S, S, 3] in [-1, 1].
        classifier: a Classifier, or its function (images -> {"logits", "pool_3"}).
        num_samples: number of generated images scored (>= batch_size).
        batch_size: images per generator/classifier call.
        num_classes, z_dim: the generator's label count and latent size.
        real_statistics: metrics.ActivationStatistics of the real images' "pool_3".
        seed: latent seed (see `sample_latents`); batch i uses `sample_latents(i, batch_size, ...)`
            and the last batch keeps its first rows only.
        progress: optional callback(done, total) after each batch.

    Returns:
        {"fid": float, "inception_score": float, "num_samples": int,
         "timings": {"sampling_seconds": ..., "metric_seconds": ...}} (sampling includes classifying).
    """
    check_sample_counts(num_samples, batch_size)
    start = time.perf_counter()
    if not isinstance(real_statistics, metrics.ActivationStatistics):
        raise EvaluationError(
            f"real_statistics must be metrics.ActivationStatistics, got {type(real_statistics).__name__}")
    function = classifier.function if isinstance(classifier, Classifier) else classifier
    logits_accumulator = None
    generated_statistics = None
    done = 0
    batch_index = 0
    while done < num_samples:
        z, labels = sample_latents(batch_index, batch_size, num_classes, z_dim, seed)
        outputs = _classify(function, sample_fn(z, labels), batch_size)
        rows = min(batch_size, num_samples - done)
        logits = outputs[inception.LOGITS][:rows]  # [rows, K]
        pool = outputs[inception.POOL][:rows]  # [rows, D]
        if logits_accumulator is None:
            logits_accumulator = metrics.LogitsAccumulator(logits.shape[1])
            generated_statistics = metrics.ActivationStatistics(pool.shape[1])
        logits_accumulator.update(logits)
        generated_statistics.update(pool)
        done += rows
        batch_index += 1
        if progress is not None:
            progress(done, num_samples)
    sampling_seconds = time.perf_counter() - start
    fid = metrics.frechet_distance_from_statistics(generated_statistics, real_statistics)
    inception_score = metrics.inception_score_from_accumulator(logits_accumulator)
    return {
        "fid": fid,
        "inception_score": inception_score,
        "num_samples": num_samples,
        "timings": {
            "sampling_seconds": round(sampling_seconds, 3),
            "metric_seconds": round(time.perf_counter() - start - sampling_seconds, 3),
        },
    }


# ----------------------------------------------------------------------------------------------
# Real-data statistics.


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


def make_real_batches(dataset, *, split, image_size, num_samples, batch_size, data_dir=None):
    """The first `num_samples` images of a split, in order, in batches of `batch_size` (last one shorter).

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
    return examples.map(lambda images, labels: images).unbatch().batch(batch_size)


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

    function = classifier.function if isinstance(classifier, Classifier) else classifier
    statistics = None
    done = 0
    batch_size = None
    for batch in make_batches():
        images = batch[0] if isinstance(batch, (tuple, list)) else batch
        batch_size = batch_size or int(images.shape[0])
        pool = _classify(function, images, batch_size)[inception.POOL][:num_samples - done]  # [rows, D]
        if statistics is None:
            statistics = metrics.ActivationStatistics(pool.shape[1], expected)
        statistics.update(pool)
        done += pool.shape[0]
        if progress is not None:
            progress(done, num_samples)
        if done >= num_samples:
            break
    if done < num_samples:
        raise EvaluationError(
            f"the real data gave only {done} images, fewer than the num_samples={num_samples} requested")
    if cache_path:
        # Training and the tool share the cache: a concurrent reader must never load half a file.
        files.write_atomically(cache_path, statistics.save, suffix=".npz")
    return statistics, False


# ----------------------------------------------------------------------------------------------
# Whole evaluations.


def evaluate(sample_fn, classifier, *, workdir, model_config: ModelConfig, dataset, split, num_samples,
             batch_size, data_dir=None, seed=0, progress=None):
    """Real-data statistics (cached in `workdir`) and the generator's IS and FID, with timings.

    Args:
        sample_fn: see `evaluate_generator`.
        classifier: a Classifier (`load_evaluation_classifier`).
        workdir: work directory holding the statistics cache.
        model_config: the generator's config (image_size, num_classes, z_dim).
        dataset, split, data_dir: the real images (see `ylg_tf.datasets`).
        num_samples: images scored on each side.
        batch_size: images per call.
        seed: latent seed of the generated samples.
        progress: optional callback(phase, done, total), phase "real" or "generated".

    Returns:
        A JSON-serialisable dict: fid, inception_score, num_samples, batch_size, seed, dataset, split,
        data_dir, image_size, inception (the classifier source), classifier (its description),
        real_statistics {path, reused}, timings {real_statistics_seconds, sampling_seconds,
        metric_seconds}.
    """
    if not isinstance(classifier, Classifier):
        raise EvaluationError(f"classifier must be a Classifier, got {type(classifier).__name__}")
    check_sample_counts(num_samples, batch_size)
    image_size = model_config.image_size
    provenance = real_data_provenance(
        classifier, dataset=dataset, split=split, image_size=image_size, num_samples=num_samples,
        data_dir=data_dir)
    cache_path = real_statistics_path(workdir, provenance)

    def phase_progress(phase):
        return None if progress is None else (lambda done, total: progress(phase, done, total))

    start = time.perf_counter()
    real, reused = real_statistics(
        classifier,
        lambda: make_real_batches(dataset, split=split, image_size=image_size, num_samples=num_samples,
                                  batch_size=batch_size, data_dir=data_dir),
        num_samples, cache_path, provenance, progress=phase_progress("real"))
    real_seconds = time.perf_counter() - start
    scores = evaluate_generator(
        sample_fn, classifier, num_samples, batch_size, model_config.num_classes, model_config.z_dim,
        real, seed=seed, progress=phase_progress("generated"))
    return {
        "fid": scores["fid"],
        "inception_score": scores["inception_score"],
        "num_samples": num_samples,
        "batch_size": batch_size,
        "seed": seed,
        "dataset": dataset,
        "split": split,
        "data_dir": provenance["data_dir"],
        "image_size": image_size,
        "inception": classifier.source,
        "classifier": dict(classifier.description),
        "real_statistics": {"path": cache_path, "reused": reused},
        "timings": {"real_statistics_seconds": round(real_seconds, 3), **scores["timings"]},
    }


class PeriodicEvaluator:
    """Scores the training generator every `config.training.eval_every` steps (0: never).

    The classifier is loaded (and checked on images of the model's size) when the evaluator is made, so
    a bad classifier source fails before training starts, not after `eval_every` steps. The real-data
    statistics are computed on the first evaluation and kept; they are cached in the work directory like
    the evaluation tool's (same provenance, so the tool and training share them when the sample counts
    match).

    Raises (when eval_every > 0): inception.InceptionUnavailableError (an OSError) when the classifier
    cannot be reached, loaded or called; EvaluationError for bad arguments, e.g. the built-in classifier
    without a cache_directory.
    """

    def __init__(self, config: ExperimentConfig, workdir, classifier_source=None, *, num_samples=None,
                 batch_size=64, seed=0, cache_directory=None, resize_to_inception_size=False):
        if not isinstance(config, ExperimentConfig):
            raise EvaluationError(f"config must be an ExperimentConfig, got {type(config).__name__}")
        self.config = config
        self.workdir = os.fspath(workdir)
        self.dataset = config.data.dataset
        self.split = config.data.eval_split
        self.classifier_source = classifier_source or default_classifier_source(self.dataset)
        self.num_samples = num_samples or config.training.eval_num_samples
        self.batch_size = min(batch_size, self.num_samples)
        check_sample_counts(self.num_samples, self.batch_size)
        self.seed = seed
        self.cache_directory = cache_directory
        self.resize_to_inception_size = resize_to_inception_size
        self._classifier = None
        self._sample_functions = {}
        if config.training.eval_every > 0:
            self._classifier = self.classifier  # fail fast: load and check it now

    def due(self, step):
        """Whether training should evaluate after `step`."""
        every = self.config.training.eval_every
        return every > 0 and step > 0 and step % every == 0

    @property
    def classifier(self):
        if self._classifier is None:
            self._classifier = load_evaluation_classifier(
                self.classifier_source, image_size=self.config.model.image_size,
                resize_to_inception_size=self.resize_to_inception_size,
                cache_directory=self.cache_directory)
        return self._classifier

    def __call__(self, generator, step):
        """{"fid", "inception_score", "num_samples", "step", "seconds"} of `generator` at `step`."""
        sample_fn = self._sample_functions.get(id(generator))
        if sample_fn is None:
            sample_fn = self._sample_functions[id(generator)] = generator_sample_function(generator)
        start = time.perf_counter()
        result = evaluate(
            sample_fn, self.classifier, workdir=self.workdir, model_config=self.config.model,
            dataset=self.dataset, split=self.split, num_samples=self.num_samples,
            batch_size=self.batch_size, data_dir=self.config.data.data_dir or None, seed=self.seed)
        logging.info("step %d: FID %.4f, IS %.4f (%d samples, classifier %s)", step, result["fid"],
                     result["inception_score"], self.num_samples, self.classifier_source)
        return {
            "fid": result["fid"],
            "inception_score": result["inception_score"],
            "num_samples": self.num_samples,
            "step": int(step),
            "seconds": round(time.perf_counter() - start, 3),
        }


def make_periodic_evaluator(config: ExperimentConfig, workdir, classifier_source=None, **options):
    """A PeriodicEvaluator for training, its classifier already loaded (see PeriodicEvaluator for errors);
    `options` are its keyword arguments (num_samples, cache_directory, ...)."""
    return PeriodicEvaluator(config, workdir, classifier_source, **options)


# ----------------------------------------------------------------------------------------------
# A work directory's generator, as the evaluation tool scores it.


def evaluate_workdir(workdir, *, num_samples, batch_size, checkpoint=None, saved_model=None, use_ema=True,
                     classifier_source=None, classifier_cache_directory=None, resize_to_inception_size=False,
                     network_timeout_seconds=inception.DEFAULT_NETWORK_TIMEOUT_SECONDS, dataset=None,
                     split=None, data_dir=None, seed=0, progress=None, log=logging.info):
    """IS and FID of a work directory's generator (a checkpoint, or an export), with provenance and timings.

    Args:
        workdir: work directory (config, checkpoints, statistics cache); any tf.io.gfile path.
        num_samples, batch_size, seed: see `evaluate`.
        checkpoint: checkpoint prefix or directory (default: the latest); not with `saved_model`.
        saved_model: directory of an exported generator (`ylg_tf.export`) to score instead.
        use_ema: score the moving average of G's weights when the checkpoint has one.
        classifier_source: "builtin", a TF-Hub URL or a module directory (default:
            `default_classifier_source(dataset)`).
        classifier_cache_directory: cache root of the built-in classifier (needed for "builtin").
        resize_to_inception_size, network_timeout_seconds: see `load_evaluation_classifier`.
        dataset, split, data_dir: the real images; default: the config's data.dataset, data.eval_split,
            data.data_dir.
        progress: optional callback(phase, done, total), e.g. `ylg_tf.progress.ProgressLine`.
        log: callback(message) for status lines (classifier, its training, statistics cache).

    Returns:
        `evaluate`'s dict plus workdir, step (None for an export), checkpoint, saved_model, generator and
        timings restore_seconds, load_classifier_seconds, total_seconds.
    """
    start = time.perf_counter()
    check_sample_counts(num_samples, batch_size)
    if saved_model and checkpoint:
        raise EvaluationError(
            f"give a checkpoint or an exported generator (saved_model), not both: checkpoint={checkpoint!r}, "
            f"saved_model={saved_model!r}")
    if saved_model:
        config = workdirs.load_config(workdir)
        sample_fn = exported_sample_function(export.load_exported_generator(saved_model), config.model)
        step, checkpoint_path, generator_name = None, None, "export"
    else:
        config, generator, _, step = workdirs.restore_networks(workdir, checkpoint, use_ema)
        checkpoint_path = workdirs.resolve_checkpoint(workdir, checkpoint)
        sample_fn = generator_sample_function(generator)
        generator_name = generator.name
    restore_seconds = time.perf_counter() - start

    dataset = dataset or config.data.dataset
    split = split or config.data.eval_split
    data_dir = config.data.data_dir if data_dir is None else data_dir
    source = classifier_source or default_classifier_source(dataset)
    loading_start = time.perf_counter()
    log(f"classifier: {source}")
    classifier = load_evaluation_classifier(
        source, image_size=config.model.image_size, resize_to_inception_size=resize_to_inception_size,
        cache_directory=classifier_cache_directory, network_timeout_seconds=network_timeout_seconds,
        training_progress=lambda done, loss: log(
            f"training the built-in classifier (once, then cached): step {done}/"
            f"{builtin_classifier.TRAINING_STEPS}, loss {loss:.4f}"))
    load_classifier_seconds = time.perf_counter() - loading_start

    result = evaluate(
        sample_fn, classifier, workdir=workdir, model_config=config.model, dataset=dataset, split=split,
        num_samples=num_samples, batch_size=batch_size, data_dir=data_dir or None, seed=seed,
        progress=progress)
    statistics = result["real_statistics"]
    log(f"real-data statistics: {'reused' if statistics['reused'] else 'computed and cached in'} "
        f"{statistics['path']}")
    result.update(
        workdir=files.absolute_path(workdir),
        step=step,
        checkpoint=checkpoint_path,
        saved_model=files.absolute_path(saved_model) if saved_model else None,
        generator=generator_name,
    )
    result["timings"].update(
        restore_seconds=round(restore_seconds, 3),
        load_classifier_seconds=round(load_classifier_seconds, 3),
        total_seconds=round(time.perf_counter() - start, 3),
    )
    return result


def default_result_path(result):
    """<workdir>/evaluation/step_<step>.json, or export.json for an exported generator."""
    name = "export.json" if result.get("step") is None else f"step_{result['step']}.json"
    return os.path.join(result["workdir"], EVALUATION_DIRECTORY, name)


def write_result(result, path=None):
    """Writes an `evaluate_workdir` result as JSON (atomically, any tf.io.gfile path); returns the path."""
    path = os.fspath(path) if path else default_result_path(result)
    return files.write_text_atomically(path, json.dumps(result, indent=2, sort_keys=True) + "\n")


def result_summary(result):
    """One line: FID, IS, sample count, what was scored and by which classifier."""
    accuracy = result["classifier"].get("held_out_accuracy")
    classifier_note = f", classifier held-out accuracy {accuracy:.3f}" if accuracy is not None else ""
    generator_note = (f"step {result['step']}" if result.get("step") is not None
                      else f"export {result.get('saved_model')}")
    return (f"FID {result['fid']:.4f}  IS {result['inception_score']:.4f}  ({result['num_samples']} samples, "
            f"{generator_note}, classifier {result['inception']}{classifier_note})")
