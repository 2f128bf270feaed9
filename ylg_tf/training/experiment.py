"""A whole training run in a work directory: data, resume, checkpoints, summaries, samples, export.

`run_training(config, workdir, strategy)` checks the config against the work directory's (another model
stops; another dataset or split stops unless allowed; changed training settings are applied and logged),
takes the work directory's lock (`ylg_tf.storage.run_lock`), removes files of interrupted writes, checks that it can
write, restores the latest readable checkpoint (found on disk when the state file is missing or damaged;
falling back to older ones when the latest is corrupt, never silently starting over), builds the data
pipeline, writes the resolved config (only then, so a run whose dataset cannot be built leaves no
config.json claiming the directory) and appends this start's strategy and runtime choices to runtime.json, trains in loops of `steps_per_loop` steps, and after each loop logs a
line, writes TensorBoard summaries and a sample grid of fixed latents, checkpoints every `checkpoint_every`
steps, and exports the generator at the end.

What no run does: save a checkpoint holding a NaN or infinite value (every step's losses and every saved
variable are checked), leave partial files of a failed write (a full disk is one DiskWriteError), or lose
more than the step in progress to SIGTERM or SIGINT (`ylg_tf.training.stop_request`: the loop checks a stop flag
before every step, then the run saves and returns).

Data on resume: the built-in dataset is addressed by example index, so a resumed run sees exactly the examples
an uninterrupted run would; other datasets are reshuffled with a seed that includes the resume step.
"""

import dataclasses
import logging
import math
import os
import re
import time

import tensorflow as tf

from ylg_tf.storage import files
from ylg_tf.storage import run_lock
from ylg_tf.storage import runtime_record
from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import COMPUTATION_FIELDS, ExperimentConfig, model_differences
from ylg_tf.data.datasets import check_folder_images, class_names, count_examples, dataset_info, make_dataset
from ylg_tf.storage.export import export_generator
from ylg_tf.training.distribution import describe_strategy
from ylg_tf.training.stop_request import StopRequest, run_in_worker
from ylg_tf.training.trainer import METRIC_NAMES, Trainer
from ylg_tf.pictures import image_grid, save_png, upscale

SAMPLE_GRID_SIZE = 16
EVALUATION_SCORES = ("fid", "inception_score")


class TrainingDivergedError(RuntimeError):
    """A loss, or a weight about to be saved, became NaN or infinite."""


class CheckpointUnreadableError(RuntimeError):
    """Checkpoints exist but none of them can be restored."""


class DiskWriteError(OSError):
    """A checkpoint, sample or export could not be written (a full disk, an I/O error); its partial files
    were removed."""


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    step: int
    preempted: bool
    checkpoint: str
    export_directory: str
    samples_path: str
    stop_signal: str = ""  # "SIGTERM" or "SIGINT" when a signal stopped the run


