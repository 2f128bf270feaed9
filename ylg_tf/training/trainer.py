"""The trainer: the original SAGAN/YLG training step, run `num_steps` at a time inside one tf.function.

One global step (spec section 4) = one discriminator update on the real batch and fresh fakes, then one
generator update with a fresh G forward and a D forward that sees the updated D. With discriminator_steps=k
a step makes k discriminator updates, each on its own real batch and fresh fakes, before the generator's.
Fake labels are uniform over
the classes. Latents come from stateless random ops keyed by (seed, step, phase): every replica draws the
global batch of latents and keeps its own slice, so the result does not depend on the replica count, and
resuming at a step reproduces the same draws with no random state to save.

Losses are per-replica sums over the global batch (ylg_tf.training.losses); the optimizers sum the replicas'
gradients. Batch-norm statistics are synchronised by the layers themselves. Under `ModelConfig.precision`
"mixed_float16" the updates are loss-scaled (`ylg_tf.training.loss_scaling`).
"""

import dataclasses

import tensorflow as tf
import tf_keras

from ylg_tf.attention import analytics
from ylg_tf.config import ExperimentConfig
from ylg_tf.latents import DISCRIMINATOR_PHASE, GENERATOR_PHASE, training_latents
from ylg_tf.training.learning_rates import learning_rate_factor
from ylg_tf.training.loss_scaling import INITIAL_LOSS_SCALE, GradientUpdate
from ylg_tf.training.losses import discriminator_hinge_loss, generator_hinge_loss
from ylg_tf.models.networks import Discriminator, Generator
from ylg_tf.storage import checkpoint_layout

METRIC_NAMES = ("discriminator_loss", "generator_loss", "real_logits", "fake_logits")


def _adam(learning_rate, training_config):
    return tf_keras.optimizers.Adam(
        learning_rate=learning_rate,
        beta_1=training_config.beta_1,
        beta_2=training_config.beta_2,
        epsilon=training_config.epsilon,
    )


@dataclasses.dataclass(frozen=True)
class LoopMetrics:
    """Means over the steps one loop ran; `num_steps` fewer than asked when a stop was requested or a step's
    metrics were not finite (`finite` False: the loop ended after that step)."""

    step: int
    discriminator_loss: float
    generator_loss: float
    real_logits: float
    fake_logits: float
    num_steps: int = 0
    finite: bool = True


