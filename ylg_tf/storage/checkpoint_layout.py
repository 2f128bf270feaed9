"""The checkpoint layout: which objects one checkpoint holds, under which names, and its step.

A checkpoint is a tf.train.Checkpoint whose top-level objects are

  generator                 the generator (a Keras model)
  discriminator             the discriminator
  step                      int64 scalar: the global steps done when it was written
  generator_optimizer       Adam of G      } written by training only; under mixed_float16 and tf-keras
  discriminator_optimizer   Adam of D      } 2.15 each also holds its loss scale (`ylg_tf.training.loss_scaling`)
  generator_ema             moving average of G's weights, when training keeps one

Training, restore, the tools, the import of the original checkpoints and the export (through restore) all
build their checkpoint with `make_checkpoint`, so these names are spelled here only. They are the names the
checkpoints of every earlier version used (tests/data/checkpoint_layout_keys.json holds the keys of one),
so old work directories load unchanged. Latents are stateless functions of (seed, step): there is no random
state to save.

The step of a checkpoint is the value of its saved `step` variable (`checkpoint_step`), never a number parsed
from a file name, so a checkpoint copied or renamed (for example to `best`) still tells its step.
"""

import tensorflow as tf

GENERATOR = "generator"
DISCRIMINATOR = "discriminator"
STEP = "step"
GENERATOR_OPTIMIZER = "generator_optimizer"
DISCRIMINATOR_OPTIMIZER = "discriminator_optimizer"
GENERATOR_EMA = "generator_ema"
OBJECT_NAMES = (GENERATOR, DISCRIMINATOR, STEP, GENERATOR_OPTIMIZER, DISCRIMINATOR_OPTIMIZER, GENERATOR_EMA)
# The key under which a tf.train.Checkpoint saves a variable attribute of one of its top-level objects.
STEP_KEY = f"{STEP}/.ATTRIBUTES/VARIABLE_VALUE"


class CheckpointLayoutError(ValueError):
    """A checkpoint cannot be read, or does not hold what this layout says it holds."""


def step_variable(value=0):
    """The int64 step counter a checkpoint saves as `step`.

    Under a tf.distribute strategy's scope every replica adds its steps to its own copy and one value
    (the first replica's) is kept, so the counter counts global steps whatever the replica count.
    """
    return tf.Variable(
        value,
        dtype=tf.int64,
        trainable=False,
        name=STEP,
        synchronization=tf.VariableSynchronization.ON_WRITE,
        aggregation=tf.VariableAggregation.ONLY_FIRST_REPLICA,
    )


def make_checkpoint(
    *,
    generator,
    discriminator,
    step,
    generator_optimizer=None,
    discriminator_optimizer=None,
    generator_ema=None,
):
    """The tf.train.Checkpoint of the layout over the given objects; the ones left None are not in it.

    Restoring a checkpoint into fewer objects than it holds (the tools need no optimizers) reads only those;
    saving writes only those.
    """
    objects = {
        GENERATOR: generator,
        DISCRIMINATOR: discriminator,
        STEP: step,
        GENERATOR_OPTIMIZER: generator_optimizer,
        DISCRIMINATOR_OPTIMIZER: discriminator_optimizer,
        GENERATOR_EMA: generator_ema,
    }
    return tf.train.Checkpoint(**{name: value for name, value in objects.items() if value is not None})


def checkpoint_variables(checkpoint):
    """Every variable of the objects of a `make_checkpoint` checkpoint (the step, the networks' weights and
    statistics, the optimizers' slots), in OBJECT_NAMES order."""
    variables = []
    for name in OBJECT_NAMES:
        value = getattr(checkpoint, name, None)
        if value is not None:
            variables.extend([value] if isinstance(value, tf.Variable) else value.variables)
    return variables


def saved_objects(reader):
    """The names (of OBJECT_NAMES) of the top-level objects a checkpoint holds; `reader` is its
    tf.train.load_checkpoint(path)."""
    top_level = {key.split("/", 1)[0] for key in reader.get_variable_to_shape_map()}
    return frozenset(name for name in OBJECT_NAMES if name in top_level)


def checkpoint_step(path):
    """The step the checkpoint at `path` (a prefix such as DIR/checkpoints/ckpt-500) was written at: the value
    of its saved `step` variable."""
    try:
        reader = tf.train.load_checkpoint(path)
    except (tf.errors.OpError, ValueError) as error:
        detail = " ".join(str(error).split())[:200]
        raise CheckpointLayoutError(f"cannot read checkpoint {path!r}: {detail}") from None
    if not reader.has_tensor(STEP_KEY):
        raise CheckpointLayoutError(
            f"checkpoint {path!r} holds no {STEP_KEY!r}: it was not written by ylg_tf (an original TF1 "
            "checkpoint is imported with tools/import_original.py)"
        )
    return int(reader.get_tensor(STEP_KEY))
