"""ylg_tf.storage.run_lock on its own: two lockers of one work directory, and a lock taken over by
another run (the lock's part in a training run: tests/training/test_run_guarantees.py)."""

import json
import os

import pytest

from ylg_tf.storage import run_lock


def test_only_one_of_two_racing_lockers_gets_the_lock(tmp_path):
    first, second = run_lock.WorkdirLock(tmp_path), run_lock.WorkdirLock(tmp_path)
    first.acquire()
    with pytest.raises(run_lock.WorkdirLockedError, match=f"pid {os.getpid()}"):
        second.acquire()
    # A lock taken over by someone else is noticed before the next save.
    (tmp_path / run_lock.LOCK_FILE).write_text(json.dumps({"host": "h", "pid": 1, "started": "s", "token": "x"}))
    with pytest.raises(run_lock.WorkdirLockedError, match="stopping without saving"):
        first.check_held()
    first.release()
    assert (tmp_path / run_lock.LOCK_FILE).exists()  # not ours any more: left alone
