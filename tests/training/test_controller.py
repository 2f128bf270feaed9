"""The schedule and the controller of the outer training loop: every interval honoured exactly.

The schedule and the controller are checked against a reference computed step by step (which actions are
due at each step, where each loop must end), over every small combination of intervals, run lengths and
resume steps; one real run through `run_training` shows the evaluations and checkpoints at those steps.
"""

import dataclasses
import itertools

import numpy as np
import pytest

from ylg_tf.config import TrainingConfig
from ylg_tf.training.controller import Controller
from ylg_tf.training.schedule import Action, Schedule, training_schedule


def _schedule(train_steps, steps_per_loop, checkpoint_every, eval_every):
    return training_schedule(TrainingConfig(
        train_steps=train_steps, steps_per_loop=steps_per_loop, checkpoint_every=checkpoint_every,
        eval_every=eval_every))


def _reference_due(step, train_steps, steps_per_loop, checkpoint_every, eval_every):
    """The actions due at `step`, from the rules in the schedule's docstring, written out independently."""
    end = step == train_steps
    due = []
    if step % steps_per_loop == 0 or end:
        due.append("summaries")
    if eval_every and (step % eval_every == 0 or end):
        due.append("evaluate")
    if step % checkpoint_every == 0 or end:
        due.append("checkpoint")
    if end:
        due.append("export")
    return tuple(due)


def _reference_loops(start, train_steps, *intervals):
    """(start, end) of each loop, walking one step at a time: a loop ends at the first step with an action."""
    loops, loop_start = [], start
    for step in range(start + 1, train_steps + 1):
        if _reference_due(step, train_steps, *intervals):
            loops.append((loop_start, step))
            loop_start = step
    return loops


@dataclasses.dataclass(frozen=True)
class FakeMetrics:
    step: int
    num_steps: int


class FakeTrainer:
    """Counts steps like the trainer; `stop_at` sets the stop request when that step is reached."""

    def __init__(self, step, stop_at=None):
        self.step = step
        self.stop_at = stop_at
        self.stopped = False
        self.loops = []

    def train(self, num_steps):
        start = self.step
        for _ in range(num_steps):
            if self.stopped:
                break
            self.step += 1
            self.stopped = self.step == self.stop_at
        self.loops.append((start, self.step))
        return FakeMetrics(self.step, self.step - start)


def _run(schedule, start, stop_at=None):
    """Runs a controller on a fake trainer; returns the trainer, the step reached and each action's
    firings as (step, steps covered by the loops it was given)."""
    trainer = FakeTrainer(start, stop_at)
    fired = {name: [] for name in schedule.names}

    def recorder(name):
        return lambda step, loops: fired[name].append((step, sum(loop.num_steps for loop in loops)))

    controller = Controller(schedule, trainer.train, {name: recorder(name) for name in schedule.names},
                            stop_requested=lambda: trainer.stopped)
    return trainer, controller.run(start), fired


def test_eval_every_250_with_100_step_loops_evaluates_at_250_500_750_1000():
    schedule = _schedule(train_steps=1000, steps_per_loop=100, checkpoint_every=500, eval_every=250)
    trainer, reached, fired = _run(schedule, 0)
    assert reached == 1000
    assert [step for step, _ in fired["evaluate"]] == [250, 500, 750, 1000]
    assert [step for step, _ in fired["checkpoint"]] == [500, 1000]
    assert [step for step, _ in fired["summaries"]] == list(range(100, 1001, 100))
    assert [step for step, _ in fired["export"]] == [1000]
    assert [end for _, end in trainer.loops] == [
        100, 200, 250, 300, 400, 500, 600, 700, 750, 800, 900, 1000]
    # The summaries at 300 cover the loops 200-250 and 250-300.
    assert dict(fired["summaries"])[300] == 100


