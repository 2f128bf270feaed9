"""What a training run keeps of its evaluations, in its work directory:

  DIR/evaluation/history.jsonl   every periodic evaluation, one JSON object per line, in step order
  DIR/checkpoints/best/          the checkpoint with the lowest FID so far, and best.json (its step, scores
                                 and checkpoint prefix)

The best checkpoint lives beside the CheckpointManager's checkpoints, not among them, so the keep-N policy
never deletes it; tools read it with `--checkpoint=best` (`ylg_tf.storage.workdir.resolve_checkpoint`).

Every write is atomic on a local disk (a new file renamed over the old): a run killed at any moment leaves
the previous history and a best.json that names complete checkpoint files. A new best checkpoint is written
under a new prefix before best.json names it; the files of earlier bests are removed only after that.
"""

import json
import os

import tensorflow as tf

from ylg_tf.storage import files

EVALUATION_DIRECTORY = "evaluation"
HISTORY_FILE = "history.jsonl"
BEST_DIRECTORY = "best"  # inside DIR/checkpoints (`ylg_tf.storage.workdir.best_checkpoint_directory`)
BEST_RECORD = "best.json"
BEST_KEYWORD = "best"  # what `--checkpoint=` names the best checkpoint with


class EvaluationHistoryError(ValueError):
    """The history or the best record of a work directory cannot be read."""


def history_path(workdir):
    return os.path.join(os.fspath(workdir), EVALUATION_DIRECTORY, HISTORY_FILE)


def read_history(workdir):
    """The recorded evaluations of a work directory, oldest first ([] before the first)."""
    path = history_path(workdir)
    if not tf.io.gfile.exists(path):
        return []
    with tf.io.gfile.GFile(path, "r") as file:
        lines = [line for line in file.read().splitlines() if line.strip()]
    try:
        return [json.loads(line) for line in lines]
    except json.JSONDecodeError as error:
        raise EvaluationHistoryError(f"{path} is not JSON lines ({error})") from None


def append_to_history(workdir, result):
    """Adds `result` (a dict with an int "step") to the history, replacing any entry at its step or later: a
    run resumed from an earlier checkpoint evaluates those steps again, and its history is the one kept."""
    step = result["step"]
    kept = [entry for entry in read_history(workdir) if entry["step"] < step] + [dict(result)]
    text = "".join(json.dumps(entry, sort_keys=True) + "\n" for entry in kept)
    files.write_text_atomically(history_path(workdir), text)
    return kept


def read_best(directory):
    """The best record (a dict) of a best-checkpoint directory, or None when it has none."""
    path = os.path.join(os.fspath(directory), BEST_RECORD)
    if not tf.io.gfile.exists(path):
        return None
    with tf.io.gfile.GFile(path, "r") as file:
        text = file.read()
    try:
        record = json.loads(text)
    except json.JSONDecodeError as error:
        raise EvaluationHistoryError(f"{path} is not JSON ({error})") from None
    if not isinstance(record, dict) or not isinstance(record.get("checkpoint"), str):
        raise EvaluationHistoryError(f"{path} names no checkpoint")
    return record


def best_checkpoint_prefix(directory):
    """The checkpoint prefix best.json of `directory` names, or None when there is no best.json."""
    record = read_best(directory)
    return None if record is None else os.path.join(os.fspath(directory), record["checkpoint"])


def is_better(result, best):
    """Whether `result` has a lower FID than the `best` record (None: any finite FID is better)."""
    fid = result.get("fid")
    if fid is None or fid != fid or fid == float("inf"):
        return False
    return best is None or fid < best["fid"]


def write_best(directory, checkpoint, result):
    """Writes `checkpoint` (a tf.train.Checkpoint) as the best into `directory`, with `result` (its
    evaluation: step, fid, ...) in best.json; returns the new record."""
    directory = os.fspath(directory)
    files.make_directory(directory)
    previous = read_best(directory)
    update = (previous or {}).get("update", 0) + 1
    name = f"ckpt-{result['step']}-{update}"
    checkpoint.write(os.path.join(directory, name))
    record = dict(result, checkpoint=name, update=update)
    files.write_text_atomically(os.path.join(directory, BEST_RECORD), json.dumps(record, indent=2, sort_keys=True))
    for entry in tf.io.gfile.listdir(directory):  # the files of earlier bests, and of writes cut short
        if entry != BEST_RECORD and not entry.startswith(f"{name}."):
            path = os.path.join(directory, entry.rstrip("/"))
            if tf.io.gfile.isdir(path):
                tf.io.gfile.rmtree(path)
            else:
                tf.io.gfile.remove(path)
    return record
