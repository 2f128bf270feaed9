"""A whole training run in a work directory: data, resume, checkpoints, summaries, samples, export.

`run_training(config, workdir, strategy)` restores the latest readable checkpoint (falling back to older ones
when the latest is corrupt, never silently starting over), builds the data pipeline, writes the resolved
config (only then, so a run whose dataset cannot be built leaves no config.json claiming the directory),
trains in loops of `steps_per_loop` steps, and after each loop logs a line, writes TensorBoard summaries and a
sample grid of fixed latents, checkpoints every `checkpoint_every` steps, and exports the generator at the end.
SIGTERM (a preemption) saves a checkpoint after the current loop and returns cleanly.

Data on resume: the built-in dataset is addressed by example index, so a resumed run sees exactly the examples
an uninterrupted run would; other datasets are reshuffled with a seed that includes the resume step.
"""

import dataclasses
import logging
import math
import os
import signal
import time

import tensorflow as tf

from ylg_tf import files
from ylg_tf import workdir as workdirs
from ylg_tf.config import COMPUTATION_FIELDS, ExperimentConfig
from ylg_tf.datasets import dataset_info, make_dataset
from ylg_tf.export import export_generator
from ylg_tf.training import Trainer
from ylg_tf.visualization import image_grid, save_png, upscale

SAMPLE_GRID_SIZE = 16
EVALUATION_SCORES = ("fid", "inception_score")


class TrainingDivergedError(RuntimeError):
    """A loss became NaN or infinite."""


class CheckpointUnreadableError(RuntimeError):
    """Checkpoints exist but none of them can be restored."""


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    step: int
    preempted: bool
    checkpoint: str
    export_directory: str
    samples_path: str


def check_data_config(config: ExperimentConfig):
    """Fails early, with the bad value named, when the data cannot feed the model."""
    data = config.data
    info = dataset_info(data.dataset, data.data_dir or None)
    if data.dataset == "folder" and not data.data_dir:
        raise ValueError("dataset 'folder' needs --data_dir=DIR (one sub-folder of images per class)")
    if data.data_dir and not tf.io.gfile.isdir(data.data_dir):  # gs:// data directories on TPUs
        raise FileNotFoundError(f"data directory {data.data_dir!r} does not exist")
    if info.num_classes is not None and info.num_classes > config.model.num_classes:
        raise ValueError(
            f"dataset {data.dataset!r} has {info.num_classes} classes but the model has "
            f"num_classes={config.model.num_classes}"
        )
    return info


def check_same_model(config: ExperimentConfig, workdir):
    """A work directory resumes only the model it holds.

    Training settings (train_steps, ...) and the computation fields (`ylg_tf.config.COMPUTATION_FIELDS`) may
    change; `computation_changes` describes those.
    """
    if not tf.io.gfile.exists(os.path.join(workdir, workdirs.CONFIG_FILE)):
        return
    existing = workdirs.load_config(workdir).model
    changed = [
        f"{field.name}: {getattr(existing, field.name)!r} -> {getattr(config.model, field.name)!r}"
        for field in dataclasses.fields(existing)
        if field.name not in COMPUTATION_FIELDS and getattr(existing, field.name) != getattr(config.model, field.name)
    ]
    if changed:
        raise ValueError(
            f"work directory {workdir!r} holds another model ({'; '.join(changed)}); choose a new --workdir"
        )


def computation_changes(config: ExperimentConfig, workdir):
    """The computation fields `config` changes against the work directory's config, as "name: old -> new"."""
    if not tf.io.gfile.exists(os.path.join(workdir, workdirs.CONFIG_FILE)):
        return []
    existing = workdirs.load_config(workdir).model
    return [
        f"{name}: {getattr(existing, name)!r} -> {getattr(config.model, name)!r}"
        for name in COMPUTATION_FIELDS
        if getattr(existing, name) != getattr(config.model, name)
    ]


def _dataset_function(config: ExperimentConfig, start_step, num_replicas):
    data, training = config.data, config.training

    def dataset_fn(input_context):
        per_replica = input_context.get_per_replica_batch_size(training.batch_size)
        builtin = data.dataset == "builtin"
        dataset = make_dataset(
            data.dataset,
            split=data.split,
            image_size=config.model.image_size,
            batch_size=per_replica,
            data_dir=data.data_dir or None,
            shuffle=True,
            repeat=True,
            seed=training.seed if builtin else training.seed + 1_000_003 * start_step,
            input_context=input_context,
        )
        if builtin and start_step:
            # Each replica of this pipeline has taken one batch per discriminator update.
            replicas_here = num_replicas // input_context.num_input_pipelines
            dataset = dataset.skip(start_step * replicas_here * training.discriminator_steps)
        return dataset

    return dataset_fn


def _fixed_latents(config: ExperimentConfig, count=SAMPLE_GRID_SIZE):
    seed = tf.constant([config.training.seed, 424242], tf.int64)
    z = tf.random.stateless_normal([count, config.model.z_dim], seed=seed)
    labels = tf.range(count, dtype=tf.int32) % config.model.num_classes
    return z, labels


def restore_latest(manager, checkpoint, log):
    """Restores the newest readable checkpoint of the manager; returns its path or None when there is none."""
    candidates = list(reversed(manager.checkpoints))
    for index, path in enumerate(candidates):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except Exception as error:  # noqa: BLE001 - any failure to read means this checkpoint is unusable
            reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            log(f"checkpoint {path} is unreadable ({reason}); trying an older one")
            continue
        if index:
            log(f"resumed from older checkpoint {path}")
        return path
    if candidates:
        raise CheckpointUnreadableError(
            f"none of the {len(candidates)} checkpoints in {manager.directory} can be restored; "
            "refusing to start over from step 0 (move them away to start a new run)"
        )
    return None