def test_every_interval_combination_matches_the_step_by_step_reference():
    for steps_per_loop, checkpoint_every, eval_every in itertools.product(range(1, 8), range(1, 8), range(8)):
        intervals = (steps_per_loop, checkpoint_every, eval_every)
        for train_steps in range(1, 19):
            schedule = _schedule(train_steps, *intervals)
            due = {step: _reference_due(step, train_steps, *intervals) for step in range(1, train_steps + 1)}
            # Fresh runs, and resumes from the first steps, the middle and the last step.
            for start in sorted({0, 1, train_steps // 2, train_steps - 1} & set(range(train_steps))):
                context = dict(intervals=intervals, train_steps=train_steps, start=start)
                expected_loops = _reference_loops(start, train_steps, *intervals)
                assert list(schedule.loops(start)) == expected_loops, context
                trainer, reached, fired = _run(schedule, start)
                assert reached == train_steps and trainer.loops == expected_loops, context
                assert all(end - begin <= steps_per_loop for begin, end in trainer.loops), context
                for name in schedule.names:
                    expected = [step for step in range(start + 1, train_steps + 1) if name in due[step]]
                    assert [step for step, _ in fired[name]] == expected, (name, context)
                    # Each firing is given exactly the loops since the previous one (or the start).
                    previous = [start] + expected[:-1]
                    assert [covered for _, covered in fired[name]] == [
                        step - before for step, before in zip(expected, previous)], (name, context)


def test_a_stop_fires_only_the_stop_actions_once_at_the_step_reached():
    intervals = (3, 4, 2)  # steps_per_loop, checkpoint_every, eval_every
    for train_steps, start in itertools.product(range(1, 13), range(12)):
        if start >= train_steps:
            continue
        schedule = _schedule(train_steps, *intervals)
        for stop_at in range(start + 1, train_steps + 1):
            context = dict(train_steps=train_steps, start=start, stop_at=stop_at)
            trainer, reached, fired = _run(schedule, start, stop_at)
            assert reached == stop_at, context
            for name in schedule.names:
                # Before the stop, everything as scheduled (the loop that the stop ended fires nothing).
                before = [step for step in range(start + 1, stop_at)
                          if name in _reference_due(step, train_steps, *intervals)]
                at_stop = [stop_at] if name in ("summaries", "checkpoint") else []
                assert [step for step, _ in fired[name]] == before + at_stop, (name, context)


def test_a_stop_after_the_actions_of_a_step_saves_that_step_once():
    # A stop requested while the actions of step 6 run (as a SIGTERM during an evaluation): the next loop
    # does not start, and only the checkpoint, which step 6 did not have, is written.
    schedule = _schedule(train_steps=10, steps_per_loop=2, checkpoint_every=100, eval_every=2)
    trainer = FakeTrainer(4)
    fired = []

    def evaluate(step, loops):
        fired.append(("evaluate", step))
        trainer.stopped = True

    actions = {name: (lambda name: lambda step, loops: fired.append((name, step)))(name)
               for name in schedule.names}
    actions["evaluate"] = evaluate
    reached = Controller(schedule, trainer.train, actions, stop_requested=lambda: trainer.stopped).run(4)
    assert reached == 6
    assert fired == [("summaries", 6), ("evaluate", 6), ("checkpoint", 6)]


def test_a_stop_before_the_first_step_fires_nothing():
    schedule = _schedule(train_steps=10, steps_per_loop=2, checkpoint_every=2, eval_every=2)
    fired = []
    controller = Controller(schedule, FakeTrainer(4).train,
                            {name: (lambda step, loops: fired.append(step)) for name in schedule.names},
                            stop_requested=lambda: True)
    assert controller.run(4) == 4 and fired == []


def test_eval_every_zero_never_evaluates_and_a_resumed_run_keeps_the_boundaries_of_step_zero():
    schedule = _schedule(train_steps=700, steps_per_loop=100, checkpoint_every=250, eval_every=0)
    assert "evaluate" not in schedule.due(700) and schedule.due(250) == ("checkpoint",)
    assert list(schedule.loops(137))[:3] == [(137, 200), (200, 250), (250, 300)]
    assert schedule.loop_end(699) == 700


def test_bad_schedules_and_action_sets_are_refused():
    with pytest.raises(ValueError, match="every=-1"):
        Action("evaluate", -1)
    with pytest.raises(ValueError, match=r"\['checkpoint'\] are registered twice"):
        Schedule(10, 2, (Action("checkpoint", 2), Action("checkpoint", 3)))
    with pytest.raises(ValueError, match="steps_per_loop=0"):
        Schedule(10, 0, ())
    schedule = _schedule(10, 2, 2, 0)
    with pytest.raises(ValueError, match=r"missing \['export'\], unknown \['samples'\]"):
        Controller(schedule, FakeTrainer(0).train, {
            "summaries": print, "evaluate": print, "checkpoint": print, "samples": print})
    with pytest.raises(ValueError, match="outside"):
        schedule.loop_end(10)


def test_a_loop_ending_early_without_a_stop_is_an_error():
    schedule = _schedule(train_steps=10, steps_per_loop=5, checkpoint_every=5, eval_every=0)
    controller = Controller(schedule, lambda num_steps: FakeMetrics(step=num_steps - 1, num_steps=num_steps - 1),
                            {name: (lambda step, loops: None) for name in schedule.names})
    with pytest.raises(RuntimeError, match="asked to end at step 5 ended at step 4"):
        controller.run(0)


def test_a_run_evaluates_and_checkpoints_at_the_scheduled_steps(tmp_path, monkeypatch):
    """eval_every=3, steps_per_loop=2, checkpoint_every=4, train_steps=8: loops end at 2, 3, 4, 6, 8; the
    run evaluates at 3, 6 and, at the end, 8; checkpoints at 4 and 8; summaries at 2, 4, 6, 8. (One tiny run:
    the resumed and stopped cases are the controller tests' above.)"""
    import tensorflow as tf

    from ylg_tf.config import get_preset
    from ylg_tf.storage import workdir as workdirs
    from ylg_tf.training.experiment import run_training
    from ylg_tf.training.trainer import Trainer

    config = get_preset("test").replace(
        model={"attention": "none", "generator_channels": 16, "discriminator_channels": 16},
        training={"train_steps": 8, "steps_per_loop": 2, "checkpoint_every": 4, "eval_every": 3},
    )
    loop_sizes, evaluated = [], []
    run_loop = Trainer.run_loop

    def recorded_run_loop(self, iterator, num_steps):
        loop_sizes.append(num_steps)
        return run_loop(self, iterator, num_steps)

    def evaluator(generator, step):
        evaluated.append(step)
        return {"fid": float(step), "inception_score": 1.0}

    monkeypatch.setattr(Trainer, "run_loop", recorded_run_loop)
    messages = []
    directory = tmp_path / "run"
    result = run_training(config, str(directory), tf.distribute.get_strategy(), log=messages.append,
                          evaluator=evaluator)
    assert result.step == 8 and not result.preempted
    assert loop_sizes == [2, 1, 1, 2, 2]
    assert evaluated == [3, 6, 8]
    # The FID rises, so step 3 stays the best (kept in checkpoints/best/) and later lines name it.
    assert [m for m in messages if "fid" in m] == [
        f"step 3  fid 3.0000  inception_score 1.0000  (best so far: {workdirs.best_checkpoint_directory(directory)})"
    ] + [f"step {s}  fid {s:.4f}  inception_score 1.0000  (best fid 3.0000 at step 3)" for s in (6, 8)]
    assert [workdirs.checkpoint_step(p) for p in workdirs.checkpoints_on_disk(directory)] == [4, 8]
    assert sorted(path.name for path in (directory / "samples").glob("step_*.png")) == [
        f"step_{step:08d}.png" for step in (2, 4, 6, 8)]
    assert [m.split()[1] for m in messages if m.startswith("step ") and "steps/s" in m] == [
        "2/8", "4/8", "6/8", "8/8"]

    tags = {}
    for path in (directory / "summaries").glob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                tags.setdefault(value.tag, []).append(event.step)
    assert tags["eval/fid"] == [3, 6, 8]
    assert tags["train/discriminator_loss"] == tags["samples"] == [2, 4, 6, 8]


def test_summaries_average_every_step_of_the_loops_they_cover():
    from ylg_tf.training.actions import mean_metrics
    from ylg_tf.training.controller import LoopRecord
    from ylg_tf.training.trainer import METRIC_NAMES, LoopMetrics

    values = np.array([[1.0, -2.0, 0.5, 3.0], [4.0, 2.0, -0.5, 1.0]])  # one loop per row, METRIC_NAMES order
    num_steps = np.array([1, 3])
    loops = [LoopRecord(LoopMetrics(step, *row, num_steps=int(count)), seconds=1.0)
             for step, row, count in zip((3, 6), values, num_steps)]
    expected = (values * num_steps[:, None]).sum(0) / num_steps.sum()
    means = mean_metrics(loops)
    np.testing.assert_allclose([means[name] for name in METRIC_NAMES], expected, rtol=1e-12)
