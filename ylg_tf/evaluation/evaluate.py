"""Scoring a generator: Inception Score and FID of its samples against cached real-data statistics.

What is computed (spec section 5, as the originals through TF-GAN):
- Generated images come from G in inference mode (`training=False`) with z ~ N(0, I) and labels uniform
  over the generator's classes, drawn with stateless ops keyed by (seed, batch index)
  (`ylg_tf.evaluation.samples.sample_latents`, the evaluation keys of `ylg_tf.latents`), so a run is
  reproducible and any sample can be recomputed.
- They are scored by a classifier of `ylg_tf.evaluation.classifiers` (the TF-GAN Inception module, or the
  built-in classifier for the built-in dataset).
- How the images are resized to Inception's 299x299, how many are scored and which real ones: the
  evaluation protocol's choice (`ylg_tf.evaluation.protocols`). "standard" (the default): 50,000 samples,
  the module resizes the images itself (TF-GAN 2.x's self-attention example, tensorflow/gan
  tensorflow_gan/examples/self_attention_estimator/eval_lib.py: "Image resizing happens inside the Inception
  SavedModel"). "ylg": what the YLG code did (giannisdaras/ylg, branch `train`, ylg/eval_lib.py
  `get_activations`): 32,768 samples, real and generated images resized to 299x299 by the evaluation itself
  with TF1's bilinear resize (`tf.compat.v1.image.resize`, no half-pixel centres), real images the first
  32,768 of the validation split. A sample count, split or resize other than the protocol's is allowed and
  recorded: the result's `deviations` list it and `comparable` is false.
- IS (one split) from "logits" and FID (float64) from "pool_3", with the streaming accumulators of
  `ylg_tf.evaluation.metrics`: memory is O(K + D^2) whatever the number of samples. They compute what
  `tfgan.eval.classifier_score_from_logits` and `tfgan.eval.frechet_classifier_distance_from_activations`
  compute on the full arrays (tests/evaluation/test_metrics.py and test_evaluate.py check this).
- The real images' statistics come from the cache of `ylg_tf.evaluation.real_statistics`.
- On request (`extra_metrics`, SAMPLE_QUALITY_METRICS), the metrics that need every feature row
  (`ylg_tf.evaluation.sample_metrics`: KID, precision/recall, density/coverage, per-class FID) are scored on
  the same generated images and the same first real images (their features: one more classifier pass).

`evaluate_workdir` is the whole job of tools/evaluate.py (restore or load the generator, load the
classifier, score, record provenance and timings); `write_result` stores its JSON. Every file is read and
written through tf.io.gfile, so the work directory may be on gs://.
"""

import json
import logging
import os
import time

import numpy as np

from ylg_tf.config import ModelConfig
from ylg_tf.evaluation import builtin_classifier, inception, metrics, protocols, sample_metrics
from ylg_tf.evaluation.class_accuracy import ClassAccuracyAccumulator, builtin_classifier_knows_the_classes
from ylg_tf.evaluation.classifiers import (
    Classifier, EvaluationError, default_classifier_source, load_evaluation_classifier)
from ylg_tf.evaluation.real_statistics import (
    EVALUATION_DIRECTORY, make_real_batches, real_data_provenance, real_features, real_statistics,
    real_statistics_path)
from ylg_tf.evaluation.samples import (
    check_sample_counts, classified_batches, exported_sample_function, generator_sample_function)
from ylg_tf.storage import export, files
from ylg_tf.storage import workdir as workdirs

# The metrics beyond IS and FID that need every feature row (`ylg_tf.evaluation.sample_metrics`).
SAMPLE_QUALITY_METRICS = ("kid", "precision_recall", "density_coverage", "per_class_fid")


