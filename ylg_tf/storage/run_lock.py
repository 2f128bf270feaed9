"""The work-directory lock: one training run per work directory at a time.

`WorkdirLock(workdir)` is held for the whole run as the file DIR/lock, which names its holder (host, pid,
start time and a random token) as JSON. It is created atomically (`ylg_tf.storage.files.create_exclusively`), so of
two runs started together exactly one gets it on a local disk; on an object store (gs://), where creation is a
check then a rename, the holder also reads the file back after taking it and before every checkpoint
(`check_held`), so a run whose lock was overwritten stops before it saves.

A lock whose process is gone (same host, no such pid) is stale: it is reported and taken over. A lock of
another host cannot be checked from here; `force=True` (train.py's --force_unlock) takes it over.
"""

import datetime
import json
import os
import socket
import uuid

import tensorflow as tf

from ylg_tf.storage import files

LOCK_FILE = "lock"


class WorkdirLockedError(OSError):
    """Another run holds the work directory, or took its lock over during this run."""


def _process_exists(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True


def describe_holder(holder):
    return (
        f"pid {holder.get('pid')} on host {holder.get('host')!r} (started {holder.get('started')})"
        if isinstance(holder, dict)
        else "an unreadable lock file"
    )


class WorkdirLock:
    """Context manager holding DIR/lock; see the module docstring.

    Args:
      workdir: the work directory (created if missing).
      force: take the lock over whoever holds it.
      log: called with one line when a stale or forced lock is taken over.
    """

    def __init__(self, workdir, force=False, log=print):
        self.path = os.path.join(os.fspath(workdir), LOCK_FILE)
        self.force = force
        self.log = log
        self.holder = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "token": uuid.uuid4().hex,
        }
        self.held = False

    def _read(self):
        """The holder recorded in the lock file, {} for a damaged file, None when there is no lock file."""
        try:
            with tf.io.gfile.GFile(self.path, "rb") as file:
                text = file.read()
        except tf.errors.NotFoundError:
            return None
        try:
            holder = json.loads(text.decode("utf8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return {}
        return holder if isinstance(holder, dict) else {}

    def acquire(self):
        files.make_directory(os.path.dirname(self.path))
        data = json.dumps(self.holder).encode("utf8")
        for _ in range(2):  # a second try after removing a stale lock
            if files.create_exclusively(self.path, data):
                if self._read() == self.holder:
                    self.held = True
                    return self
                raise WorkdirLockedError(
                    f"work directory {os.path.dirname(self.path)!r} was locked at the same moment by "
                    f"{describe_holder(self._read())}; only one run may use it"
                )
            holder = self._read()
            if holder is None:
                continue  # released in between
            self._take_over_or_refuse(holder)
        raise WorkdirLockedError(f"could not take the lock {self.path!r}: another run keeps taking it")

    def _take_over_or_refuse(self, holder):
        directory = os.path.dirname(self.path)
        same_host = holder.get("host") == self.holder["host"]
        pid = holder.get("pid")
        gone = same_host and isinstance(pid, int) and not _process_exists(pid)
        if self.force:
            self.log(f"taking over the lock of {directory} held by {describe_holder(holder)} (--force_unlock)")
        elif gone or holder == {}:
            self.log(f"taking over a stale lock of {directory}: {describe_holder(holder)} no longer runs")
        elif same_host:
            raise WorkdirLockedError(
                f"work directory {directory!r} is in use by the run of {describe_holder(holder)}; "
                "wait for it to end or choose another --workdir"
            )
        else:
            raise WorkdirLockedError(
                f"work directory {directory!r} is locked by {describe_holder(holder)}, which cannot be checked "
                "from this host; if that run is gone, pass --force_unlock"
            )
        tf.io.gfile.remove(self.path)

    def check_held(self):
        """Raises WorkdirLockedError when the lock file no longer names this run."""
        holder = self._read()
        if holder != self.holder:
            raise WorkdirLockedError(
                f"the lock {self.path!r} now names {describe_holder(holder) if holder else 'no run'}: "
                "another run took this work directory over; stopping without saving"
            )

    def release(self):
        if self.held and self._read() == self.holder:
            tf.io.gfile.remove(self.path)
        self.held = False

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()
