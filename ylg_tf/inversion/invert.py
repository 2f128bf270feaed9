"""Attention-guided inversion (YLG's `inverse_image.py`, spec section 6): latents of G that match an image.

Inversion looks for z such that G(z, y) matches an image x of class y. It compares the discriminator's
features f = h1_ (the input of D's attention layer) and weighs their difference with the saliency of D's
attention on x (`ylg_tf.attention.saliency.key_saliency`). W_h [rows, columns] is broadcast over the feature channels;
by default the heads h are 0-3, the right-to-left heads of YLG. Several restarts r run as one batch from
truncated-normal (+-2 sigma) latents, optimised with Adam at learning rate 0.07 for 1000 steps; G runs in
inference mode.

The optimised objective is the original's: per head, ONE L2 norm over the whole batch of restarts,

    objective(z) = sum over heads h of || (f(x) - f(G(z, y))) * W_h ||_2     (norm over [R, rows, columns, C])

so each restart's gradient is scaled by its share of the batch norm. Every restart also has its own loss,

    loss_r(z_r) = sum over heads h of || (f(x) - f(G(z_r, y))) * W_h ||_2    (norm over [rows, columns, C])

which is what the results report (loss curves, initial and final loss) and what picks the best restart:
the one with the lowest final loss_r.

Faithfulness notes:
- D has no inference mode: like the original discriminator, every call of D runs one power iteration and
  stores the new spectral-norm u vectors. Each optimisation step calls D on G(z), so D's u vectors move on
  every step, as they did in the original loop. (The original graph also re-ran D on x every time it
  evaluated the loss; here f(x) and the saliency are computed once, before the loop. With a trained model
  the u vectors are at their fixed point and both give the same features.)
- Adam is the TF1 one: beta_1 0.9, beta_2 0.999, epsilon 1e-8 (the Keras legacy Adam has the same update).
- Options the original did not use, all off by default: `per_restart_objective` (a deviation: optimise the
  sum of the loss_r instead, so restarts do not influence each other's step sizes), Lookahead (k = 5,
  alpha = 0.5; the original built it but never ran it in the loop), a pixel-loss weight (the original only
  printed ||x - G(z)||, one norm over the batch; the added term takes the same form as the objective:
  one norm over the batch, or a sum of per-restart norms), the choice of heads.
"""

import dataclasses
import logging
from typing import Callable, Optional, Tuple

import numpy as np
import tensorflow as tf

from ylg_tf.data import image_io
from ylg_tf.inversion import lookahead
from ylg_tf.latents import check_label, self_inversion_inputs, standard_normal_latents
from ylg_tf.attention.saliency import key_saliency

RIGHT_TO_LEFT_HEADS = (0, 1, 2, 3)
INITIAL_TRUNCATION = 2.0


# ----------------------------------------------------------------------------------------------
# The losses.


def _squared_weighted_differences(target_features, features, saliency, heads):
    """sum over [rows, columns, C] of ((target - features) * saliency[head])^2, per restart and head: [R, H]."""
    difference = tf.convert_to_tensor(target_features, tf.float32) - features  # [R, rows, columns, C]
    saliency = tf.convert_to_tensor(saliency, tf.float32)
    squares = []
    for head in heads:
        weighted = difference * saliency[:, head, :, :, None]  # [R, rows, columns, C]
        squares.append(tf.reduce_sum(tf.square(weighted), axis=[1, 2, 3]))  # [R]
    return tf.stack(squares, axis=1)  # [R, H]


def _per_restart_norms(squares):
    """[R, H] squared sums -> [R]: sum over heads of each restart's own norm."""
    return tf.reduce_sum(tf.sqrt(squares), axis=1)


def _batch_norms(squares):
    """[R, H] squared sums -> scalar: sum over heads of one norm over the whole batch."""
    return tf.reduce_sum(tf.sqrt(tf.reduce_sum(squares, axis=0)))


def weighted_feature_loss(target_features, features, saliency, heads):
    """Per-restart loss: sum over `heads` of || (target - features[r]) * saliency[head] ||_2.

    Args:
      target_features: [1 or R, rows, columns, C] features of the target image.
      features: [R, rows, columns, C] features of the reconstructions.
      saliency: [1 or R, heads, rows, columns] weights (broadcast over channels).
      heads: the head indices to sum over.
    Returns:
      [R] float32: what the results report and what picks the best restart.
    """
    return _per_restart_norms(_squared_weighted_differences(target_features, features, saliency, heads))