def evaluate_generator(sample_fn, classifier, num_samples, batch_size, num_classes, z_dim,
                       real_statistics, seed=0, progress=None, keep_features=False, score_classes=False):
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
        keep_features: also return the generated images' pool_3 rows and labels (for `sample_quality_scores`).
        score_classes: also return the class-conditional accuracy (`ylg_tf.evaluation.class_accuracy`), for a
            classifier whose logits are the generator's classes.

    Returns:
        {"fid": float, "inception_score": float, "num_samples": int,
         "timings": {"sampling_seconds": ..., "metric_seconds": ...}} (sampling includes classifying), and
        with keep_features "features": (pool_3 float32 [N, D], labels int32 [N]), with score_classes
        "class_accuracy": a ClassAccuracy.
    """
    check_sample_counts(num_samples, batch_size)
    start = time.perf_counter()
    if not isinstance(real_statistics, metrics.ActivationStatistics):
        raise EvaluationError(
            f"real_statistics must be metrics.ActivationStatistics, got {type(real_statistics).__name__}")
    function = classifier.function if isinstance(classifier, Classifier) else classifier
    logits_accumulator = None
    generated_statistics = None
    kept_features, kept_labels = [], []
    class_accumulator = ClassAccuracyAccumulator(num_classes) if score_classes else None
    done = 0
    for outputs, labels in classified_batches(sample_fn, function, num_samples, batch_size, num_classes, z_dim, seed):
        logits = outputs[inception.LOGITS]  # [rows, K]
        pool = outputs[inception.POOL]  # [rows, D]
        if logits_accumulator is None:
            logits_accumulator = metrics.LogitsAccumulator(logits.shape[1])
            generated_statistics = metrics.ActivationStatistics(pool.shape[1])
        logits_accumulator.update(logits)
        generated_statistics.update(pool)
        if class_accumulator is not None:
            class_accumulator.update(logits, labels)
        if keep_features:
            kept_features.append(np.asarray(pool, np.float32))
            kept_labels.append(labels)
        done += len(labels)
        if progress is not None:
            progress(done, num_samples)
    sampling_seconds = time.perf_counter() - start
    fid = metrics.frechet_distance_from_statistics(generated_statistics, real_statistics)
    inception_score = metrics.inception_score_from_accumulator(logits_accumulator)
    scores = {
        "fid": fid,
        "inception_score": inception_score,
        "num_samples": num_samples,
        "timings": {
            "sampling_seconds": round(sampling_seconds, 3),
            "metric_seconds": round(time.perf_counter() - start - sampling_seconds, 3),
        },
    }
    if keep_features:
        scores["features"] = (np.concatenate(kept_features), np.concatenate(kept_labels))
    if class_accumulator is not None:
        scores["class_accuracy"] = class_accumulator.result()
    return scores


def check_metric_names(names):
    """The names, checked against SAMPLE_QUALITY_METRICS (EvaluationError naming an unknown one)."""
    names = tuple(names)
    unknown = [name for name in names if name not in SAMPLE_QUALITY_METRICS]
    if unknown:
        raise EvaluationError(f"unknown metric {unknown[0]!r}: choose from {', '.join(SAMPLE_QUALITY_METRICS)}")
    return names


def sample_quality_scores(names, real, generated, num_classes, seed=0):
    """The metrics of `ylg_tf.evaluation.sample_metrics` named in `names` (SAMPLE_QUALITY_METRICS).

    real, generated: (pool_3 features [N, D], labels [N]). KID compares generated with real images over
    subsets of min(1000, N) rows; per-class FID covers each of the generator's classes with at least 2
    images on both sides (the others are listed in per_class_fid_skipped).
    Returns a JSON-ready dict: kid {mean, standard_deviation, standard_error, subset_size, num_subsets},
    precision, recall, density, coverage, per_class_fid {"class": FID}, per_class_fid_skipped [classes].
    """
    (real_pool, real_labels), (generated_pool, generated_labels) = real, generated
    scores = {}
    if "kid" in names:
        subset_size = min(sample_metrics.DEFAULT_KID_SUBSET_SIZE, len(real_pool), len(generated_pool))
        kid = sample_metrics.kernel_inception_distance(
            generated_pool, real_pool, subset_size=subset_size, seed=seed)
        scores["kid"] = dict(kid._asdict(), subset_size=subset_size,
                             num_subsets=sample_metrics.DEFAULT_KID_NUM_SUBSETS)
    if "precision_recall" in names:
        scores.update(sample_metrics.precision_and_recall(real_pool, generated_pool)._asdict())
    if "density_coverage" in names:
        scores.update(sample_metrics.density_and_coverage(real_pool, generated_pool)._asdict())
    if "per_class_fid" in names:
        real_counts = np.bincount(real_labels, minlength=num_classes)[:num_classes]
        generated_counts = np.bincount(generated_labels, minlength=num_classes)[:num_classes]
        covered = [label for label in range(num_classes) if min(real_counts[label], generated_counts[label]) >= 2]
        real_rows, generated_rows = np.isin(real_labels, covered), np.isin(generated_labels, covered)
        distances = sample_metrics.per_class_frechet_distance(
            real_pool[real_rows], real_labels[real_rows],
            generated_pool[generated_rows], generated_labels[generated_rows]) if covered else {}
        scores["per_class_fid"] = {str(label): value for label, value in distances.items()}
        scores["per_class_fid_skipped"] = [label for label in range(num_classes) if label not in covered]
    return scores


def evaluate(sample_fn, classifier, *, workdir, model_config: ModelConfig, dataset, split, num_samples,
             batch_size, data_dir=None, seed=0, progress=None, protocol=protocols.DEFAULT_PROTOCOL,
             quantised_images=False, extra_metrics=(), log=None):
    """Real-data statistics (cached in `workdir`) and the generator's IS and FID, with timings.

    Args:
        sample_fn: see `evaluate_generator`.
        classifier: a Classifier (`load_evaluation_classifier`).
        workdir: work directory holding the statistics cache.
        model_config: the generator's config (image_size, num_classes, z_dim).
        dataset, split, data_dir: the real images (see `ylg_tf.data.datasets`).
        num_samples: images scored on each side.
        batch_size: images per call.
        seed: latent seed of the generated samples.
        progress: optional callback(phase, done, total), phase "real" or "generated".
        protocol: the evaluation protocol (name or `protocols.EvaluationProtocol`) the result is compared
            with; the other arguments say what is actually done.
        quantised_images: whether `sample_fn` returns quantised images (an exported generator's uint8).
        extra_metrics: names from SAMPLE_QUALITY_METRICS, scored on the same images (`sample_quality_scores`;
            the real images' features take one more classifier pass, phase "real features").
        log: optional callback(message), given the one-line warning when the evaluation departs from
            the protocol, before any image is scored.

    Returns:
        A JSON-serialisable dict: fid, inception_score, num_samples, batch_size, seed, dataset, split,
        data_dir, image_size, inception (the classifier source), classifier (its description),
        protocol (the protocol's parameters), comparable (no deviation from the protocol), deviations
        (a phrase per deviation), real_statistics {path, reused}, timings {real_statistics_seconds,
        sampling_seconds, metric_seconds}, class_accuracy ({accuracy, per_class, num_samples} of
        `ylg_tf.evaluation.class_accuracy` when the built-in classifier scores a built-in-data generator, else
        None); with extra_metrics, their scores and timings real_features_seconds, sample_quality_seconds.
    """
    if not isinstance(classifier, Classifier):
        raise EvaluationError(f"classifier must be a Classifier, got {type(classifier).__name__}")
    check_sample_counts(num_samples, batch_size)
    extra_metrics = check_metric_names(extra_metrics)
    protocol = protocols.get_protocol(protocol)
    deviations = protocols.deviations(
        protocol, num_samples=num_samples, split=split, resize=classifier.description.get("resize"),
        classifier_kind=classifier.description.get("kind"), quantised_images=quantised_images)
    warning = protocols.not_comparable_warning(protocol, deviations)
    if warning and log is not None:
        log(warning)
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
    score_classes = classifier.description.get("kind") == "builtin" and builtin_classifier_knows_the_classes(
        dataset, model_config.num_classes)
    scores = evaluate_generator(
        sample_fn, classifier, num_samples, batch_size, model_config.num_classes, model_config.z_dim,
        real, seed=seed, progress=phase_progress("generated"), keep_features=bool(extra_metrics),
        score_classes=score_classes)
    extra_scores, extra_timings = {}, {}
    if extra_metrics:
        start = time.perf_counter()
        real_rows = real_features(
            classifier,
            lambda: make_real_batches(dataset, split=split, image_size=image_size, num_samples=num_samples,
                                      batch_size=batch_size, data_dir=data_dir, with_labels=True),
            num_samples, progress=phase_progress("real features"))
        extra_timings["real_features_seconds"] = round(time.perf_counter() - start, 3)
        start = time.perf_counter()
        extra_scores = sample_quality_scores(
            extra_metrics, real_rows, scores.pop("features"), model_config.num_classes, seed=seed)
        extra_timings["sample_quality_seconds"] = round(time.perf_counter() - start, 3)
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
        "protocol": protocol.to_dict(),
        "comparable": not deviations,
        "deviations": deviations,
        "real_statistics": {"path": cache_path, "reused": reused},
        "class_accuracy": scores["class_accuracy"].to_dict() if score_classes else None,
        **extra_scores,
        "timings": {"real_statistics_seconds": round(real_seconds, 3), **scores["timings"], **extra_timings},
    }


def evaluate_workdir(workdir, *, batch_size, num_samples=None, protocol=protocols.DEFAULT_PROTOCOL,
                     checkpoint=None, saved_model=None, use_ema=True, classifier_source=None,
                     classifier_cache_directory=None, resize=None,
                     network_timeout_seconds=inception.DEFAULT_NETWORK_TIMEOUT_SECONDS, dataset=None,
                     split=None, data_dir=None, seed=0, extra_metrics=(), progress=None, log=logging.info):
    """IS and FID of a work directory's generator (a checkpoint, or an export), with provenance and timings.

    Args:
        workdir: work directory (config, checkpoints, statistics cache); any tf.io.gfile path.
        batch_size, seed: see `evaluate`.
        num_samples: images scored on each side; default: the protocol's count.
        protocol: the evaluation protocol's name (`ylg_tf.evaluation.protocols`) or the protocol; it
            gives the defaults of num_samples, resize and split.
        checkpoint: checkpoint prefix or directory (default: the latest); not with `saved_model`.
        saved_model: directory of an exported generator (`ylg_tf.export`) to score instead.
        use_ema: score the moving average of G's weights when the checkpoint has one.
        classifier_source: "builtin", a TF-Hub URL or a module directory (default:
            `default_classifier_source(dataset)`).
        classifier_cache_directory: cache root of the built-in classifier (needed for "builtin").
        resize: how images reach Inception (see `load_evaluation_classifier`); default: the protocol's.
        network_timeout_seconds: see `load_evaluation_classifier`.
        dataset, split, data_dir: the real images; default: the config's data.dataset, the protocol's
            split (else the config's data.eval_split), the config's data.data_dir.
        extra_metrics: see `evaluate`.
        progress: optional callback(phase, done, total), e.g. `ylg_tf.progress.ProgressLine`.
        log: callback(message) for status lines (classifier, its training, statistics cache).

    Returns:
        `evaluate`'s dict plus workdir, step (None for an export), checkpoint, saved_model, generator and
        timings restore_seconds, load_classifier_seconds, total_seconds.
    """
    start = time.perf_counter()
    protocol = protocols.get_protocol(protocol)
    num_samples = protocol.num_samples if num_samples is None else num_samples
    resize = resize or protocol.resize
    check_sample_counts(num_samples, batch_size)
    extra_metrics = check_metric_names(extra_metrics)
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
    split = split or protocol.split or config.data.eval_split
    data_dir = config.data.data_dir if data_dir is None else data_dir
    source = classifier_source or default_classifier_source(dataset)
    loading_start = time.perf_counter()
    log(f"classifier: {source}")
    classifier = load_evaluation_classifier(
        source, image_size=config.model.image_size, resize=resize,
        cache_directory=classifier_cache_directory, network_timeout_seconds=network_timeout_seconds,
        training_progress=lambda done, loss: log(
            f"training the built-in classifier (once, then cached): step {done}/"
            f"{builtin_classifier.TRAINING_STEPS}, loss {loss:.4f}"))
    load_classifier_seconds = time.perf_counter() - loading_start

    result = evaluate(
        sample_fn, classifier, workdir=workdir, model_config=config.model, dataset=dataset, split=split,
        num_samples=num_samples, batch_size=batch_size, data_dir=data_dir or None, seed=seed,
        progress=progress, protocol=protocol, quantised_images=bool(saved_model), extra_metrics=extra_metrics,
        log=log)
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
    protocol = result.get("protocol", {}).get("name")
    protocol_note = "" if protocol is None else (
        f", protocol {protocol}{'' if result.get('comparable') else ' (not comparable)'}")
    class_accuracy = (result.get("class_accuracy") or {}).get("accuracy")
    class_note = f"  class accuracy {class_accuracy:.1%}" if class_accuracy is not None else ""
    extra = class_note + "".join(
        f"  {label} {value:.4f}" for label, value in (
            ("KID", result.get("kid", {}).get("mean")), ("precision", result.get("precision")),
            ("recall", result.get("recall")), ("density", result.get("density")),
            ("coverage", result.get("coverage"))) if value is not None)
    return (f"FID {result['fid']:.4f}  IS {result['inception_score']:.4f}{extra}  ({result['num_samples']} samples, "
            f"{generator_note}, classifier {result['inception']}{classifier_note}{protocol_note})")
