"""DIR/runtime.json: what each start of a training run ran on (strategy, replicas, devices, XLA, TPU, versions).

DIR/config.json says what is trained; this file says how, with one entry per (re)start of the run, oldest
first, so a run resumed on another machine shows both. Training writes it at every start from the values
it is given (the strategy's description, --tpu, --jit_compile, the command line); nothing reads it back to
decide anything, and an unreadable file is started afresh rather than stopping a run.
"""

import datetime
import json
import os
import platform
import socket

import tensorflow as tf

from ylg_tf.storage.files import write_text_atomically

RUNTIME_FILE = "runtime.json"


def read_runtime_record(workdir):
    """The entries of DIR/runtime.json, oldest first ([] when there is none or it cannot be read)."""
    path = os.path.join(os.fspath(workdir), RUNTIME_FILE)
    if not tf.io.gfile.exists(path):
        return []
    try:
        with tf.io.gfile.GFile(path, "r") as file:
            starts = json.loads(file.read())["starts"]
    except (ValueError, KeyError, TypeError, UnicodeDecodeError):
        return []
    return starts if isinstance(starts, list) else []


def record_start(workdir, **choices):
    """Appends one entry (the time, host, Python and TensorFlow versions and `choices`, JSON values) to
    DIR/runtime.json, atomically; returns its path."""
    entry = {
        "started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "host": socket.gethostname(),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        **choices,
    }
    starts = read_runtime_record(workdir) + [entry]
    text = json.dumps({"starts": starts}, indent=2, sort_keys=True) + "\n"
    return write_text_atomically(os.path.join(os.fspath(workdir), RUNTIME_FILE), text)
