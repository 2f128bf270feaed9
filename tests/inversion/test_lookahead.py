"""Tests for ylg_tf.inversion.lookahead: our Lookahead and the factory's optimizer follow tensorflow-addons' trajectory.

TENSORFLOW_ADDONS_TRAJECTORY was made once, on the paper stack (TensorFlow 2.15.1, tensorflow-addons 0.23.0),
by tensorflow-addons' Lookahead(k=5, alpha=0.5) around a legacy Adam(0.07, 0.9, 0.999, 1e-8) minimising
QUADRATIC from INITIAL for 12 steps inside tf.function / tf.while_loop, as `ylg_tf.inversion.invert.invert` runs it.
The numbers are the variable after each step (float32, printed in their shortest round-trip form). Steps 1-4
are Adam alone; the synchronisations come right after the inner updates of steps 5 and 10.
"""

import pathlib

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf.inversion import lookahead

LEARNING_RATE = 0.07  # inversion's default
SYNC_PERIOD = 5
SLOW_STEP_SIZE = 0.5
STEPS = 12

INITIAL = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 4.0
TARGET = np.array([[0.3, -0.2, 0.9, -1.1], [0.05, 0.6, -0.4, 1.3], [-0.7, 0.15, 0.45, -0.25]], np.float32)
SCALE = np.linspace(0.5, 2.0, 12, dtype=np.float32).reshape(3, 4)

# fmt: off
TENSORFLOW_ADDONS_TRAJECTORY = np.array([
    # step 1
    [[-1.3050001, -1.0550001, -0.805, -0.695], [-0.305, -0.055000015, 0.055000015, 0.445],
     [0.555, 0.805, 1.0550001, 1.3050001]],
    # step 2
    [[-1.2350941, -0.9851978, -0.7350878, -0.76448995], [-0.23560669, 0.014724992, -0.014561832, 0.5148023],
     [0.48512498, 0.73527503, 0.985304, 1.2350975]],
    # step 3
    [[-1.1653498, -0.91574955, -0.6653262, -0.83298], [-0.16743001, 0.08394481, -0.08328028, 0.5842505],
     [0.41546774, 0.6660552, 0.9161714, 1.1653631]],
    # step 4
    [[-1.0958412, -0.8468348, -0.5957834, -0.8998292], [-0.1012926, 0.15238509, -0.15063831, 0.6531653],
     [0.3461309, 0.59761494, 0.8479155, 1.0958735]],
    # step 5: Adam's step, then the first synchronisation pulls the variable halfway back to INITIAL
    [[-1.2008226, -0.9518275, -0.70076525, -0.794611], [-0.2066321, 0.047362402, -0.04549569, 0.5481725],
     [0.4511122, 0.7026376, 0.95295393, 1.2008548]],
    # step 6
    [[-1.1315396, -0.8834475, -0.6314315, -0.85960317], [-0.14287248, 0.1149949, -0.11135165, 0.6165525],
     [0.3820865, 0.6350051, 0.8856175, 1.1316001]],
    # step 7
    [[-1.0623679, -0.81530136, -0.56220186, -0.9239292], [-0.079932466, 0.18229648, -0.17665026, 0.68469864],
     [0.313208, 0.56770355, 0.81864995, 1.0624608]],
    # step 8
    [[-0.99346524, -0.7477573, -0.49322248, -0.9863817], [-0.019323133, 0.24871773, -0.24040002, 0.7522427],
     [0.24469337, 0.5012823, 0.7526736, 0.99360085]],
    # step 9
    [[-0.9249686, -0.68115735, -0.4246198, -1.0457113], [0.037373446, 0.31372872, -0.30159, 0.81884265],
     [0.1767348, 0.43627128, 0.6882961, 0.9251633]],
    # step 10: the second synchronisation
    [[-1.028913, -0.7838316, -0.5286372, -0.94761306], [-0.05905129, 0.2120782, -0.20233054, 0.7161684],
     [0.2803123, 0.5379218, 0.7895455, 1.029067]],
    # step 11
    [[-0.9610176, -0.7186829, -0.46059105, -1.0017729], [-0.008880731, 0.2748669, -0.25932702, 0.7813171],
     [0.21318676, 0.47513306, 0.7277084, 0.96125585]],
    # step 12
    [[-0.89338756, -0.65416265, -0.39279094, -1.053806], [0.038673125, 0.3367035, -0.3145718, 0.84583735],
     [0.14642641, 0.41329646, 0.66695553, 0.89372087]],
], np.float32)
# fmt: on


