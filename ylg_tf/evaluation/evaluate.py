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

`evaluate_workdir` is the whole job of tools/evaluate.py (restore or load the generator, load the
classifier, score, record provenance and timings); `write_result` stores its JSON. Every file is read and
written through tf.io.gfile, so the work directory may be on gs://.
"""

import json
import logging
import os
import time

from ylg_tf.config import ModelConfig
from ylg_tf.evaluation import builtin_classifier, inception, metrics, protocols
from ylg_tf.evaluation.classifiers import (
    Classifier, EvaluationError, classify_in_batches, default_classifier_source, load_evaluation_classifier)
from ylg_tf.evaluation.real_statistics import (
    EVALUATION_DIRECTORY, make_real_batches, real_data_provenance, real_statistics, real_statistics_path)
from ylg_tf.evaluation.samples import (
    check_sample_counts, exported_sample_function, generator_sample_function, sample_latents)
from ylg_tf.storage import export, files
from ylg_tf.storage import workdir as workdirs


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
        outputs = classify_in_batches(function, sample_fn(z, labels), batch_size)
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


def evaluate(sample_fn, classifier, *, workdir, model_config: ModelConfig, dataset, split, num_samples,
             batch_size, data_dir=None, seed=0, progress=None, protocol=protocols.DEFAULT_PROTOCOL,
             quantised_images=False, log=None):
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
        log: optional callback(message), given the one-line warning when the evaluation departs from
            the protocol, before any image is scored.

    Returns:
        A JSON-serialisable dict: fid, inception_score, num_samples, batch_size, seed, dataset, split,
        data_dir, image_size, inception (the classifier source), classifier (its description),
        protocol (the protocol's parameters), comparable (no deviation from the protocol), deviations
        (a phrase per deviation), real_statistics {path, reused}, timings {real_statistics_seconds,
        sampling_seconds, metric_seconds}.
    """
    if not isinstance(classifier, Classifier):
        raise EvaluationError(f"classifier must be a Classifier, got {type(classifier).__name__}")
    check_sample_counts(num_samples, batch_size)
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
        "protocol": protocol.to_dict(),
        "comparable": not deviations,
        "deviations": deviations,
        "real_statistics": {"path": cache_path, "reused": reused},
        "timings": {"real_statistics_seconds": round(real_seconds, 3), **scores["timings"]},
    }


def evaluate_workdir(workdir, *, batch_size, num_samples=None, protocol=protocols.DEFAULT_PROTOCOL,
                     checkpoint=None, saved_model=None, use_ema=True, classifier_source=None,
                     classifier_cache_directory=None, resize=None,
                     network_timeout_seconds=inception.DEFAULT_NETWORK_TIMEOUT_SECONDS, dataset=None,
                     split=None, data_dir=None, seed=0, progress=None, log=logging.info):
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
        progress=progress, protocol=protocol, quantised_images=bool(saved_model), log=log)
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
    return (f"FID {result['fid']:.4f}  IS {result['inception_score']:.4f}  ({result['num_samples']} samples, "
            f"{generator_note}, classifier {result['inception']}{classifier_note}{protocol_note})")
