"""The schedule of a training run: which actions are due at which step, and so where each loop ends.

Pure Python (no TensorFlow), so the schedule is tested on its own. The one schedule of a run is
`training_schedule(config.training)`:

  summaries   every steps_per_loop steps and at the end (the log line, TensorBoard, the sample grid)
  evaluate    every eval_every steps and at the end (never when eval_every is 0)
  checkpoint  every checkpoint_every steps and at the end
  export      at the end only

An action with interval N fires at every multiple of N after the start step, whatever the other intervals;
a loop ends at the first step where any action is due, after at most steps_per_loop steps (the model is
Orbit's Controller, whose loop length is the minimum of its intervals). So with steps_per_loop=100,
eval_every=250 and checkpoint_every=500 the loops end at 100, 200, 250, 300, 400, 500, ... and the run
evaluates at exactly 250, 500, 750 and 1000. Boundaries are multiples counted from step 0, not from the
start of a resumed run: a run resumed at step 137 ends its first loop at 200.

A stop request (SIGTERM, SIGINT) fires only the actions marked `on_stop` (summaries and checkpoint), at the
step reached, when steps ran since they last fired.
"""

import dataclasses


@dataclasses.dataclass(frozen=True)
class Action:
    """One scheduled action: due at every positive multiple of `every` (0: no interval), at the run's last
    step when `at_end`, and after a stop request when `on_stop`."""

    name: str
    every: int = 0
    at_end: bool = True
    on_stop: bool = False

    def __post_init__(self):
        if not isinstance(self.every, int) or self.every < 0:
            raise ValueError(f"action {self.name!r}: every={self.every!r} must be 0 (no interval) or positive")


class Schedule:
    """The actions of a run of `train_steps` steps, in loops of at most `steps_per_loop` steps.

    `actions` keep their order: actions due at the same step fire in that order.
    """

    def __init__(self, train_steps, steps_per_loop, actions):
        for name, value in (("train_steps", train_steps), ("steps_per_loop", steps_per_loop)):
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name}={value!r} must be a positive integer")
        self.train_steps = train_steps
        self.steps_per_loop = steps_per_loop
        self.actions = tuple(actions)
        names = [action.name for action in self.actions]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ValueError(f"actions {duplicates} are registered twice")

    @property
    def names(self):
        return tuple(action.name for action in self.actions)

    @property
    def on_stop(self):
        """The names of the actions a stop request fires."""
        return tuple(action.name for action in self.actions if action.on_stop)

    def due(self, step):
        """The names of the actions due at `step`, in registration order."""
        return tuple(
            action.name
            for action in self.actions
            if (action.every and step > 0 and step % action.every == 0)
            or (action.at_end and step == self.train_steps)
        )

    def loop_end(self, step):
        """Where the loop starting at `step` (below train_steps) ends: the first later step at which an
        action is due, at most steps_per_loop steps on."""
        if not 0 <= step < self.train_steps:
            raise ValueError(f"step {step} is outside [0, train_steps={self.train_steps})")
        intervals = [self.steps_per_loop] + [action.every for action in self.actions if action.every]
        return min([self.train_steps] + [(step // every + 1) * every for every in intervals])

    def loops(self, start_step=0):
        """The (start, end) of every loop of a run from `start_step` to train_steps, none stopped."""
        step = start_step
        while step < self.train_steps:
            end = self.loop_end(step)
            yield step, end
            step = end


def training_schedule(training):
    """The schedule of a run with these training settings (a `ylg_tf.config.TrainingConfig`)."""
    return Schedule(
        training.train_steps,
        training.steps_per_loop,
        (
            Action("summaries", training.steps_per_loop, on_stop=True),
            Action("evaluate", training.eval_every, at_end=training.eval_every > 0),
            Action("checkpoint", training.checkpoint_every, on_stop=True),
            Action("export"),
        ),
    )