def physical_memory_bytes():
    """This host's physical memory, or None where the OS does not say."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (AttributeError, ValueError, OSError):
        return None


def check_batch_fits_in_memory(config: ExperimentConfig, memory_bytes=None):
    """Fails, naming batch_size, when one global batch of float32 images alone exceeds the host's memory.

    The input pipeline holds at least that much on the host, so such a run could only die later with an
    allocation failure deep inside TensorFlow.
    """
    memory_bytes = physical_memory_bytes() if memory_bytes is None else memory_bytes
    size = config.model.image_size
    batch_bytes = config.training.batch_size * size * size * 3 * 4
    if memory_bytes and batch_bytes > memory_bytes:
        raise ValueError(
            f"batch_size={config.training.batch_size}: one batch of {size}x{size} float32 images is "
            f"{batch_bytes / 2**30:.1f} GiB, more than this machine's {memory_bytes / 2**30:.1f} GiB of memory"
        )


def check_data_config(config: ExperimentConfig):
    """Fails early, with the bad value named, when the data cannot feed the model."""
    data = config.data
    info = dataset_info(data.dataset, data.data_dir or None)
    if data.dataset == "folder" and not data.data_dir:
        raise ValueError("dataset 'folder' needs --data_dir=DIR (one sub-folder of images per class)")
    if data.data_dir and not tf.io.gfile.isdir(data.data_dir):  # gs:// data directories on TPUs
        raise FileNotFoundError(f"data directory {data.data_dir!r} does not exist")
    check_batch_fits_in_memory(config)
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
    changed = [f"{name}: {old!r} -> {new!r}" for name, old, new in model_differences(existing, config.model)]
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


# Data fields a work directory keeps: another dataset or split is another experiment (unless allowed).
DATA_FIELDS_KEPT = ("dataset", "split")
# Files an interrupted run leaves behind, by the directory they are found in (see _remove_stale_files).
_STALE_FILES = {
    "": ("*.tmp-*", ".export.writing-*", ".export.previous-*"),
    workdirs.CHECKPOINT_DIRECTORY: ("*_temp", "*.tmp*"),
    workdirs.SAMPLES_DIRECTORY: ("*.tmp-*",),
}


def check_same_data(config: ExperimentConfig, existing: ExperimentConfig, workdir, allow_data_change=False):
    """A work directory continues on its own dataset and split unless `allow_data_change`."""
    changed = [
        f"{name}: {getattr(existing.data, name)!r} -> {getattr(config.data, name)!r}"
        for name in DATA_FIELDS_KEPT
        if getattr(existing.data, name) != getattr(config.data, name)
    ]
    if changed and not allow_data_change:
        raise ValueError(
            f"work directory {workdir!r} was trained on other data ({'; '.join(changed)}); choose a new "
            "--workdir, or pass --allow_data_change to continue its model on this data"
        )


def setting_changes(config: ExperimentConfig, existing: ExperimentConfig):
    """Training and data settings that differ from the work directory's config, as "name: old -> new"."""
    changes = []
    for section in ("training", "data"):
        old, new = getattr(existing, section), getattr(config, section)
        for field in dataclasses.fields(old):
            if getattr(old, field.name) != getattr(new, field.name):
                changes.append(f"{field.name}: {getattr(old, field.name)!r} -> {getattr(new, field.name)!r}")
    return changes


