"""ylg_tf.storage.evaluation_history: the history of a run's evaluations and its best checkpoint, which a
killed write never leaves unreadable; `--checkpoint=best` through workdir.resolve_checkpoint."""

import json
import os

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.storage import evaluation_history, files
from ylg_tf.storage import workdir as workdirs


def test_the_history_keeps_step_order_and_a_resumed_run_replaces_the_steps_it_evaluates_again(tmp_path):
    assert evaluation_history.read_history(tmp_path) == []
    for step, fid in ((1000, 30.0), (2000, 20.0), (3000, 25.0)):
        evaluation_history.append_to_history(tmp_path, {"step": step, "fid": fid})
    # Resumed from the checkpoint at 1500 (the one at 3000 was lost): 2000 and 3000 are evaluated again.
    evaluation_history.append_to_history(tmp_path, {"step": 2000, "fid": 21.0})
    history = evaluation_history.read_history(tmp_path)
    assert history == [{"step": 1000, "fid": 30.0}, {"step": 2000, "fid": 21.0}]
    with open(evaluation_history.history_path(tmp_path)) as file:
        assert [json.loads(line)["step"] for line in file] == [1000, 2000]


def test_a_damaged_history_or_best_record_is_one_error_naming_the_file(tmp_path):
    path = evaluation_history.history_path(tmp_path)
    files.write_text_atomically(path, '{"step": 1}\n{"step": 2, "fi')
    with pytest.raises(evaluation_history.EvaluationHistoryError, match="history.jsonl is not JSON lines"):
        evaluation_history.read_history(tmp_path)
    files.write_text_atomically(str(tmp_path / evaluation_history.BEST_RECORD), '{"step": 3}')
    with pytest.raises(evaluation_history.EvaluationHistoryError, match="best.json names no checkpoint"):
        evaluation_history.read_best(tmp_path)


@pytest.mark.parametrize("fid, best, expected", [
    (10.0, None, True), (10.0, {"fid": 11.0}, True), (11.0, {"fid": 11.0}, False), (12.0, {"fid": 11.0}, False),
    (float("nan"), None, False), (float("inf"), None, False), (None, None, False),
])
def test_only_a_strictly_lower_finite_fid_is_better(fid, best, expected):
    assert evaluation_history.is_better({} if fid is None else {"fid": fid}, best) is expected


def _checkpoint(value):
    return tf.train.Checkpoint(weights=tf.Variable(np.full(3, value, np.float32)))


def _restored(prefix):
    checkpoint = _checkpoint(0.0)
    checkpoint.read(prefix).assert_consumed()
    return checkpoint.weights.numpy()


def test_a_new_best_replaces_the_old_files_and_a_write_cut_short_keeps_the_previous_best(tmp_path, monkeypatch):
    directory = tmp_path / "checkpoints" / "best"
    first = evaluation_history.write_best(directory, _checkpoint(1.0), {"step": 100, "fid": 5.0})
    assert first["checkpoint"] == "ckpt-100-1" and first["fid"] == 5.0
    second = evaluation_history.write_best(directory, _checkpoint(2.0), {"step": 200, "fid": 4.0})
    assert sorted(os.listdir(directory)) == ["best.json", "ckpt-200-2.data-00000-of-00001", "ckpt-200-2.index"]
    np.testing.assert_array_equal(_restored(evaluation_history.best_checkpoint_prefix(directory)), [2.0] * 3)

    def fail(path, text):
        raise OSError("No space left on device")

    monkeypatch.setattr(files, "write_text_atomically", fail)
    with pytest.raises(OSError, match="No space"):
        evaluation_history.write_best(directory, _checkpoint(3.0), {"step": 300, "fid": 3.0})
    assert evaluation_history.read_best(directory) == second  # still names complete files
    np.testing.assert_array_equal(_restored(evaluation_history.best_checkpoint_prefix(directory)), [2.0] * 3)
    monkeypatch.undo()
    evaluation_history.write_best(directory, _checkpoint(4.0), {"step": 400, "fid": 2.0})
    assert sorted(os.listdir(directory)) == ["best.json", "ckpt-400-3.data-00000-of-00001", "ckpt-400-3.index"]


def test_checkpoint_best_resolves_through_best_json_and_its_absence_is_one_line(tmp_path):
    with pytest.raises(workdirs.WorkdirError, match=r"^--checkpoint=best: .* has no best checkpoint .*--eval_every"):
        workdirs.resolve_checkpoint(tmp_path, "best")
    directory = workdirs.best_checkpoint_directory(tmp_path)
    evaluation_history.write_best(directory, _checkpoint(1.0), {"step": 7, "fid": 1.0})
    expected = os.path.join(directory, "ckpt-7-1")
    assert workdirs.resolve_checkpoint(tmp_path, "best") == expected
    assert workdirs.resolve_checkpoint(tmp_path, directory) == expected  # the directory, named
    for name in os.listdir(directory):
        if name.endswith(".index"):
            os.remove(os.path.join(directory, name))
    with pytest.raises(workdirs.WorkdirError, match="best checkpoint .*ckpt-7-1.* does not exist"):
        workdirs.resolve_checkpoint(tmp_path, "best")
