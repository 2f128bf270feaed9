"""The generator's inputs: every latent of the project is drawn here, from a key, with no random state.

One keyed draw, `keyed_normal(key, shape, engine)`: z ~ N(0, 1) as a pure function of its key, from one of
two engines, so that each caller keeps the numbers it always drew:

* "tensorflow": `tf.random.stateless_normal` keyed by an int64 pair, inside `tf.function` on any device.
  Training, evaluation and the training sample grid draw here (`keyed_latents` adds uniform labels from a
  split of the key).
* "numpy": `np.random.default_rng(key)` (key an int or a list of ints), with an optional truncation that
  resamples every entry with |z| > T until none is left. The tools' pictures and inversion draw here, so
  anyone can recompute their latents with NumPy alone.

The keys, by caller (seed is the run's or the tool's --seed):

* training: [seed, 2 * step + phase], phase DISCRIMINATOR_PHASE or GENERATOR_PHASE; a step's extra
  discriminator updates (discriminator_steps > 1) fold their number u >= 1 into that key;
* evaluation: [seed, batch index];
* the training sample grid (samples/latest.png): [seed, SAMPLE_GRID_STREAM], labels 0, 1, 2, ... cycling
  over the classes;
* tools/generate.py: a class grid draws from [seed, CLASS_GRID_STREAM], row after row; interpolations draw
  their end points from [seed, INTERPOLATION_STREAM], two per label, and walk the straight line between
  them (as the original's explore_latent);
* tools/invert.py: the restarts' start from seed (truncated), the self-inversion target's label from
  [seed, INVERSION_LABEL_STREAM] and its latent from [seed, INVERSION_LATENT_STREAM].

Keys of different callers may coincide (evaluation's batch 3 has training's key of step 1, G phase): they
are the keys each caller always used, kept so that runs, scores and pictures reproduce as before.

`generate_images` runs G over drawn latents, in batches; `generate_with_attention` also returns its attention.
"""

import numpy as np
import tensorflow as tf

DEFAULT_LABEL_COUNT = 8  # classes shown when none are named
ENGINES = ("tensorflow", "numpy")

DISCRIMINATOR_PHASE = 0
GENERATOR_PHASE = 1
SAMPLE_GRID_STREAM = 424242
CLASS_GRID_STREAM = 0
INTERPOLATION_STREAM = 1
INVERSION_LABEL_STREAM = 1
INVERSION_LATENT_STREAM = 2


def keyed_normal(key, shape, engine="tensorflow", truncation=None):
    """float32 N(0, 1) draws of `shape`, a pure function of `key` and the engine (see the module docstring).

    "tensorflow": key an int64 pair (tensor or sequence), returns a tensor. "numpy": key an int or a list
    of ints, returns an array; with truncation T, entries with |z| > T are drawn again from the same stream.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine={engine!r} is not one of {ENGINES}")
    if truncation is not None and not truncation > 0:
        raise ValueError(f"truncation={truncation!r} must be positive (or None for no truncation)")
    if engine == "tensorflow":
        if truncation is not None:
            raise ValueError(f"truncation={truncation!r}: only the 'numpy' engine truncates")
        return tf.random.stateless_normal(shape, seed=key)
    random = np.random.default_rng(key)
    draws = random.standard_normal(tuple(shape))
    if truncation is not None:
        outside = np.abs(draws) > truncation
        while outside.any():
            draws[outside] = random.standard_normal(int(outside.sum()))
            outside = np.abs(draws) > truncation
    return draws.astype(np.float32)


def keyed_latents(key, count, z_dim, num_classes):
    """(z float32 [count, z_dim] ~ N(0, I), labels int32 [count] uniform in [0, num_classes)) from an int64
    key pair, split in two: the first half keys z, the second the labels."""
    noise_key, label_key = tf.unstack(tf.random.experimental.stateless_split(key, num=2))
    z = keyed_normal(noise_key, [count, z_dim])  # [count, z_dim]
    labels = tf.random.stateless_uniform(
        [count], seed=label_key, minval=0, maxval=num_classes, dtype=tf.int32
    )  # [count]
    return z, labels


def training_latents(seed, step, phase, count, z_dim, num_classes, discriminator_update=0):
    """The global batch of (z, labels) that training draws at `step` (an int64 scalar) in `phase`.

    discriminator_update > 0 numbers the extra discriminator updates of a step (discriminator_steps > 1).
    """
    if phase not in (DISCRIMINATOR_PHASE, GENERATOR_PHASE):
        raise ValueError(f"phase={phase!r} is not DISCRIMINATOR_PHASE (0) or GENERATOR_PHASE (1)")
    key = tf.stack([tf.cast(seed, tf.int64), step * 2 + phase])
    if discriminator_update:
        key = tf.random.experimental.stateless_fold_in(key, discriminator_update)
    return keyed_latents(key, count, z_dim, num_classes)


def evaluation_latents(seed, batch_index, count, z_dim, num_classes):
    """(z, labels) of evaluation's batch `batch_index`: the same arguments always give the same draws."""
    return keyed_latents(tf.constant([seed, batch_index], tf.int64), count, z_dim, num_classes)


def sample_grid_latents(seed, count, z_dim, num_classes):
    """(z [count, z_dim], labels [count]) of the training sample grid: fixed for a run's seed, the labels
    0, 1, 2, ... cycling over the classes (the grid shows them in reading order)."""
    z = keyed_normal(tf.constant([seed, SAMPLE_GRID_STREAM], tf.int64), [count, z_dim])
    return z, tf.range(count, dtype=tf.int32) % num_classes


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
    """[count, z_dim] float32 N(0, 1) latents of the "numpy" engine keyed by seed (an int or a list of
    ints); with truncation T, entries with |z| > T are resampled."""
    if int(count) <= 0 or int(z_dim) <= 0:
        raise ValueError(f"count={count!r} and z_dim={z_dim!r} must be positive integers")
    return keyed_normal(seed, (int(count), int(z_dim)), engine="numpy", truncation=truncation)


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


def self_inversion_inputs(seed, z_dim, num_classes, label=None):
    """The known latent [1, z_dim] (untruncated) and the label of a self-inversion; the label is drawn
    when None, else checked."""
    if label is None:
        label = int(np.random.default_rng([seed, INVERSION_LABEL_STREAM]).integers(num_classes))
    label = check_label(label, num_classes)
    return standard_normal_latents(1, z_dim, [seed, INVERSION_LATENT_STREAM]), label


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


def generate_with_attention(generator, latents, labels, attention_resolution=None):
    """G in inference mode over latents [N, z_dim] and labels [N] in one call, with the attention of its
    layer on `attention_resolution` maps (None: the default place's, or G's first).

    Returns (images [N, S, S, 3] in [-1, 1], probabilities [N, heads, Nq, Nk], that attention layer).
    """
    if not generator.attention_layers:
        model_config = generator.model_config
        raise ValueError(
            "query attention needs a generator with attention; this model has "
            f"attention={model_config.attention!r}, attention_block={model_config.attention_block!r}"
        )
    attention_resolution = generator.attention_resolution(attention_resolution)
    images, probabilities = generator(
        (np.asarray(latents, np.float32), np.asarray(labels, np.int32)),
        training=False,
        return_attention=True,
        attention_resolution=attention_resolution,
    )
    return images.numpy(), probabilities.numpy(), generator.attention_layers[attention_resolution]
