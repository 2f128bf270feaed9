"""The classifier that IS/FID are computed with: loaded from "builtin", a TF-Hub URL or a SavedModel
directory, checked on a batch of the model's images, fingerprinted, and run over images in fixed-size batches.

A classifier maps images [N, H, W, 3] in [-1, 1] to {"logits": [N, K], "pool_3": [N, D]}: the TF-GAN
Inception module (through `ylg_tf.evaluation.inception`) or, for the built-in dataset, the small classifier
of `ylg_tf.evaluation.builtin_classifier`, which has the same interface and goes through the same loading
path. Batches are classified at a fixed size (a shorter last batch is padded, and the padding's outputs
dropped), so every function is traced once.
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

from ylg_tf.evaluation import builtin_classifier, inception, resizing
from ylg_tf.evaluation.inception import is_url, one_line
from ylg_tf.evaluation.resizing import (  # noqa: F401  (callers name the methods through this module)
    RESIZE_BILINEAR_299, RESIZE_BY_MODULE, RESIZE_LEGACY_BILINEAR_299)

BUILTIN_SOURCE = builtin_classifier.SOURCE_NAME


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


def load_evaluation_classifier(source, *, image_size, resize=RESIZE_BY_MODULE,
                               cache_directory=None,
                               network_timeout_seconds=inception.DEFAULT_NETWORK_TIMEOUT_SECONDS,
                               training_progress=None):
    """Loads the classifier named by `source` and checks it on a batch of `image_size` images.

    Args:
        source: "builtin", a TF-Hub URL or a directory holding the module (SavedModel).
        image_size: resolution of the images that will be scored.
        resize: how images reach the module's 299x299 input, a `ylg_tf.evaluation.resizing` method:
            "module" (the module resizes), "bilinear_299" (TF2's bilinear resize here) or
            "legacy_bilinear_299" (TF1's, as the YLG code); ignored for the built-in classifier, which
            works at its own resolution.
        cache_directory: cache root of the built-in classifier (see `ylg_tf.evaluation.builtin_classifier`);
            required for "builtin".
        network_timeout_seconds: how long a URL source may take to answer.
        training_progress: optional callback(step, loss) while the built-in classifier trains (only
            on its first use with a given cache).

    Returns:
        A Classifier.

    Raises:
        inception.InceptionUnavailableError: the module cannot be reached, loaded or called.
    """
    try:
        resizing.check_resize_method(resize)
    except ValueError as error:
        raise EvaluationError(str(error)) from None
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
        resizes_here = resize != RESIZE_BY_MODULE
        function = inception.load_classifier(
            source,
            image_size=inception.INCEPTION_IMAGE_SIZE if resizes_here else None,
            network_timeout_seconds=network_timeout_seconds,
            interpolation=resizing.INTERPOLATION_OF_METHOD.get(resize, resizing.BILINEAR))
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
                    "(resize='bilinear_299' / --resize_to_299, or --protocol=ylg)")
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


def classify_in_batches(classifier_function, images, batch_size):
    """Classifier outputs as float32 NumPy arrays, padding a short batch to `batch_size` first."""
    images = tf.convert_to_tensor(images, tf.float32)
    count = int(images.shape[0])
    if count < batch_size:
        padding = tf.zeros([batch_size - count] + images.shape[1:].as_list(), tf.float32)
        images = tf.concat([images, padding], axis=0)
    outputs = classifier_function(images)
    return {field: np.asarray(outputs[field])[:count] for field in inception.OUTPUT_FIELDS}