def batch_weighted_feature_loss(target_features, features, saliency, heads):
    """The original objective: sum over `heads` of ONE || (target - features) * saliency[head] ||_2 over the
    whole batch [R, rows, columns, C] (`tf.norm(w_diff, ord=2)` in inverse_image.py). Same arguments as
    `weighted_feature_loss`; returns a float32 scalar."""
    return _batch_norms(_squared_weighted_differences(target_features, features, saliency, heads))


def _squared_pixel_differences(target_image, images):
    return tf.reduce_sum(tf.square(target_image - images), axis=[1, 2, 3])[:, None]  # [R, 1]


def pixel_loss(target_image, images):
    """Per-restart || x - G(z) ||_2 over all pixels: [1 or R, S, S, 3], [R, S, S, 3] -> [R]."""
    return _per_restart_norms(_squared_pixel_differences(target_image, images))


# ----------------------------------------------------------------------------------------------
# Inversion.


@dataclasses.dataclass(frozen=True)
class InversionConfig:
    """How to invert one image. heads=None means heads 0-3 with 8-head attention, else every head.

    attention_resolution: the feature-map side of D's attention layer whose saliency weighs the loss (and
    whose input are the features); None is the original's place (or D's first attention layer).

    per_restart_objective=True is a deviation from the original: it optimises the sum of the restarts' own
    losses instead of the original's one norm over the batch per head (see the module docstring).
    """

    restarts: int = 8
    steps: int = 1000
    learning_rate: float = 0.07
    heads: Optional[Tuple[int, ...]] = None
    lookahead: bool = False
    lookahead_sync_period: int = 5
    lookahead_slow_step_size: float = 0.5
    pixel_loss_weight: float = 0.0
    per_restart_objective: bool = False
    seed: int = 0
    steps_per_call: int = 25  # optimisation steps per compiled call, between progress reports
    attention_resolution: Optional[int] = None

    def __post_init__(self):
        for name in ("restarts", "steps", "lookahead_sync_period", "steps_per_call"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate={self.learning_rate!r} must be positive")
        if not 0.0 < self.lookahead_slow_step_size <= 1.0:
            raise ValueError(f"lookahead_slow_step_size={self.lookahead_slow_step_size!r} must be in (0, 1]")
        if not self.pixel_loss_weight >= 0:
            raise ValueError(f"pixel_loss_weight={self.pixel_loss_weight!r} must be >= 0")
        if not isinstance(self.per_restart_objective, bool):
            raise ValueError(f"per_restart_objective={self.per_restart_objective!r} must be True or False")
        if self.heads is not None:
            if not self.heads:
                raise ValueError("heads=() is empty; give at least one head or None for the default")
            object.__setattr__(self, "heads", tuple(int(head) for head in self.heads))


def resolve_heads(heads, num_heads):
    """The heads to use for a D attention with num_heads heads (validates the indices)."""
    if heads is None:
        return RIGHT_TO_LEFT_HEADS if num_heads == 8 else tuple(range(num_heads))
    bad = [head for head in heads if not 0 <= head < num_heads]
    if bad:
        raise ValueError(
            f"heads {bad} are out of range: the discriminator's attention has {num_heads} heads "
            f"(0 to {num_heads - 1})"
        )
    if len(set(heads)) != len(heads):
        raise ValueError(f"heads {list(heads)} repeat a head")
    return tuple(heads)


def target_features_and_saliency(discriminator, image, label, attention_resolution=None):
    """D's features [1, rows, columns, C] and per-head saliency [1, heads, rows, columns] of one image,
    at D's attention layer on `attention_resolution` maps (None: the default place's)."""
    outputs = discriminator(
        (tf.convert_to_tensor(image[None], tf.float32), tf.constant([label], tf.int32)),
        return_features=True,
        return_attention=True,
        attention_resolution=attention_resolution,
    )
    features, probabilities = outputs["features"], outputs["attention"]
    if probabilities is None:
        raise ValueError(
            "attention-guided inversion needs a discriminator with attention; this model has attention='none'"
        )
    rows, columns = features.shape[1], features.shape[2]
    # Keys are the 2x2-pooled feature grid.
    saliency = key_saliency(probabilities, (rows // 2, columns // 2), output_grid=(rows, columns))
    return features, saliency


@dataclasses.dataclass
class InversionResult:
    """Everything an inversion produced (NumPy arrays). R restarts, T steps."""

    target_image: np.ndarray  # [S, S, 3] in [-1, 1]
    label: int
    heads: Tuple[int, ...]
    saliency: np.ndarray  # [all heads, rows, columns] of D's attention on the target
    initial_latents: np.ndarray  # [R, z_dim]
    latents: np.ndarray  # [R, z_dim] after the last step
    images: np.ndarray  # [R, S, S, 3] G(latents)
    loss_history: np.ndarray  # [T + 1, R] each restart's own loss before each step, then after the last
    pixel_loss_history: np.ndarray  # [T + 1, R] || x - G(z) ||_2 at the same points

    @property
    def initial_loss(self):
        return self.loss_history[0]

    @property
    def final_loss(self):
        return self.loss_history[-1]

    @property
    def best_index(self):
        return int(np.argmin(self.final_loss))


def _make_optimizer(config):
    # The legacy Adam is TF1's AdamOptimizer update; ylg_tf.inversion.lookahead picks the Lookahead for this stack.
    return lookahead.make_adam(
        learning_rate=config.learning_rate,
        beta_1=0.9,
        beta_2=0.999,
        epsilon=1e-8,
        lookahead_sync_period=config.lookahead_sync_period if config.lookahead else None,
        lookahead_slow_step_size=config.lookahead_slow_step_size,
    )


def invert(
    generator,
    discriminator,
    image,
    label,
    config: InversionConfig = InversionConfig(),
    initial_latents=None,
    progress: Optional[Callable[[int, np.ndarray], None]] = None,
) -> InversionResult:
    """Finds latents of `generator` whose images match `image` (float [S, S, 3] in [-1, 1]) of class `label`.

    initial_latents [restarts, z_dim] replaces the truncated-normal start drawn from config.seed.
    progress(steps_done, feature_loss [R]) is called after each compiled chunk of steps.
    """
    model_config = generator.model_config
    size = model_config.image_size
    image = np.asarray(image, np.float32)
    if image.shape != (size, size, 3):
        raise ValueError(f"image must be [{size}, {size}, 3] for this model, got shape {image.shape}")
    label = check_label(label, model_config.num_classes)
    if initial_latents is None:
        initial_latents = standard_normal_latents(
            config.restarts, model_config.z_dim, config.seed, INITIAL_TRUNCATION
        )
    initial_latents = np.asarray(initial_latents, np.float32)
    if initial_latents.shape != (config.restarts, model_config.z_dim):
        raise ValueError(
            f"initial_latents must be [{config.restarts}, {model_config.z_dim}], got {initial_latents.shape}"
        )

    attention_resolution = config.attention_resolution
    if attention_resolution is not None:
        discriminator.attention_resolution(attention_resolution)  # a layer on those maps, or a clear error
    target_features, saliency = target_features_and_saliency(discriminator, image, label, attention_resolution)
    heads = resolve_heads(config.heads, saliency.shape[1])
    logging.info(
        "inverting class %d with heads %s, %d restarts, %d steps, %s objective",
        label, heads, config.restarts, config.steps, "per-restart" if config.per_restart_objective else "batch",
    )

    latents = tf.Variable(initial_latents, name="latents")
    labels = tf.fill([config.restarts], label)
    target_image = tf.constant(image[None])
    pixel_weight = tf.constant(config.pixel_loss_weight, tf.float32)
    optimizer = _make_optimizer(config)
    # Creating the slots now spares tf.function a second trace (it retraces a function that made variables).
    lookahead.create_weights(optimizer, [latents])

    # Per-restart norms are reported either way; the objective sums them or takes one norm over the batch.
    objective_norms = _per_restart_norms if config.per_restart_objective else _batch_norms

    def losses():
        """(feature loss [R], pixel loss [R], objective scalar)."""
        images = generator((latents, labels), training=False)
        features = discriminator(
            (images, labels), return_features=True, attention_resolution=attention_resolution
        )["features"]
        feature_squares = _squared_weighted_differences(target_features, features, saliency, heads)  # [R, H]
        pixel_squares = _squared_pixel_differences(target_image, images)  # [R, 1]
        objective = tf.reduce_sum(objective_norms(feature_squares))
        objective += pixel_weight * tf.reduce_sum(objective_norms(pixel_squares))
        return _per_restart_norms(feature_squares), _per_restart_norms(pixel_squares), objective

    def step(index, feature_history, pixel_history):
        with tf.GradientTape() as tape:
            feature_losses, pixel_losses, total = losses()
        update = optimizer.apply_gradients([(tape.gradient(total, latents), latents)])
        with tf.control_dependencies([update]):  # the next step reads the updated latents
            return index + 1, feature_history.write(index, feature_losses), pixel_history.write(index, pixel_losses)

    # The layers' own code needs no AutoGraph conversion, which would only slow down tracing.
    @tf.function(autograph=False)
    def run_steps(num_steps):
        histories = [tf.TensorArray(tf.float32, size=num_steps) for _ in range(2)]
        _, feature_history, pixel_history = tf.while_loop(
            lambda index, *_: index < num_steps, step, [tf.constant(0), *histories], parallel_iterations=1
        )
        return feature_history.stack(), pixel_history.stack()  # [num_steps, R] each

    feature_chunks, pixel_chunks = [], []
    done = 0
    while done < config.steps:
        count = min(config.steps_per_call, config.steps - done)
        feature_losses, pixel_losses = run_steps(tf.constant(count))
        feature_chunks.append(feature_losses.numpy())
        pixel_chunks.append(pixel_losses.numpy())
        done += count
        if progress is not None:
            progress(done, feature_chunks[-1][-1])
    final_feature, final_pixel, _ = losses()
    feature_chunks.append(final_feature.numpy()[None])
    pixel_chunks.append(final_pixel.numpy()[None])
    images = generator((latents, labels), training=False)
    return InversionResult(
        target_image=image,
        label=label,
        heads=heads,
        saliency=saliency.numpy()[0],
        initial_latents=initial_latents,
        latents=latents.numpy(),
        images=images.numpy(),
        loss_history=np.concatenate(feature_chunks),
        pixel_loss_history=np.concatenate(pixel_chunks),
    )


def latent_distances(latents, true_latent):
    """|| z_r - z_true ||_2 for each row of latents [R, z_dim] -> [R]."""
    return np.linalg.norm(np.asarray(latents) - np.asarray(true_latent)[None], axis=1)


# ----------------------------------------------------------------------------------------------
# Targets and reports (what tools/invert.py runs; the tool writes the files).


def load_target(path, label, model_config, center_crop=False):
    """(image [S, S, 3] in [-1, 1], label) from an image file of class `label` (label checked first).

    The whole image is resized to the model's size as the original did; center_crop crops the central
    square first, as the training data.
    """
    label = check_label(label, model_config.num_classes)
    return image_io.load_image(path, model_config.image_size, center_crop=center_crop), label


def self_inversion_target(generator, seed, label=None):
    """A sample of the model from a known latent: (image [S, S, 3], label, true latent [z_dim]).

    The latent and (when None) the label are `ylg_tf.latents.self_inversion_inputs` of the seed.
    """
    model_config = generator.model_config
    true_latent, label = self_inversion_inputs(seed, model_config.z_dim, model_config.num_classes, label)
    image = generator((true_latent, tf.constant([label])), training=False).numpy()[0]
    return image, label, true_latent[0]


def inversion_report(result: InversionResult, config: InversionConfig, provenance=None, true_latent=None):
    """A JSON-ready summary: `provenance` (a dict, e.g. work directory and image) first, then the settings,
    every restart's initial and final losses, the best restart, and with `true_latent` the latent distances."""
    best = result.best_index
    report = dict(provenance or {})
    report.update(
        label=result.label,
        heads=list(result.heads),
        attention_resolution=config.attention_resolution,
        restarts=config.restarts,
        steps=config.steps,
        learning_rate=config.learning_rate,
        lookahead=config.lookahead,
        pixel_loss_weight=config.pixel_loss_weight,
        per_restart_objective=config.per_restart_objective,
        seed=config.seed,
        initial_loss=result.initial_loss.tolist(),
        final_loss=result.final_loss.tolist(),
        initial_pixel_loss=result.pixel_loss_history[0].tolist(),
        final_pixel_loss=result.pixel_loss_history[-1].tolist(),
        best={
            "restart": best,
            "initial_loss": float(result.initial_loss[best]),
            "final_loss": float(result.final_loss[best]),
            "image": "best.png",
        },
    )
    if true_latent is not None:
        initial = latent_distances(result.initial_latents, true_latent)
        final = latent_distances(result.latents, true_latent)
        report["self_inversion"] = {
            "initial_latent_distance": initial.tolist(),
            "final_latent_distance": final.tolist(),
            "best_initial_latent_distance": float(initial[best]),
            "best_final_latent_distance": float(final[best]),
        }
    return report
