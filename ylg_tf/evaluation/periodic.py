"""Scoring the training generator during a run: the classifier is loaded and checked before training
starts, the real-data statistics are computed on the first evaluation and kept, and the run's evaluation
protocol (`config.training.eval_protocol`) chooses the real images' split and the resize to 299.
"""

import logging
import os
import time

from ylg_tf.config import ExperimentConfig
from ylg_tf.evaluation.classifiers import (
    EvaluationError, default_classifier_source, load_evaluation_classifier)
from ylg_tf.evaluation import protocols
from ylg_tf.evaluation.evaluate import evaluate
from ylg_tf.evaluation.samples import check_sample_counts, generator_sample_function


class PeriodicEvaluator:
    """Scores the training generator when called; when that is, is the run's schedule's decision
    (`ylg_tf.training.schedule`: every `config.training.eval_every` steps and at the end; 0: never).

    The classifier is loaded (and checked on images of the model's size) when the evaluator is made, so
    a bad classifier source fails before training starts, not after `eval_every` steps. The real-data
    statistics are computed on the first evaluation and kept; they are cached in the work directory like
    the evaluation tool's (same provenance, so the tool and training share them when the sample counts
    match).

    The protocol `config.training.eval_protocol` gives the split (else `config.data.eval_split`) and the
    resize; `resize` overrides the latter. Each result says whether it is comparable with the protocol
    (a sample count other than the protocol's is not; the reason is logged once, at the first evaluation).

    Raises (when eval_every > 0): inception.InceptionUnavailableError (an OSError) when the classifier
    cannot be reached, loaded or called; EvaluationError for bad arguments, e.g. the built-in classifier
    without a cache_directory.
    """

    def __init__(self, config: ExperimentConfig, workdir, classifier_source=None, *, num_samples=None,
                 batch_size=64, seed=0, cache_directory=None, resize=None):
        if not isinstance(config, ExperimentConfig):
            raise EvaluationError(f"config must be an ExperimentConfig, got {type(config).__name__}")
        self.config = config
        self.workdir = os.fspath(workdir)
        self.protocol = protocols.get_protocol(config.training.eval_protocol)
        self.dataset = config.data.dataset
        self.split = self.protocol.split or config.data.eval_split
        self.classifier_source = classifier_source or default_classifier_source(self.dataset)
        self.num_samples = num_samples or config.training.eval_num_samples
        self.batch_size = min(batch_size, self.num_samples)
        check_sample_counts(self.num_samples, self.batch_size)
        self.seed = seed
        self.cache_directory = cache_directory
        self.resize = resize or self.protocol.resize
        self._classifier = None
        self._sample_functions = {}
        self._warned = False
        if config.training.eval_every > 0:
            self._classifier = self.classifier  # fail fast: load and check it now

    @property
    def classifier(self):
        if self._classifier is None:
            self._classifier = load_evaluation_classifier(
                self.classifier_source, image_size=self.config.model.image_size,
                resize=self.resize,
                cache_directory=self.cache_directory)
        return self._classifier

    def _log_warning_once(self, message):
        if not self._warned:
            logging.warning("%s", message)
            self._warned = True

    def __call__(self, generator, step):
        """{"fid", "inception_score", "num_samples", "step", "seconds", "protocol" (its name), "comparable"}
        of `generator` at `step`, and "class_accuracy" where the classifier names the generator's classes."""
        sample_fn = self._sample_functions.get(id(generator))
        if sample_fn is None:
            sample_fn = self._sample_functions[id(generator)] = generator_sample_function(generator)
        start = time.perf_counter()
        result = evaluate(
            sample_fn, self.classifier, workdir=self.workdir, model_config=self.config.model,
            dataset=self.dataset, split=self.split, num_samples=self.num_samples,
            batch_size=self.batch_size, data_dir=self.config.data.data_dir or None, seed=self.seed,
            protocol=self.protocol, log=self._log_warning_once)
        logging.info("step %d: FID %.4f, IS %.4f (%d samples, classifier %s)", step, result["fid"],
                     result["inception_score"], self.num_samples, self.classifier_source)
        scores = {
            "fid": result["fid"],
            "inception_score": result["inception_score"],
            "num_samples": self.num_samples,
            "step": int(step),
            "seconds": round(time.perf_counter() - start, 3),
            "protocol": self.protocol.name,
            "comparable": result["comparable"],
        }
        if result["class_accuracy"] is not None:  # the built-in classifier on a built-in-data run
            scores["class_accuracy"] = result["class_accuracy"]["accuracy"]
        return scores


def make_periodic_evaluator(config: ExperimentConfig, workdir, classifier_source=None, **options):
    """A PeriodicEvaluator for training, its classifier already loaded (see PeriodicEvaluator for errors);
    `options` are its keyword arguments (num_samples, cache_directory, ...)."""
    return PeriodicEvaluator(config, workdir, classifier_source, **options)
