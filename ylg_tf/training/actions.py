"""What a training run does between its loops: the checked loop itself, the summaries (log line, TensorBoard,
sample grid), the evaluation, the checkpoint and the export. When each runs is `ylg_tf.training.schedule`'s
decision alone; `ylg_tf.training.experiment` registers these with the controller.

What none of them does: save a checkpoint holding a NaN or infinite value (every loop's losses and every
saved variable are checked; TrainingDivergedError names the intact last checkpoint), or leave the partial
files of a failed write (a full disk is one DiskWriteError).
"""

import math
import os
import re

import tensorflow as tf

from ylg_tf.pictures import class_grid_picture, image_grid, png_bytes, upscale
from ylg_tf.storage import evaluation_history, files
from ylg_tf.storage.export import export_generator
from ylg_tf.storage.workdir import CHECKPOINT_NAME, best_checkpoint_directory
from ylg_tf.training.stop_request import run_in_worker
from ylg_tf.training.trainer import METRIC_NAMES

EVALUATION_SCORES = ("fid", "inception_score", "class_accuracy")


class TrainingDivergedError(RuntimeError):
    """A loss, or a weight about to be saved, became NaN or infinite."""


class DiskWriteError(OSError):
    """A checkpoint, sample or export could not be written (a full disk, an I/O error); its partial files
    were removed."""


def written(what, write, partial_patterns=(), directory=None):
    """`write()`, with a failing disk (full, read-only, I/O error) raised as one-line DiskWriteError after
    removing the files matching `partial_patterns` in `directory`."""
    try:
        return write()
    except (tf.errors.OpError, OSError) as error:
        if isinstance(error, DiskWriteError):
            raise
        if directory is not None:
            files.remove_matching(directory, partial_patterns)
        detail = getattr(error, "message", None) or str(error)
        detail = " ".join(re.sub(r"\{\{[^}]*\}\}|\[Op:\w+\]", "", detail).split())[:300]
        raise DiskWriteError(
            f"could not write {what} ({type(error).__name__}: {detail}); its partial files were removed. "
            "Free space or fix the disk, then rerun to resume from the last checkpoint"
        ) from None


