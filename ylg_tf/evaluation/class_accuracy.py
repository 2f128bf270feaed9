"""Class-conditional accuracy: the share of a class-conditional generator's samples that a classifier assigns to
the class they were drawn for.

For the built-in shapes dataset this is the plainest quality number there is: the built-in classifier
(`ylg_tf.evaluation.builtin_classifier`, above 95% on real held-out images) names each generated image's
class, and a generator that draws a red disc when asked for class 0 scores a hit. Chance is 1 / num_classes;
an untrained generator scores about that. It applies only when the classifier's classes are the
generator's (the built-in classifier on the built-in dataset); Inception's 1008 logits are not.

The samples are the evaluation's (`ylg_tf.evaluation.samples.sample_latents`: z ~ N(0, I), labels uniform,
keyed by (seed, batch index)), so two runs scored with the same seed see the same latents.
"""

from typing import NamedTuple, Tuple

import numpy as np

from ylg_tf.evaluation import builtin_classifier, inception
from ylg_tf.evaluation.samples import classified_batches, generator_sample_function

DEFAULT_NUM_SAMPLES = 1000
DEFAULT_BATCH_SIZE = 250


def builtin_classifier_knows_the_classes(dataset, num_classes):
    """Whether the built-in classifier's classes are a generator's: one trained on the built-in dataset."""
    return dataset == "builtin" and num_classes == builtin_classifier.NUM_CLASSES


class ClassAccuracy(NamedTuple):
    """accuracy: share of all samples classified as their class; per_class: that share per class (NaN for a
    class with no sample); num_samples: how many were scored."""

    accuracy: float
    per_class: Tuple[float, ...]
    num_samples: int

    def to_dict(self):
        """JSON-ready: {"accuracy", "per_class" (None for NaN), "num_samples"}."""
        return {
            "accuracy": self.accuracy,
            "per_class": [None if np.isnan(value) else value for value in self.per_class],
            "num_samples": self.num_samples,
        }


class ClassAccuracyAccumulator:
    """Counts, per class, the samples drawn for it and those the classifier assigns to it."""

    def __init__(self, num_classes):
        if not isinstance(num_classes, int) or num_classes < 1:
            raise ValueError(f"num_classes={num_classes!r} must be a positive integer")
        self.num_classes = num_classes
        self.drawn = np.zeros(num_classes, np.int64)
        self.recognised = np.zeros(num_classes, np.int64)

    def update(self, logits, labels):
        """logits [N, num_classes] of the classifier, labels [N] the classes the samples were drawn for."""
        logits = np.asarray(logits)
        labels = np.asarray(labels).astype(np.int64)
        if logits.ndim != 2 or logits.shape[1] != self.num_classes:
            raise ValueError(
                f"logits of shape {logits.shape} do not name the generator's {self.num_classes} classes")
        if labels.shape != (logits.shape[0],):
            raise ValueError(f"labels of shape {labels.shape} do not match logits of shape {logits.shape}")
        hits = np.argmax(logits, axis=-1) == labels
        self.drawn += np.bincount(labels, minlength=self.num_classes)[: self.num_classes]
        self.recognised += np.bincount(labels[hits], minlength=self.num_classes)[: self.num_classes]

    def result(self):
        total = int(self.drawn.sum())
        if total == 0:
            raise ValueError("no sample was scored")
        with np.errstate(invalid="ignore", divide="ignore"):
            per_class = np.where(self.drawn > 0, self.recognised / np.maximum(self.drawn, 1), np.nan)
        return ClassAccuracy(float(self.recognised.sum() / total), tuple(float(value) for value in per_class), total)


def class_accuracy(sample_fn, classifier_function, *, num_classes, z_dim, num_samples=DEFAULT_NUM_SAMPLES,
                   batch_size=DEFAULT_BATCH_SIZE, seed=0):
    """ClassAccuracy of `num_samples` samples of `sample_fn(z, labels) -> images in [-1, 1]`, classified by
    `classifier_function(images) -> {"logits": [N, num_classes], ...}`, in batches of `batch_size`."""
    accumulator = ClassAccuracyAccumulator(num_classes)
    for outputs, labels in classified_batches(
            sample_fn, classifier_function, num_samples, batch_size, num_classes, z_dim, seed):
        accumulator.update(outputs[inception.LOGITS], labels)
    return accumulator.result()


def recognition_line(result, class_names=None):
    """'built-in classifier recognises 87% of samples as their class (1000 samples; weakest: ...)'."""
    per_class = [(value, index) for index, value in enumerate(result.per_class) if not np.isnan(value)]
    weakest = min(per_class) if per_class else None
    weakest_note = ""
    if weakest is not None and weakest[0] < result.accuracy:
        name = class_names[weakest[1]] if class_names else f"class {weakest[1]}"
        weakest_note = f"; weakest {name} {weakest[0]:.0%}"
    return (f"built-in classifier recognises {result.accuracy:.0%} of samples as their class "
            f"({result.num_samples} samples{weakest_note})")


class ClassAccuracyScorer:
    """`scorer(generator) -> ClassAccuracy` of a training run's generator, with the built-in classifier, on the
    same `num_samples` evaluation latents (keyed by `seed`) every time, so a run's curve compares step by step."""

    def __init__(self, classifier_function, model_config, num_samples=DEFAULT_NUM_SAMPLES,
                 batch_size=DEFAULT_BATCH_SIZE, seed=0):
        self.classifier_function = classifier_function
        self.model_config = model_config
        self.num_samples = num_samples
        self.batch_size = min(batch_size, num_samples)
        self.seed = seed
        self._sample_functions = {}  # one traced function per generator

    def __call__(self, generator):
        sample_fn = self._sample_functions.get(id(generator))
        if sample_fn is None:
            sample_fn = self._sample_functions[id(generator)] = generator_sample_function(generator)
        return class_accuracy(
            sample_fn, self.classifier_function,
            num_classes=self.model_config.num_classes, z_dim=self.model_config.z_dim,
            num_samples=self.num_samples, batch_size=self.batch_size, seed=self.seed)


def make_class_accuracy_scorer(config, cache_directory, training_progress=None, **options):
    """A ClassAccuracyScorer for a run on the built-in dataset (the built-in classifier loaded from, or trained
    into, `cache_directory`; `training_progress(step, loss)` while it trains), or None for any other dataset,
    whose classes the built-in classifier does not know. `options`: ClassAccuracyScorer's num_samples,
    batch_size, seed."""
    if not builtin_classifier_knows_the_classes(config.data.dataset, config.model.num_classes):
        return None
    directory, _ = builtin_classifier.load_or_train(cache_directory, progress=training_progress)
    return ClassAccuracyScorer(inception.load_classifier(directory, image_size=None), config.model, **options)
