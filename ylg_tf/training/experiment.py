"""Setting up a training run in a work directory, then handing it to the controller.

`run_training(config, workdir, strategy)` checks the config against the work directory's (another model
stops; another dataset or split stops unless allowed; changed training settings are applied and logged),
takes the work directory's lock (`ylg_tf.storage.run_lock`), removes files of interrupted writes, checks that it can
write, restores the latest readable checkpoint (found on disk when the state file is missing or damaged;
falling back to older ones when the latest is corrupt, never silently starting over), builds the data
pipeline, writes the resolved config (only then, so a run whose dataset cannot be built leaves no
config.json claiming the directory), appends this start's strategy and runtime choices to runtime.json,
registers the run's actions (`ylg_tf.training.actions`: summaries and sample grid, evaluation (with its
history and the best checkpoint), checkpoint, export) and runs `ylg_tf.training.controller.Controller`, which
fires each when `ylg_tf.training.schedule` says (summaries every steps_per_loop steps, evaluations every
eval_every, checkpoints every checkpoint_every, all of them at the end, and the export at the end).

What no run does: save a checkpoint holding a NaN or infinite value (every step's losses and every saved
variable are checked; TrainingDivergedError), leave partial files of a failed write (a full disk is one
DiskWriteError), or lose more than the step in progress to SIGTERM or SIGINT
(`ylg_tf.training.stop_request`: the loop checks a stop flag before every step, then the run saves and
returns). Both errors are importable from here, beside run_training.

Data on resume: the built-in dataset is addressed by example index, so a resumed run sees exactly the examples
an uninterrupted run would; other datasets are reshuffled with a seed that includes the resume step.
"""

import dataclasses
import logging
import os
import time

import tensorflow as tf

from ylg_tf.storage import evaluation_history, files
from ylg_tf.storage import run_lock
from ylg_tf.storage import runtime_record
from ylg_tf.storage import workdir as workdirs
from ylg_tf.config import COMPUTATION_FIELDS, ExperimentConfig, model_differences
from ylg_tf.data.datasets import check_folder_images, class_names, count_examples, dataset_info, make_dataset
from ylg_tf.latents import class_grid_inputs, sample_grid_latents
from ylg_tf.training import actions
from ylg_tf.training.actions import DiskWriteError, TrainingDivergedError, eta_text  # noqa: F401 (see above)
from ylg_tf.training.controller import Controller
from ylg_tf.training.distribution import describe_strategy
from ylg_tf.training.schedule import training_schedule
from ylg_tf.training.stop_request import StopRequest
from ylg_tf.training.trainer import Trainer

SAMPLE_GRID_SIZE = 16
# TensorBoard's per-class grid: a row of this many fixed latents for each of the first classes.
CLASS_GRID_CLASSES = 10
CLASS_GRID_SAMPLES_PER_CLASS = 8


class CheckpointUnreadableError(RuntimeError):
    """Checkpoints exist but none of them can be restored."""