def eta_text(seconds):
    """Time left as H:MM:SS, with days in front when there are any ("3d 04:48:33")."""
    if not math.isfinite(seconds):
        return "unknown"
    days, rest = divmod(int(round(max(seconds, 0.0))), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{seconds:02d}"
    return f"{days}d {clock}" if days else clock


def checked_loop(trainer, iterator, checkpoints):
    """`train(num_steps)` for the controller: runs the trainer's loop in a worker thread (so that a signal
    stops it, `ylg_tf.training.stop_request`) and raises TrainingDivergedError on a non-finite loss."""

    def train(num_steps):
        metrics = run_in_worker(trainer.run_loop, iterator, num_steps)
        values = {name: getattr(metrics, name) for name in METRIC_NAMES}
        if not metrics.finite or not all(math.isfinite(value) for value in values.values()):
            raise TrainingDivergedError(
                f"non-finite loss at step {metrics.step} ({values}); the last good checkpoint "
                f"{checkpoints.latest_checkpoint or '(none)'} is intact"
            )
        return metrics

    return train


def mean_metrics(loops):
    """{name: mean over every step of `loops`} (each loop's metrics are its steps' means)."""
    steps = sum(loop.num_steps for loop in loops)
    return {
        name: sum(getattr(loop.metrics, name) * loop.num_steps for loop in loops) / steps
        for name in METRIC_NAMES
    }


def write_config_text(writer, config, step):
    """The resolved config as a TensorBoard text summary ("config", JSON in a code block) at `step`."""
    with writer.as_default(step=step):
        tf.summary.text("config", "```\n" + config.to_json() + "\n```")
    writer.flush()


class Summaries:
    """The log line, the TensorBoard scalars and the grid of fixed-latent samples (written to
    samples/step_XXXXXXXX.png and samples/latest.png), over the loops since the last summaries.

    A grid with one row per class (`class_grid_latents`: the first classes, a few fixed latents each) goes to
    samples/classes_latest.png and TensorBoard. TensorBoard also gets both learning rates and, with a
    `class_scorer` (`ylg_tf.evaluation.class_accuracy`: the built-in classifier on a built-in-data run), the
    share of samples recognised as their class, overall and per class (the last one: `last_class_accuracy`).

    Beside each attention layer's sigma_ratio, the mean entropy and distance of every head's attention
    (`ylg_tf.attention.analytics`), computed outside the compiled step on the sample grid's fixed latents (G)
    and on G's images of them (D), so that the curves of one run compare step by step."""

    def __init__(self, trainer, train_steps, writer, samples_directory, latents, log, class_grid_latents=None,
                 class_scorer=None, class_names=None):
        self.trainer = trainer
        self.train_steps = train_steps
        self.writer = writer
        self.samples_directory = samples_directory
        self.latest_path = os.path.join(samples_directory, "latest.png")
        self.class_grid_path = os.path.join(samples_directory, "classes_latest.png")
        self.latents = latents
        self.log = log
        self.class_grid_latents = class_grid_latents
        self.class_scorer = class_scorer
        self.class_names = class_names
        self.last_class_accuracy = None

    def __call__(self, step, loops):
        values = mean_metrics(loops)
        steps_per_second = sum(loop.num_steps for loop in loops) / max(sum(loop.seconds for loop in loops), 1e-9)
        self.log(
            f"step {step}/{self.train_steps}  d_loss {values['discriminator_loss']:.4f}  "
            f"g_loss {values['generator_loss']:.4f}  D(real) {values['real_logits']:.3f}  "
            f"D(fake) {values['fake_logits']:.3f}  {steps_per_second:.2f} steps/s  "
            f"ETA {eta_text((self.train_steps - step) / steps_per_second)}"
        )
        # Small images are enlarged (nearest neighbour) so that a grid is at least ~512 pixels wide.
        image_size = self.trainer.config.model.image_size
        grid = upscale(image_grid(self.trainer.sample(*self.latents).numpy(), columns=4),
                       max(1, 128 // image_size))
        for path in (os.path.join(self.samples_directory, f"step_{step:08d}.png"), self.latest_path):
            written(f"samples in {self.samples_directory}", lambda: files.write_bytes_atomically(path, png_bytes(grid)))
        per_class = None
        if self.class_grid_latents is not None:
            z, labels, samples_per_class = self.class_grid_latents
            per_class = class_grid_picture(self.trainer.sample(z, labels).numpy(), samples_per_class)
            written(f"samples in {self.samples_directory}",
                    lambda: files.write_bytes_atomically(self.class_grid_path, png_bytes(per_class)))
        class_accuracy = None
        if self.class_scorer is not None:
            class_accuracy = self.last_class_accuracy = self.class_scorer(self.trainer.sampling_generator)
        with self.writer.as_default(step=step):
            for name, value in values.items():
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("train/steps_per_second", steps_per_second)
            tf.summary.scalar("train/generator_learning_rate", float(self.trainer.generator_optimizer.learning_rate))
            tf.summary.scalar("train/discriminator_learning_rate",
                              float(self.trainer.discriminator_optimizer.learning_rate))
            if class_accuracy is not None:
                tf.summary.scalar("class_accuracy/all", class_accuracy.accuracy)
                for label, value in enumerate(class_accuracy.per_class):
                    name = self.class_names[label] if self.class_names else f"class_{label}"
                    if math.isfinite(value):
                        tf.summary.scalar(f"class_accuracy/{name}", value)
            for name, value in self.trainer.attention_sigma_ratios().items():
                tf.summary.scalar(f"sigma_ratio/{name}", value)
            # Per head: how spread (nats) and how far (key-grid pixels) each layer looks, on the grid's latents.
            for name, statistics in self.trainer.attention_statistics(*self.latents).items():
                for head, (entropy, distance) in enumerate(zip(statistics.entropy, statistics.distance)):
                    tf.summary.scalar(f"attention_entropy/{name}/head_{head}", entropy)
                    tf.summary.scalar(f"attention_distance/{name}/head_{head}", distance)
            tf.summary.image("samples", grid[None], max_outputs=1)
            if per_class is not None:
                tf.summary.image("samples_per_class", per_class[None], max_outputs=1)
        self.writer.flush()


class Evaluation:
    """Scores the sampling generator with `evaluator(generator, step) -> {name: value}` (None: the action
    does nothing) into TensorBoard (eval/fid, eval/inception_score, eval/class_accuracy where the evaluator
    gives it, eval/best_fid), the log, the work
    directory's history (DIR/evaluation/history.jsonl) and, when its FID is the lowest so far, the best
    checkpoint (DIR/checkpoints/best/, never deleted by the keep-N rotation; `ylg_tf.storage.evaluation_history`)."""

    def __init__(self, trainer, evaluator, writer, log, workdir):
        self.trainer = trainer
        self.evaluator = evaluator
        self.writer = writer
        self.log = log
        self.workdir = workdir
        self.best_directory = best_checkpoint_directory(workdir)

    def __call__(self, step, loops):
        if self.evaluator is None:
            return
        scores = dict(self.evaluator(self.trainer.sampling_generator, step), step=int(step))
        best = evaluation_history.read_best(self.best_directory)
        improved = evaluation_history.is_better(scores, best) and not self.trainer.non_finite_variables()
        if improved:
            best = written(f"the best checkpoint in {self.best_directory}", lambda: evaluation_history.write_best(
                self.best_directory, self.trainer.checkpoint, scores))
        written(f"the evaluation history {evaluation_history.history_path(self.workdir)}",
                lambda: evaluation_history.append_to_history(self.workdir, dict(scores, best=improved)))
        with self.writer.as_default(step=step):
            for name in EVALUATION_SCORES:
                if name in scores:
                    tf.summary.scalar(f"eval/{name}", scores[name])
            if best is not None:
                tf.summary.scalar("eval/best_fid", best["fid"])
        self.writer.flush()
        line = "  ".join(f"{n} {scores[n]:.4f}" for n in EVALUATION_SCORES if n in scores)
        if improved:
            line += f"  (best so far: {self.best_directory})"
        elif best is not None:
            line += f"  (best fid {best['fid']:.4f} at step {best['step']})"
        self.log(f"step {step}  {line}")


class CheckpointSaver:
    """Saves the trainer's checkpoint with `manager` (never one holding a non-finite value, only while
    `lock` is held); `path` is the latest checkpoint of this run ("" before any)."""

    def __init__(self, trainer, manager, lock, path=""):
        self.trainer = trainer
        self.manager = manager
        self.lock = lock
        self.path = path

    def __call__(self, step, loops=()):
        non_finite = self.trainer.non_finite_variables()
        if non_finite:
            raise TrainingDivergedError(
                f"{len(non_finite)} variables hold non-finite values at step {step} (e.g. {non_finite[0]}); "
                f"not saved: the last good checkpoint {self.manager.latest_checkpoint or '(none)'} is intact"
            )
        self.lock.check_held()
        directory = self.manager.directory
        name = f"{CHECKPOINT_NAME}-{step}"
        self.path = written(
            f"checkpoint {name} in {directory}",
            lambda: self.manager.save(checkpoint_number=step),
            (f"{name}_temp", f"{name}.*", "*.tmp*"),
            directory,
        )
        return self.path


class Export:
    """Exports the sampling generator as a SavedModel to `directory` (replacing the previous export)."""

    def __init__(self, trainer, directory, log):
        self.trainer = trainer
        self.directory = directory
        self.log = log

    def __call__(self, step, loops=()):
        written(
            f"the export {self.directory}",
            lambda: export_generator(
                self.trainer.sampling_generator, self.trainer.config.model, self.directory, overwrite=True),
        )
        self.log(f"exported the generator to {self.directory}")