def quadratic(variable):
    return tf.reduce_sum(SCALE * tf.square(variable - TARGET))


def adam():
    return tf_keras.optimizers.legacy.Adam(LEARNING_RATE, beta_1=0.9, beta_2=0.999, epsilon=1e-8)


def compiled_trajectory(optimizer, initial=INITIAL, steps=STEPS, before_first_step=None):
    """The variable after each of `steps` steps [steps, 3, 4], run like inversion: one tf.while_loop."""
    variable = tf.Variable(initial)
    lookahead.create_weights(optimizer, [variable])
    if before_first_step is not None:
        before_first_step(variable)

    def step(index, history):
        with tf.GradientTape() as tape:
            loss = quadratic(variable)
        update = optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        with tf.control_dependencies([update]):  # record the updated variable
            return index + 1, history.write(index, variable.read_value())

    @tf.function(autograph=False)
    def run_steps(num_steps):
        _, history = tf.while_loop(
            lambda index, _: index < num_steps,
            step,
            [tf.constant(0), tf.TensorArray(tf.float32, size=num_steps)],
            parallel_iterations=1,
        )
        return history.stack()

    return run_steps(tf.constant(steps)).numpy()


def eager_trajectory(optimizer, steps=STEPS):
    variable = tf.Variable(INITIAL)  # no create_weights: apply_gradients creates them on the first step
    history = []
    for _ in range(steps):
        with tf.GradientTape() as tape:
            loss = quadratic(variable)
        optimizer.apply_gradients([(tape.gradient(loss, variable), variable)])
        history.append(variable.numpy())
    return np.stack(history)


def numpy_lookahead_adam(sync_period, slow_step_size, steps=STEPS):
    """Lookahead around TF1's Adam in float64, from the definitions: one step count t for Adam's bias
    correction, carried on across synchronisations; a sync after the steps t = k, 2k, ...; slow starts at x_0."""
    variable = INITIAL.astype(np.float64)
    slow = variable.copy()
    first_moment = np.zeros_like(variable)
    second_moment = np.zeros_like(variable)
    history = []
    for t in range(1, steps + 1):
        gradient = 2.0 * SCALE * (variable - TARGET)
        first_moment = 0.9 * first_moment + 0.1 * gradient
        second_moment = 0.999 * second_moment + 0.001 * gradient**2
        step_size = LEARNING_RATE * np.sqrt(1.0 - 0.999**t) / (1.0 - 0.9**t)
        variable = variable - step_size * first_moment / (np.sqrt(second_moment) + 1e-8)
        if t % sync_period == 0:
            slow = slow + slow_step_size * (variable - slow)
            variable = slow.copy()
        history.append(variable)
    return np.stack(history)


def test_our_lookahead_reproduces_the_tensorflow_addons_trajectory():
    ours = lookahead.Lookahead(adam(), SYNC_PERIOD, SLOW_STEP_SIZE)
    np.testing.assert_allclose(compiled_trajectory(ours), TENSORFLOW_ADDONS_TRAJECTORY, rtol=0, atol=1e-6)
    assert int(ours.iterations.numpy()) == STEPS
    # Outside tf.function too; there apply_gradients creates the weights itself on the first step.
    eager = eager_trajectory(lookahead.Lookahead(adam(), SYNC_PERIOD, SLOW_STEP_SIZE))
    np.testing.assert_allclose(eager, TENSORFLOW_ADDONS_TRAJECTORY, rtol=0, atol=1e-6)


def test_the_factory_optimizer_is_tensorflow_addons_where_it_imports_and_reproduces_the_trajectory():
    optimizer = lookahead.make_adam(
        LEARNING_RATE, 0.9, 0.999, 1e-8, lookahead_sync_period=SYNC_PERIOD, lookahead_slow_step_size=SLOW_STEP_SIZE
    )
    addons = lookahead.tensorflow_addons()
    if int(tf.__version__.split(".")[1]) >= 16:
        assert addons is None  # tensorflow-addons 0.23 cannot import on TF >= 2.16, installed or not
    if addons is None:
        assert isinstance(optimizer, lookahead.Lookahead)
    else:
        assert isinstance(optimizer, addons.optimizers.Lookahead)
    np.testing.assert_allclose(compiled_trajectory(optimizer), TENSORFLOW_ADDONS_TRAJECTORY, rtol=0, atol=1e-6)
    plain = lookahead.make_adam(LEARNING_RATE, 0.9, 0.999, 1e-8)
    assert isinstance(plain, tf_keras.optimizers.legacy.Adam)


