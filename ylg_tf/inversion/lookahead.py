"""The one place tensorflow-addons is imported: the Adam, with or without Lookahead, that inversion optimises with.

Lookahead (Zhang et al. 2019, "Lookahead Optimizer: k steps forward, 1 step back") wraps an inner optimizer:
the inner optimizer moves the variables (the fast weights) as usual, and after every k of its steps a slow
copy moves a fraction alpha of the way towards them and the variables restart from it:

    slow <- slow + alpha * (fast - slow);  fast <- slow

`make_adam` is the one factory. On TensorFlow 2.15 (the paper stack) it returns tensorflow-addons' Lookahead
around a legacy Adam, as the original did. On TensorFlow >= 2.16 (the current stack) tensorflow-addons
cannot work: its last release (0.23) fails on import with ModuleNotFoundError('keras.src.engine') even when
it is installed, so `make_adam` returns this module's own `Lookahead`, written from the paper's definition
with the same semantics as tensorflow-addons' (tests/inversion/test_lookahead.py checks both against a trajectory
stored from tensorflow-addons on the paper stack):

- one step counter, the inner optimizer's `iterations`: Adam's bias correction at step t (counting from 1)
  and the synchronisation read the same counter, so Adam's moments and step count carry on across syncs;
- the synchronisation comes right after the inner update of the steps t = k, 2k, 3k, ...;
- the slow weights start at the variables' values when the optimizer's weights are created
  (`create_weights`, called before the first step).

`create_weights(optimizer, variables)` creates the weights of any optimizer `make_adam` returns, so that a
tf.function tracing the steps creates none (it would trace a second time).
"""

import functools
import warnings

import tensorflow as tf
import tf_keras


@functools.lru_cache(maxsize=None)
def tensorflow_addons():
    """The tensorflow_addons module where it imports (TensorFlow 2.15), else None (TensorFlow >= 2.16)."""
    with warnings.catch_warnings():  # on import it warns that it is in maintenance mode and past end of life
        warnings.simplefilter("ignore")
        try:
            import tensorflow_addons as tfa
        except ImportError:  # not installed, or installed on TF >= 2.16: ModuleNotFoundError('keras.src.engine')
            return None
    return tfa


class Lookahead:
    """Lookahead around a tf_keras legacy optimizer; works in eager mode and inside tf.function / tf.while_loop.

    sync_period is k, slow_step_size is alpha in (0, 1]; alpha = 1 is the inner optimizer alone.
    """

    def __init__(self, optimizer, sync_period, slow_step_size=0.5):
        if not isinstance(optimizer, tf_keras.optimizers.legacy.Optimizer):
            raise TypeError(f"optimizer must be a tf_keras legacy optimizer, got {type(optimizer).__name__}")
        if not isinstance(sync_period, int) or isinstance(sync_period, bool) or sync_period <= 0:
            raise ValueError(f"sync_period={sync_period!r} must be a positive integer")
        if not 0.0 < slow_step_size <= 1.0:
            raise ValueError(f"slow_step_size={slow_step_size!r} must be in (0, 1]")
        self.optimizer = optimizer
        self.sync_period = sync_period
        self.slow_step_size = float(slow_step_size)
        self._slow_weights = {}  # variable.ref() -> its slow copy

    @property
    def iterations(self):
        """Steps taken so far (a tf.Variable): the inner optimizer's counter, the only one."""
        return self.optimizer.iterations

    def slow_weight(self, variable):
        """The slow copy of `variable` (a tf.Variable); it exists once the weights are created."""
        return self._slow_weights[variable.ref()]

    def create_weights(self, variables):
        """Creates the inner optimizer's weights and the slow copies, at the variables' current values."""
        # init_scope lifts the creation out of a tf.function being traced: the slow copies start at the
        # variables' values now, not at a symbolic tensor of the graph.
        with tf.init_scope():
            # Keras legacy optimizers have no public way to create their slots before the first step.
            self.optimizer._create_all_weights(variables)
            for variable in variables:
                if variable.ref() not in self._slow_weights:
                    name = variable.name.split(":")[0] + "/lookahead_slow"
                    self._slow_weights[variable.ref()] = tf.Variable(
                        variable.read_value(), trainable=False, name=name
                    )

    def apply_gradients(self, grads_and_vars):
        """One inner step, then the synchronisation if this was step k, 2k, ...; returns the update op."""
        # Like Keras, a variable without a gradient is left alone (here: by the synchronisation too).
        grads_and_vars = [(gradient, variable) for gradient, variable in grads_and_vars if gradient is not None]
        variables = [variable for _, variable in grads_and_vars]
        self.create_weights(variables)
        inner_update = self.optimizer.apply_gradients(grads_and_vars)
        # The inner step has incremented the counter: it now holds the number of steps taken, t.
        with tf.control_dependencies([inner_update]):
            steps_taken = tf.identity(self.optimizer.iterations)
            synchronise = tf.equal(steps_taken % self.sync_period, 0)
            assignments = []
            for variable in variables:
                slow = self._slow_weights[variable.ref()]
                fast = variable.read_value()
                slow_value = slow.read_value()
                moved = slow_value + tf.cast(self.slow_step_size, variable.dtype) * (fast - slow_value)
                # tf.where rather than tf.cond: both branches are a few element-wise ops, and the
                # assignments then happen on every step, so a tf.while_loop body has no data-dependent
                # control flow.
                assignments.append(slow.assign(tf.where(synchronise, moved, slow_value), read_value=False))
                assignments.append(variable.assign(tf.where(synchronise, moved, fast), read_value=False))
        return tf.group(inner_update, *assignments)


def make_adam(learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-8, lookahead_sync_period=None,
              lookahead_slow_step_size=0.5):
    """A legacy Adam (TF1's AdamOptimizer update); with lookahead_sync_period k, wrapped in Lookahead(k, alpha).

    The Lookahead is tensorflow-addons' where it imports, else this module's own `Lookahead`.
    """
    hyperparameters = dict(learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon)
    if lookahead_sync_period is None:
        return tf_keras.optimizers.legacy.Adam(**hyperparameters)
    addons = tensorflow_addons()
    if addons is None:
        return Lookahead(
            tf_keras.optimizers.legacy.Adam(**hyperparameters), lookahead_sync_period, lookahead_slow_step_size
        )
    # The one use of tf.keras in the project: tensorflow-addons 0.23 type-checks its inner optimizer against
    # the Keras that TensorFlow 2.15 bundles (tf.keras, the `keras` 2.15 package) and refuses tf_keras'
    # Adam. That Adam is the same code as tf_keras' legacy Adam (tf_keras is its fork).
    inner = tf.keras.optimizers.legacy.Adam(**hyperparameters)
    return addons.optimizers.Lookahead(
        inner, sync_period=lookahead_sync_period, slow_step_size=lookahead_slow_step_size
    )


def create_weights(optimizer, variables):
    """Creates the weights (slots, step counter, slow copies) of an optimizer from `make_adam`, before tracing."""
    if isinstance(optimizer, Lookahead):
        optimizer.create_weights(variables)
    else:
        # A Keras legacy optimizer: tf_keras' Adam or tensorflow-addons' Lookahead. They have no public way
        # to create their slots before the first step.
        optimizer._create_all_weights(variables)
