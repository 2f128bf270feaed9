"""Generated samples for scoring: the sample and batch counts, the latents of each batch (drawn by
`ylg_tf.latents`), and `sample(z, labels) -> images` from a Keras generator or from an exported generator's
serving signature.
"""

import numpy as np
import tensorflow as tf

from ylg_tf.config import ModelConfig
from ylg_tf.evaluation.classifiers import EvaluationError, classify_in_batches
from ylg_tf.latents import evaluation_latents

MINIMUM_SAMPLES = 2  # a covariance needs two samples


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
    """(z float32 [batch_size, z_dim] ~ N(0, I), labels int32 [batch_size] uniform in [0, num_classes)) of
    batch `batch_index`: `ylg_tf.latents.evaluation_latents`, keyed by (seed, batch_index)."""
    return evaluation_latents(seed, batch_index, batch_size, z_dim, num_classes)


def classified_batches(sample_fn, classifier_function, num_samples, batch_size, num_classes, z_dim, seed=0):
    """Yields (classifier outputs {"logits", "pool_3"} as NumPy arrays, labels int32) of `num_samples`
    generated images, batch after batch: batch i is `sample_fn` of `sample_latents(i, ...)`, and the last batch
    keeps its first rows only."""
    check_sample_counts(num_samples, batch_size)
    done, batch_index = 0, 0
    while done < num_samples:
        z, labels = sample_latents(batch_index, batch_size, num_classes, z_dim, seed)
        rows = min(batch_size, num_samples - done)
        outputs = classify_in_batches(classifier_function, sample_fn(z, labels), batch_size)
        yield {field: values[:rows] for field, values in outputs.items()}, np.asarray(labels)[:rows].astype(np.int32)
        done += rows
        batch_index += 1


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
