"""The outer loop of a training run: runs the loops a `Schedule` plans and fires the actions due after each.

`Controller(schedule, train, actions, stop_requested).run(step)` trains from `step` in loops that end
where `schedule.loop_end` says, so no loop crosses a boundary of any action
(`ylg_tf.training.schedule`), and after each loop calls the actions `schedule.due` names, in the
schedule's order. When a stop is requested (checked before every loop and after it) the controller fires
only the schedule's stop actions, and only those that missed steps since they last fired, then returns.

The controller knows no TensorFlow: `train(num_steps)` runs the steps and returns the loop's metrics (any
object with `step`, the step reached, and `num_steps`, the steps it ran); each action is called as
`action(step, loops)` with the `LoopRecord`s of the loops since it last fired.
"""

import dataclasses
import time


@dataclasses.dataclass(frozen=True)
class LoopRecord:
    """One loop: what `train` returned, and the seconds it took."""

    metrics: object
    seconds: float

    @property
    def num_steps(self):
        return self.metrics.num_steps


class Controller:
    """See the module docstring. `actions` maps every name of the schedule to its callable."""

    def __init__(self, schedule, train, actions, stop_requested=lambda: False, clock=time.perf_counter):
        missing = [name for name in schedule.names if name not in actions]
        unknown = [name for name in actions if name not in schedule.names]
        if missing or unknown:
            raise ValueError(f"actions must be exactly the schedule's {list(schedule.names)}; "
                             f"missing {missing}, unknown {unknown}")
        self.schedule = schedule
        self.train = train
        self.actions = dict(actions)
        self.stop_requested = stop_requested
        self.clock = clock

    def run(self, step):
        """Trains from `step` until the schedule's end or a stop request; returns the step reached."""
        pending = {name: [] for name in self.schedule.names}  # the loops each action has not seen yet

        def fire(names):
            for name in names:
                loops, pending[name] = tuple(pending[name]), []
                self.actions[name](step, loops)

        while step < self.schedule.train_steps and not self.stop_requested():
            end = self.schedule.loop_end(step)
            started = self.clock()
            metrics = self.train(end - step)
            record = LoopRecord(metrics, self.clock() - started)
            if not record.num_steps:
                break  # stopped before the loop's first step
            step = metrics.step
            for loops in pending.values():
                loops.append(record)
            if self.stop_requested():
                break  # inside the loop or during its last step
            if step != end:
                raise RuntimeError(f"a loop asked to end at step {end} ended at step {step} without a stop request")
            fire(self.schedule.due(step))
        if self.stop_requested():
            fire([name for name in self.schedule.on_stop if pending[name]])
        return step