def _remove_stale_files(workdir, log):
    """Removes the temporary files and directories of interrupted writes (only while holding the lock), and
    checkpoint data files without an index (a save killed before it finished)."""
    removed = []
    for subdirectory, patterns in _STALE_FILES.items():
        removed += files.remove_matching(os.path.join(workdir, subdirectory), patterns)
    directory = workdirs.checkpoint_directory(workdir)
    if tf.io.gfile.isdir(directory):
        indexed = {os.path.basename(path) for path in workdirs.checkpoints_on_disk(workdir)}
        for name in sorted(tf.io.gfile.listdir(directory)):
            stem, separator, _ = name.partition(".data-")
            if separator and stem.startswith("ckpt-") and stem not in indexed:
                tf.io.gfile.remove(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
    if removed:
        log(f"removed {len(removed)} file(s) left by an interrupted write, e.g. {removed[0]}")


def _written(what, write, partial_patterns=(), directory=None):
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


def _describe_folder_dataset(config: ExperimentConfig, log):
    data = config.data
    names = class_names(data.dataset, data.data_dir)
    count = count_examples(data.dataset, data.split, data.data_dir)
    mapping = ", ".join(f"{name}={label}" for label, name in enumerate(names[:10]))
    more = f", ... ({len(names) - 10} more)" if len(names) > 10 else ""
    log(f"dataset folder {data.data_dir}: {count} images in {len(names)} classes ({mapping}{more})")
    if config.model.num_classes > len(names):
        log(
            f"warning: the model has num_classes={config.model.num_classes} but {data.data_dir} has "
            f"{len(names)} class folders: classes {len(names)}-{config.model.num_classes - 1} get no images"
        )


def run_training(
    config: ExperimentConfig,
    workdir,
    strategy,
    log=logging.info,
    evaluator=None,
    jit_compile=False,
    allow_data_change=False,
    force_unlock=False,
    runtime_choices=None,
):
    """Trains (or resumes) in `workdir`. `evaluator(generator, step) -> {name: value}` runs every eval_every steps.

    allow_data_change: continue a work directory on another dataset or split.
    force_unlock: take the work directory's lock over even when its holder cannot be checked (another host).
    runtime_choices: JSON values the caller chose that the run cannot see (e.g. {"tpu": NAME}), recorded
      with the strategy and jit_compile in DIR/runtime.json (`ylg_tf.storage.runtime_record`) at each start.
    """
    workdir = os.fspath(workdir)
    check_data_config(config)
    existing = None
    if tf.io.gfile.exists(os.path.join(workdir, workdirs.CONFIG_FILE)):
        existing = workdirs.load_config(workdir)
        check_same_model(config, workdir)
        check_same_data(config, existing, workdir, allow_data_change)
    created = not tf.io.gfile.isdir(workdir)
    files.make_directory(workdir)  # an unusable path fails here, before any work
    try:
        with run_lock.WorkdirLock(workdir, force=force_unlock, log=log) as lock:
            return _run_locked(
                config, existing, workdir, strategy, lock, log, evaluator, jit_compile, runtime_choices or {}
            )
    finally:
        if created:
            files.remove_empty_directories(workdir)  # a run that failed before writing anything


def _run_locked(config, existing, workdir, strategy, lock, log, evaluator, jit_compile, runtime_choices):
    training = config.training
    _remove_stale_files(workdir, log)
    for subdirectory in (workdirs.CHECKPOINT_DIRECTORY, workdirs.SAMPLES_DIRECTORY):
        files.check_writable(os.path.join(workdir, subdirectory))
    for change in computation_changes(config, workdir):
        log(f"{change} (the same weights and outputs, computed differently)")
    if config.data.dataset == "folder":
        check_folder_images(config.data.data_dir)
        _describe_folder_dataset(config, log)
    trainer = Trainer(config, strategy, jit_compile=jit_compile)
    log(f"work directory {files.absolute_path(workdir)}")
    log(
        f"global batch {trainer.global_batch_size} = {strategy.num_replicas_in_sync} replica(s) x "
        f"{trainer.per_replica_batch_size}"
    )
    rewritten = workdirs.reconcile_checkpoint_state(workdir)
    if rewritten:
        log(rewritten)
    manager = tf.train.CheckpointManager(
        trainer.checkpoint,
        workdirs.checkpoint_directory(workdir),
        max_to_keep=workdirs.CHECKPOINTS_KEPT,
        checkpoint_name="ckpt",
    )
    restored = restore_latest(manager, trainer.checkpoint, log)
    start_step = int(trainer.step.numpy())
    if start_step > training.train_steps:
        raise ValueError(
            f"train_steps={training.train_steps} is below step {start_step}, which work directory {workdir!r} "
            f"has reached; pass train_steps >= {start_step}"
        )
    trainer.apply_learning_rates()  # the config's rates, not the ones the optimizers were saved with
    log(f"resumed at step {start_step} from {restored}" if restored else "starting at step 0")
    if existing is not None:
        for change in setting_changes(config, existing):
            log(f"{change} (applied from step {start_step})")

    dataset = strategy.distribute_datasets_from_function(
        _dataset_function(config, start_step, strategy.num_replicas_in_sync)
    )
    iterator = iter(dataset)
    _written(workdirs.CONFIG_FILE, lambda: workdirs.save_config(config, workdir))  # see the module docstring
    _written(runtime_record.RUNTIME_FILE, lambda: runtime_record.record_start(
        workdir, start_step=start_step, jit_compile=jit_compile, **describe_strategy(strategy), **runtime_choices))
    writer = tf.summary.create_file_writer(os.path.join(workdir, workdirs.SUMMARIES_DIRECTORY))
    samples_directory = os.path.join(workdir, workdirs.SAMPLES_DIRECTORY)
    checkpoints = workdirs.checkpoint_directory(workdir)
    fixed_z, fixed_labels = _fixed_latents(config)
    samples_path = os.path.join(samples_directory, "latest.png")
    checkpoint_path = restored or ""
    step = start_step

    def save(step):
        non_finite = trainer.non_finite_variables()
        if non_finite:
            raise TrainingDivergedError(
                f"{len(non_finite)} variables hold non-finite values at step {step} (e.g. {non_finite[0]}); "
                f"not saved: the last good checkpoint {manager.latest_checkpoint or '(none)'} is intact"
            )
        lock.check_held()
        return _written(
            f"checkpoint ckpt-{step} in {checkpoints}",
            lambda: manager.save(checkpoint_number=step),
            (f"ckpt-{step}_temp", f"ckpt-{step}.*", "*.tmp*"),
            checkpoints,
        )

    with StopRequest(trainer.stop_flag) as stop:
        if step < training.train_steps:
            started = time.time()
            trainer.trace_loop(iterator)
            log(f"traced the training loop in {time.time() - started:.1f} s; training")
        while step < training.train_steps and not stop.raised:
            next_checkpoint = (step // training.checkpoint_every + 1) * training.checkpoint_every
            num_steps = min(training.steps_per_loop, training.train_steps - step, next_checkpoint - step)
            started = time.time()
            metrics = run_in_worker(trainer.run_loop, iterator, num_steps)
            seconds = time.time() - started
            step = metrics.step
            values = {name: getattr(metrics, name) for name in METRIC_NAMES}
            if not metrics.finite or not all(math.isfinite(value) for value in values.values()):
                raise TrainingDivergedError(
                    f"non-finite loss at step {step} ({values}); the last good checkpoint "
                    f"{manager.latest_checkpoint or '(none)'} is intact"
                )
            if not metrics.num_steps:
                break  # stopped before the loop's first step
            steps_per_second = metrics.num_steps / max(seconds, 1e-9)
            log(
                f"step {step}/{training.train_steps}  d_loss {metrics.discriminator_loss:.4f}  "
                f"g_loss {metrics.generator_loss:.4f}  D(real) {metrics.real_logits:.3f}  "
                f"D(fake) {metrics.fake_logits:.3f}  {steps_per_second:.2f} steps/s  "
                f"ETA {eta_text((training.train_steps - step) / steps_per_second)}"
            )
            # Small images are enlarged (nearest neighbour) so that a grid is at least ~512 pixels wide.
            enlargement = max(1, 128 // config.model.image_size)
            grid = upscale(image_grid(trainer.sample(fixed_z, fixed_labels).numpy(), columns=4), enlargement)
            _written(f"samples in {samples_directory}", lambda: save_png(grid, os.path.join(
                samples_directory, f"step_{step:08d}.png")))
            _written(f"samples in {samples_directory}", lambda: save_png(grid, samples_path))
            with writer.as_default(step=step):
                for name, value in values.items():
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
                checkpoint_path = save(step)
        stop_signal = stop.signal_name or ""

    if step != start_step and not checkpoint_path.endswith(f"-{step}"):
        checkpoint_path = save(step)
    export_directory = os.path.join(workdir, workdirs.EXPORT_DIRECTORY)
    if stop_signal:
        log(f"{stop_signal}: saved {checkpoint_path or '(no checkpoint yet)'} at step {step}; rerun to resume")
    elif step != start_step or not tf.io.gfile.exists(export_directory):
        _written(
            f"the export {export_directory}",
            lambda: export_generator(trainer.sampling_generator, config.model, export_directory, overwrite=True),
        )
        log(f"exported the generator to {export_directory}")
    else:
        log(f"nothing to train: step {step} is train_steps; the export {export_directory} is kept")
    return TrainingResult(step, bool(stop_signal), checkpoint_path, export_directory, samples_path, stop_signal)