class _PreemptionFlag:
    """Remembers a SIGTERM until the current loop ends."""

    def __init__(self):
        self.raised = False
        self._previous = None

    def __enter__(self):
        try:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        except ValueError:  # not the main thread: no signal handling
            self._previous = None
        return self

    def _handle(self, signum, frame):
        self.raised = True

    def __exit__(self, *exc):
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)


def run_training(config: ExperimentConfig, workdir, strategy, log=logging.info, evaluator=None, jit_compile=False):
    """Trains (or resumes) in `workdir`. `evaluator(generator, step) -> {name: value}` runs every eval_every steps."""
    training = config.training
    check_data_config(config)
    check_same_model(config, workdir)
    files.make_directory(workdir)  # an unusable path fails here, before any work
    for change in computation_changes(config, workdir):
        log(f"{change} (the same weights and outputs, computed differently)")
    trainer = Trainer(config, strategy, jit_compile=jit_compile)
    log(f"work directory {files.absolute_path(workdir)}")
    log(
        f"global batch {trainer.global_batch_size} = {strategy.num_replicas_in_sync} replica(s) x "
        f"{trainer.per_replica_batch_size}"
    )
    manager = tf.train.CheckpointManager(
        trainer.checkpoint,
        workdirs.checkpoint_directory(workdir),
        max_to_keep=workdirs.CHECKPOINTS_KEPT,
        checkpoint_name="ckpt",
    )
    restored = restore_latest(manager, trainer.checkpoint, log)
    start_step = int(trainer.step.numpy())
    log(f"resumed at step {start_step} from {restored}" if restored else "starting at step 0")

    dataset = strategy.distribute_datasets_from_function(
        _dataset_function(config, start_step, strategy.num_replicas_in_sync)
    )
    iterator = iter(dataset)
    workdirs.save_config(config, workdir)  # see the module docstring for why only now
    writer = tf.summary.create_file_writer(os.path.join(workdir, workdirs.SUMMARIES_DIRECTORY))
    samples_directory = os.path.join(workdir, workdirs.SAMPLES_DIRECTORY)
    fixed_z, fixed_labels = _fixed_latents(config)
    samples_path = os.path.join(samples_directory, "latest.png")
    checkpoint_path = restored or ""
    step = start_step
    preempted = False

    with _PreemptionFlag() as preemption:
        while step < training.train_steps:
            next_checkpoint = (step // training.checkpoint_every + 1) * training.checkpoint_every
            num_steps = min(training.steps_per_loop, training.train_steps - step, next_checkpoint - step)
            started = time.time()
            metrics = trainer.run_loop(iterator, num_steps)
            seconds = time.time() - started
            step = metrics.step
            values = dataclasses.asdict(metrics)
            if not all(math.isfinite(values[name]) for name in values if name != "step"):
                raise TrainingDivergedError(
                    f"non-finite loss at step {step} ({values}); the last good checkpoint "
                    f"{manager.latest_checkpoint or '(none)'} is intact"
                )
            steps_per_second = num_steps / seconds
            remaining = (training.train_steps - step) / steps_per_second
            log(
                f"step {step}/{training.train_steps}  d_loss {metrics.discriminator_loss:.4f}  "
                f"g_loss {metrics.generator_loss:.4f}  D(real) {metrics.real_logits:.3f}  "
                f"D(fake) {metrics.fake_logits:.3f}  {steps_per_second:.2f} steps/s  "
                f"ETA {time.strftime('%H:%M:%S', time.gmtime(remaining))}"
            )
            # Small images are enlarged (nearest neighbour) so that a grid is at least ~512 pixels wide.
            enlargement = max(1, 128 // config.model.image_size)
            grid = upscale(image_grid(trainer.sample(fixed_z, fixed_labels).numpy(), columns=4), enlargement)
            save_png(grid, os.path.join(samples_directory, f"step_{step:08d}.png"))
            save_png(grid, samples_path)
            with writer.as_default(step=step):
                for name, value in values.items():
                    if name != "step":
                        tf.summary.scalar(f"train/{name}", value)
                tf.summary.scalar("train/steps_per_second", steps_per_second)
                for name, value in trainer.attention_sigma_ratios().items():
                    tf.summary.scalar(f"sigma_ratio/{name}", value)
                tf.summary.image("samples", grid[None], max_outputs=1)
                if evaluator is not None and training.eval_every and step % training.eval_every == 0:
                    scores = evaluator(trainer.sampling_generator, step)
                    for name in EVALUATION_SCORES:
                        if name in scores:
                            tf.summary.scalar(f"eval/{name}", scores[name])
                    log(f"step {step}  " + "  ".join(f"{n} {scores[n]:.4f}" for n in EVALUATION_SCORES if n in scores))
            writer.flush()
            if step % training.checkpoint_every == 0 or step == training.train_steps:
                checkpoint_path = manager.save(checkpoint_number=step)
            if preemption.raised:
                if manager.latest_checkpoint != checkpoint_path or not checkpoint_path.endswith(f"-{step}"):
                    checkpoint_path = manager.save(checkpoint_number=step)
                log(f"SIGTERM: saved {checkpoint_path} at step {step}; exiting")
                preempted = True
                break

    export_directory = os.path.join(workdir, workdirs.EXPORT_DIRECTORY)
    if not preempted:
        if not checkpoint_path.endswith(f"-{step}"):
            checkpoint_path = manager.save(checkpoint_number=step)
        export_generator(trainer.sampling_generator, config.model, export_directory)
        log(f"exported the generator to {export_directory}")
    return TrainingResult(step, preempted, checkpoint_path, export_directory, samples_path)