def test_the_stored_trajectory_is_lookahead_from_its_definition():
    # Documents the semantics the stored numbers pin: steps 1-4 are Adam alone, the step count of Adam's
    # bias correction runs on through the syncs, and the first sync pulls back towards the initial value.
    np.testing.assert_allclose(
        numpy_lookahead_adam(SYNC_PERIOD, SLOW_STEP_SIZE), TENSORFLOW_ADDONS_TRAJECTORY, rtol=0, atol=2e-6
    )
    plain = compiled_trajectory(adam())
    np.testing.assert_array_equal(plain[: SYNC_PERIOD - 1], TENSORFLOW_ADDONS_TRAJECTORY[: SYNC_PERIOD - 1])
    synchronised = INITIAL + np.float32(SLOW_STEP_SIZE) * (plain[SYNC_PERIOD - 1] - INITIAL)
    np.testing.assert_allclose(TENSORFLOW_ADDONS_TRAJECTORY[SYNC_PERIOD - 1], synchronised, rtol=0, atol=1e-6)


def test_invariants_alpha_one_is_adam_and_k_one_matches_numpy():
    # alpha = 1 moves the slow weights all the way to the fast ones: Adam alone.
    np.testing.assert_allclose(
        compiled_trajectory(lookahead.Lookahead(adam(), SYNC_PERIOD, 1.0)),
        compiled_trajectory(adam()),
        rtol=0,
        atol=1e-6,
    )
    # k = 1 synchronises after every step.
    np.testing.assert_allclose(
        compiled_trajectory(lookahead.Lookahead(adam(), 1, 0.5)), numpy_lookahead_adam(1, 0.5), rtol=0, atol=2e-6
    )
    np.testing.assert_allclose(
        compiled_trajectory(lookahead.Lookahead(adam(), 3, 0.25)), numpy_lookahead_adam(3, 0.25), rtol=0, atol=2e-6
    )


def test_slow_weights_start_at_the_values_when_the_weights_are_created():
    # A change of the variable between create_weights and the first step is not seen by the slow copy
    # (with either kind of Lookahead), so the first sync pulls back towards the value at creation.
    shifted = INITIAL + 0.25

    def shift(variable):
        variable.assign(shifted)

    factory_optimizer = lookahead.make_adam(LEARNING_RATE, lookahead_sync_period=SYNC_PERIOD)
    for optimizer in (lookahead.Lookahead(adam(), SYNC_PERIOD, SLOW_STEP_SIZE), factory_optimizer):
        trajectory = compiled_trajectory(optimizer, before_first_step=shift)
        fast = compiled_trajectory(adam(), initial=shifted, steps=SYNC_PERIOD)[-1]
        expected = INITIAL + np.float32(SLOW_STEP_SIZE) * (fast - INITIAL)
        np.testing.assert_allclose(trajectory[SYNC_PERIOD - 1], expected, rtol=0, atol=1e-6)
    ours = lookahead.Lookahead(adam(), SYNC_PERIOD, SLOW_STEP_SIZE)
    variable = tf.Variable(INITIAL)
    ours.create_weights([variable])
    ours.create_weights([variable])  # a second call keeps the existing slow copy
    variable.assign(shifted)
    ours.create_weights([variable])
    np.testing.assert_array_equal(ours.slow_weight(variable).numpy(), INITIAL)


def test_argument_checks():
    with pytest.raises(TypeError, match="tf_keras legacy optimizer"):
        lookahead.Lookahead(tf_keras.optimizers.Adam(0.1), SYNC_PERIOD)
    for sync_period in (0, -1, 2.0, True):
        with pytest.raises(ValueError, match="sync_period"):
            lookahead.Lookahead(adam(), sync_period)
    for slow_step_size in (0.0, 1.5, -0.5):
        with pytest.raises(ValueError, match="slow_step_size"):
            lookahead.Lookahead(adam(), SYNC_PERIOD, slow_step_size)


def test_tensorflow_addons_is_imported_only_in_ylg_tf_lookahead():
    root = pathlib.Path(__file__).resolve().parents[2]
    importers = [
        path.relative_to(root).as_posix()
        for folder in ("ylg_tf", "tools", "experiments")
        for path in (root / folder).rglob("*.py")
        if "import tensorflow_addons" in path.read_text() or "from tensorflow_addons" in path.read_text()
    ]
    assert importers == ["ylg_tf/inversion/lookahead.py"]
