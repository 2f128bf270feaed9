"""The generator's inputs for pictures and inversion: class labels, seeded latents, and G run over them.

Latents here are NumPy draws from `np.random.default_rng(seed)` (seed: an int or a list of ints), with an
optional truncation that resamples every entry with |z| > T until none is left. (Evaluation draws its
latents differently, with stateless TF ops keyed by batch: `ylg_tf.evaluation.samples.sample_latents`.)

The layouts of the generate tool's pictures live here too, so anyone can recompute a picture's latents:
a class grid draws its latents from [seed, 0], row after row; interpolations draw their end points from
[seed, 1], two per label, and walk the straight line between them (as the original's explore_latent).
"""

import numpy as np
import tensorflow as tf

DEFAULT_LABEL_COUNT = 8  # classes shown when none are named
CLASS_GRID_STREAM = 0
INTERPOLATION_STREAM = 1


def check_label(label, num_classes):
    """The label as an int, when it is a class of a model with num_classes classes."""
    if isinstance(label, bool) or not isinstance(label, (int, np.integer)) or not 0 <= label < num_classes:
        raise ValueError(
            f"label {label!r} is out of range: the model has {num_classes} classes (0 to {num_classes - 1})"
        )
    return int(label)


def resolve_labels(labels, num_classes):
    """The checked labels, or the first DEFAULT_LABEL_COUNT classes when labels is None."""
    if labels is None:
        return list(range(min(num_classes, DEFAULT_LABEL_COUNT)))
    labels = list(labels)
    if not labels:
        raise ValueError("labels=[] names no class; give at least one (or None for the first classes)")
    return [check_label(label, num_classes) for label in labels]


def standard_normal_latents(count, z_dim, seed, truncation=None):
    """[count, z_dim] float32 N(0, 1) latents; with truncation T, entries with |z| > T are resampled."""
    if int(count) <= 0 or int(z_dim) <= 0:
        raise ValueError(f"count={count!r} and z_dim={z_dim!r} must be positive integers")
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation={truncation!r} must be positive (or None for no truncation)")
    random = np.random.default_rng(seed)
    latents = random.standard_normal((int(count), int(z_dim)))
    if truncation is not None:
        outside = np.abs(latents) > truncation
        while outside.any():
            latents[outside] = random.standard_normal(int(outside.sum()))
            outside = np.abs(latents) > truncation
    return latents.astype(np.float32)


def interpolate_latents(start, end, num_steps):
    """Straight line from start to end (both included), as the original's explore_latent: [num_steps, z_dim]."""
    if int(num_steps) < 2:
        raise ValueError(f"num_steps={num_steps!r} must be at least 2 (the two end points)")
    start, end = np.asarray(start, np.float32), np.asarray(end, np.float32)
    if start.shape != end.shape or start.ndim != 1:
        raise ValueError(f"start and end must be latents of one shape [z_dim], got {start.shape} and {end.shape}")
    ratios = np.linspace(0.0, 1.0, int(num_steps), dtype=np.float32)[:, None]  # [steps, 1]
    return (1.0 - ratios) * start + ratios * end


def class_grid_inputs(labels, samples_per_label, z_dim, seed, truncation=None):
    """Latents [L * n, z_dim] and labels [L * n] of a class grid: n samples per label, label after label."""
    if int(samples_per_label) <= 0:
        raise ValueError(f"samples_per_label={samples_per_label!r} must be a positive integer")
    latents = standard_normal_latents(
        len(labels) * samples_per_label, z_dim, [seed, CLASS_GRID_STREAM], truncation
    )
    return latents, np.repeat(np.asarray(labels, np.int32), samples_per_label)


def interpolation_inputs(labels, num_steps, z_dim, seed, truncation=None):
    """Latents [L * steps, z_dim] and labels [L * steps]: per label, a straight line between two latents."""
    ends = standard_normal_latents(2 * len(labels), z_dim, [seed, INTERPOLATION_STREAM], truncation)
    latents = np.concatenate(
        [interpolate_latents(ends[2 * row], ends[2 * row + 1], num_steps) for row in range(len(labels))]
    )
    return latents, np.repeat(np.asarray(labels, np.int32), num_steps)


def generate_images(generator, latents, labels, batch_size=16, progress=None):
    """Images [N, S, S, 3] in [-1, 1] of G in inference mode, in batches of batch_size.

    progress(count) is called after each batch with the number of images it made.
    """
    latents, labels = np.asarray(latents, np.float32), np.asarray(labels, np.int32)
    if latents.ndim != 2 or labels.shape != latents.shape[:1]:
        raise ValueError(f"need latents [N, z_dim] and labels [N], got shapes {latents.shape} and {labels.shape}")
    images = []
    for start in range(0, len(latents), batch_size):
        batch = slice(start, start + batch_size)
        images.append(generator((latents[batch], tf.constant(labels[batch])), training=False).numpy())
        if progress is not None:
            progress(len(latents[batch]))
    return np.concatenate(images)