class Trainer:
    """Owns the networks, optimizers and step counter; `train_loop(iterator, num_steps)` runs the steps.

    The loop reads `stop_flag` (a boolean tf.Variable, see `ylg_tf.training.stop_request`) before every step and ends
    when it is set, or after a step whose losses or logits are not finite.

    Args:
      config: the experiment config.
      strategy: the tf.distribute strategy (from ylg_tf.training.distribution.create_strategy).
      jit_compile: compile each replica's network updates with XLA (TPUs always compile). With
        MirroredStrategy the optimizers' cross-replica reduction cannot run inside XLA: use it on one device.
      initial_loss_scale: where mixed_float16's dynamic loss scale starts (`ylg_tf.training.loss_scaling`).
    """

    def __init__(self, config: ExperimentConfig, strategy, jit_compile=False, initial_loss_scale=INITIAL_LOSS_SCALE):
        self.config = config
        self.strategy = strategy
        self.global_batch_size = config.training.batch_size
        replicas = strategy.num_replicas_in_sync
        if self.global_batch_size % replicas:
            raise ValueError(
                f"batch_size={self.global_batch_size} is not divisible by the {replicas} replicas"
            )
        self.per_replica_batch_size = self.global_batch_size // replicas
        training = config.training
        self.stop_flag = tf.Variable(False, trainable=False, name="stop_flag")  # outside the strategy: host state
        with strategy.scope():
            self.generator = Generator(config.model).build_for_config()
            self.discriminator = Discriminator(config.model).build_for_config()
            self.generator_optimizer = _adam(training.generator_learning_rate, training)
            self.discriminator_optimizer = _adam(training.discriminator_learning_rate, training)
            # Slots exist before any restore, so a restored run continues with them.
            self.generator_optimizer.build(self.generator.trainable_variables)
            self.discriminator_optimizer.build(self.discriminator.trainable_variables)
            self.step = checkpoint_layout.step_variable()
            self.generator_ema = None
            if training.generator_ema_decay > 0:
                self.generator_ema = Generator(config.model, name="generator_ema").build_for_config()
                for average, variable in zip(self.generator_ema.variables, self.generator.variables):
                    average.assign(variable)
        self.checkpoint = checkpoint_layout.make_checkpoint(
            generator=self.generator,
            discriminator=self.discriminator,
            step=self.step,
            generator_optimizer=self.generator_optimizer,
            discriminator_optimizer=self.discriminator_optimizer,
            generator_ema=self.generator_ema,
        )
        # A nested tf.function may not hold the optimizers' cross-replica merge, so the updates become one
        # only when XLA compiles them.
        self._update_networks = (
            tf.function(self._update_networks_eager, jit_compile=True) if jit_compile else self._update_networks_eager
        )
        self._initial_loss_scale = initial_loss_scale
        self.generator_update = self.discriminator_update = None  # made with the loop, after any restore
        self._train_loop = tf.function(self._train_loop_eager)

    @property
    def train_loop(self):
        """The compiled loop, `train_loop(iterator, num_steps)`; the first use makes the gradient updates."""
        self._make_gradient_updates()
        return self._train_loop

    def _make_gradient_updates(self):
        """mixed_float16's loss scaling may attach its state (scale, good steps) to the optimizers (tf-keras
        2.15 does). Made after the checkpoint's restore, it is not there during it, so a checkpoint of another
        precision (without that state) restores completely."""
        if self.generator_update is not None:
            return
        precision = self.config.model.precision
        with self.strategy.scope():
            self.generator_update = GradientUpdate(self.generator_optimizer, precision, self._initial_loss_scale)
            self.discriminator_update = GradientUpdate(
                self.discriminator_optimizer, precision, self._initial_loss_scale)

    @property
    def sampling_generator(self):
        """The generator to draw samples from: the moving average when training keeps one."""
        return self.generator_ema if self.generator_ema is not None else self.generator

    def latents(self, step, phase, replica_index, discriminator_update=0):
        """This replica's slice of the global (z, labels) of `ylg_tf.latents.training_latents` for a step and
        phase (DISCRIMINATOR_PHASE or GENERATOR_PHASE).

        discriminator_update > 0 numbers the extra D updates of a step (discriminator_steps > 1).
        """
        model = self.config.model
        z, labels = training_latents(
            self.config.training.seed, step, phase, self.global_batch_size, model.z_dim, model.num_classes,
            discriminator_update=discriminator_update,
        )
        start = replica_index * self.per_replica_batch_size
        size = self.per_replica_batch_size
        return tf.slice(z, [start, 0], [size, model.z_dim]), tf.slice(labels, [start], [size])

    def _update_ema(self):
        decay = self.config.training.generator_ema_decay
        for average, variable in zip(self.generator_ema.variables, self.generator.variables):
            if variable.trainable:
                average.assign(decay * average + (1.0 - decay) * variable)
            else:
                average.assign(variable)  # u vectors and batch-norm statistics follow G directly

    def _replica_step(self, batches):
        """batches: one (images, labels) pair per discriminator update of the step."""
        replica_index = tf.distribute.get_replica_context().replica_id_in_sync_group
        step = self.step.read_value()
        # Latents are drawn outside the (optionally XLA-compiled) update: XLA's stateless random kernels
        # give other numbers than TensorFlow's, and the draws must not depend on compilation.
        discriminator_latents = tuple(
            self.latents(step, DISCRIMINATOR_PHASE, replica_index, discriminator_update=update)
            for update in range(len(batches))
        )
        generator_latents = self.latents(step, GENERATOR_PHASE, replica_index)
        metrics = self._update_networks(batches, discriminator_latents, generator_latents)
        self.step.assign_add(1)
        return metrics

    def _update_discriminator(self, images, labels, latents):
        """One discriminator update on the real batch and fresh fakes; returns (loss, real, fake logits)."""
        generator, discriminator = self.generator, self.discriminator
        z, fake_labels = latents
        fakes = generator((z, fake_labels), training=True)
        with tf.GradientTape() as tape:
            logits = discriminator((tf.concat([images, fakes], 0), tf.concat([labels, fake_labels], 0)))
            real_logits, fake_logits = tf.split(logits, 2)
            discriminator_loss = discriminator_hinge_loss(real_logits, fake_logits, self.global_batch_size)
            target = self.discriminator_update.scaled(discriminator_loss)
        self.discriminator_update.apply(tape, target, discriminator.trainable_variables)
        return discriminator_loss, real_logits, fake_logits

    def _update_networks_eager(self, batches, discriminator_latents, generator_latents):
        generator, discriminator = self.generator, self.discriminator

        # Discriminator updates, each on its own real batch and fresh fakes; metrics are their means.
        updates = [
            self._update_discriminator(images, labels, latents)
            for (images, labels), latents in zip(batches, discriminator_latents)
        ]
        discriminator_loss = tf.add_n([loss for loss, _, _ in updates]) / len(updates)
        real_logits = tf.concat([real for _, real, _ in updates], 0)
        fake_logits = tf.concat([fake for _, _, fake in updates], 0)

        # Generator update against the updated discriminator.
        z, fake_labels = generator_latents
        with tf.GradientTape() as tape:
            generated_logits = discriminator((generator((z, fake_labels), training=True), fake_labels))
            generator_loss = generator_hinge_loss(None, generated_logits, self.global_batch_size)
            target = self.generator_update.scaled(generator_loss)
        self.generator_update.apply(tape, target, generator.trainable_variables)

        if self.generator_ema is not None:
            self._update_ema()
        scale = 1.0 / (self.global_batch_size * len(updates))
        return tf.stack(
            [
                discriminator_loss,
                generator_loss,
                tf.reduce_sum(real_logits) * scale,
                tf.reduce_sum(fake_logits) * scale,
            ]
        )

    def _train_loop_eager(self, iterator, num_steps):
        totals = tf.zeros([len(METRIC_NAMES)])
        steps_done = tf.constant(0, tf.int64)
        finite = tf.constant(True)
        # The checks sit in the loop's condition, so the step itself is not inside a conditional.
        while tf.logical_and(
            steps_done < num_steps, tf.logical_and(finite, tf.logical_not(self.stop_flag.read_value()))
        ):
            batches = tuple(next(iterator) for _ in range(self.config.training.discriminator_steps))
            if self.config.training.learning_rate_decay_steps:
                self.apply_learning_rates(self.step.read_value())
            per_replica = self.strategy.run(self._replica_step, args=(batches,))
            step_metrics = self.strategy.reduce(tf.distribute.ReduceOp.SUM, per_replica, axis=None)
            finite = tf.reduce_all(tf.math.is_finite(step_metrics))
            totals += step_metrics
            steps_done += 1
        return totals / tf.cast(tf.maximum(steps_done, 1), tf.float32), steps_done, finite

    def trace_loop(self, iterator):
        """Traces the training loop for this iterator without running a step (the first run_loop reuses it)."""
        self.train_loop.get_concrete_function(iterator, tf.constant(1, tf.int64))

    def run_loop(self, iterator, num_steps):
        """Runs up to `num_steps` steps and returns their mean metrics (the host's only view of them)."""
        means, steps_done, finite = self.train_loop(iterator, tf.constant(num_steps, tf.int64))
        return LoopMetrics(
            int(self.step.numpy()), *(float(value) for value in means.numpy()), int(steps_done), bool(finite)
        )

    def apply_learning_rates(self, step=None):
        """Sets the optimizers' rates to the config's for the update at `step` (default: the step counter's),
        `ylg_tf.training.learning_rates` (a restore brings back the rates the run was saved with)."""
        training = self.config.training
        factor = learning_rate_factor(
            self.step.read_value() if step is None else step, training.train_steps, training.learning_rate_decay_steps)
        self.generator_optimizer.learning_rate = training.generator_learning_rate * factor
        self.discriminator_optimizer.learning_rate = training.discriminator_learning_rate * factor

    def non_finite_variables(self):
        """Names of the checkpointed variables holding a NaN or infinite value."""
        return [
            variable.name
            for variable in checkpoint_layout.checkpoint_variables(self.checkpoint)
            if variable.dtype.is_floating and not bool(tf.reduce_all(tf.math.is_finite(variable)))
        ]

    def sample(self, z, labels):
        """Images from the sampling generator in inference mode."""
        return self.sampling_generator((z, labels), training=False)

    def attention_statistics(self, z, labels):
        """{"generator/LAYER" or "discriminator/LAYER": `ylg_tf.attention.analytics.AttentionStatistics`} of
        every attention layer: the sampling generator on (z, labels), then D on its images, in inference mode."""
        statistics = {}
        images = self.sample(z, labels)
        for network, inputs in ((self.sampling_generator, (z, labels)), (self.discriminator, (images, labels))):
            for resolution, layer in network.attention_layers.items():
                outputs = network(inputs, training=False, return_attention=True, attention_resolution=resolution)
                probabilities = outputs[1] if isinstance(outputs, tuple) else outputs["attention"]
                name = "generator" if network is self.sampling_generator else "discriminator"
                statistics[f"{name}/{layer.name}"] = analytics.attention_statistics(
                    probabilities.numpy(), layer.query_grid, layer.key_grid)
        return statistics

    def attention_sigma_ratios(self):
        """{layer name: sigma_ratio} for the attention layers, for summaries."""
        ratios = {}
        for network in (self.generator, self.discriminator):
            for layer in network.attention_layers.values():
                ratios[f"{network.name}/{layer.name}"] = float(layer.sigma_ratio.numpy())
        return ratios