@dataclasses.dataclass(frozen=True)
class TrainingResult:
    step: int
    preempted: bool
    checkpoint: str
    export_directory: str
    samples_path: str
    stop_signal: str = ""  # "SIGTERM" or "SIGINT" when a signal stopped the run
    class_grid_path: str = ""  # the latest grid with a row per class
    class_accuracy: object = None  # the last summaries' ClassAccuracy, with a class_scorer


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
    os.path.join(workdirs.CHECKPOINT_DIRECTORY, evaluation_history.BEST_DIRECTORY): ("*_temp", "*.tmp*"),
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
            if separator and stem.startswith(f"{workdirs.CHECKPOINT_NAME}-") and stem not in indexed:
                tf.io.gfile.remove(os.path.join(directory, name))
                removed.append(os.path.join(directory, name))
    if removed:
        log(f"removed {len(removed)} file(s) left by an interrupted write, e.g. {removed[0]}")


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
    class_scorer=None,
):
    """Trains (or resumes) in `workdir`. `evaluator(generator, step) -> {name: value}` scores the
    sampling generator every eval_every steps and at the end (`ylg_tf.training.schedule`).

    allow_data_change: continue a work directory on another dataset or split.
    force_unlock: take the work directory's lock over even when its holder cannot be checked (another host).
    runtime_choices: JSON values the caller chose that the run cannot see (e.g. {"tpu": NAME}), recorded
      with the strategy and jit_compile in DIR/runtime.json (`ylg_tf.storage.runtime_record`) at each start.
    class_scorer: `scorer(generator) -> ClassAccuracy` (`ylg_tf.evaluation.class_accuracy`), run with every
      summaries, its last result in TrainingResult.class_accuracy (a built-in-data run scored by the built-in
      classifier); None: not scored.
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
                config, existing, workdir, strategy, lock, log, evaluator, jit_compile, runtime_choices or {},
                class_scorer)
    finally:
        if created:
            files.remove_empty_directories(workdir)  # a run that failed before writing anything


def _run_locked(config, existing, workdir, strategy, lock, log, evaluator, jit_compile, runtime_choices,
                class_scorer):
    training = config.training
    _remove_stale_files(workdir, log)
    for subdirectory in (workdirs.CHECKPOINT_DIRECTORY, workdirs.SAMPLES_DIRECTORY):
        files.check_writable(os.path.join(workdir, subdirectory))
    for change in computation_changes(config, workdir):
        log(f"{change} (the same weights, computed differently)")
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
    manager = workdirs.checkpoint_manager(workdir, trainer.checkpoint)
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
    actions.written(workdirs.CONFIG_FILE, lambda: workdirs.save_config(config, workdir))  # see the docstring
    actions.written(runtime_record.RUNTIME_FILE, lambda: runtime_record.record_start(
        workdir, start_step=start_step, jit_compile=jit_compile, **describe_strategy(strategy), **runtime_choices))
    writer = tf.summary.create_file_writer(os.path.join(workdir, workdirs.SUMMARIES_DIRECTORY))
    samples_directory = os.path.join(workdir, workdirs.SAMPLES_DIRECTORY)
    step = start_step

    # Every action of the run, registered once; when each runs is the schedule's decision alone.
    saver = actions.CheckpointSaver(trainer, manager, lock, restored or "")
    export = actions.Export(trainer, os.path.join(workdir, workdirs.EXPORT_DIRECTORY), log)
    grid_classes = list(range(min(CLASS_GRID_CLASSES, config.model.num_classes)))
    summaries = actions.Summaries(
        trainer, training.train_steps, writer, samples_directory,
        sample_grid_latents(config.training.seed, SAMPLE_GRID_SIZE, config.model.z_dim, config.model.num_classes),
        log,
        class_grid_latents=(*class_grid_inputs(grid_classes, CLASS_GRID_SAMPLES_PER_CLASS, config.model.z_dim,
                                               config.training.seed), CLASS_GRID_SAMPLES_PER_CLASS),
        class_scorer=class_scorer,
        class_names=class_names(config.data.dataset, config.data.data_dir) if class_scorer is not None else None)
    actions.write_config_text(writer, config, start_step)
    registered = {
        "summaries": summaries,
        "evaluate": actions.Evaluation(trainer, evaluator, writer, log, workdir),
        "checkpoint": saver,
        "export": export,
    }
    with StopRequest(trainer.stop_flag) as stop:
        if step < training.train_steps:
            started = time.time()
            trainer.trace_loop(iterator)
            log(f"traced the training loop in {time.time() - started:.1f} s; training")
        controller = Controller(training_schedule(training), actions.checked_loop(trainer, iterator, manager),
                                registered, stop_requested=lambda: stop.raised)
        step = controller.run(step)
        stop_signal = stop.signal_name or ""

    if stop_signal:
        log(f"{stop_signal}: saved {saver.path or '(no checkpoint yet)'} at step {step}; rerun to resume")
    elif step == start_step:
        if tf.io.gfile.exists(export.directory):
            log(f"nothing to train: step {step} is train_steps; the export {export.directory} is kept")
        else:  # a run stopped during its last step ends here
            export(step)
    return TrainingResult(step, bool(stop_signal), saver.path, export.directory, summaries.latest_path, stop_signal,
                          summaries.class_grid_path, summaries.last_class_accuracy)
