"""Stopping a run cleanly on SIGTERM (a preemption notice) or SIGINT (Ctrl-C), within one training step.

`StopRequest(flag)` installs handlers for both signals while it is entered. The first signal sets
`signal_name` and the boolean tf.Variable `flag` (the trainer's `stop_flag`), which the training loop reads
before every step (`ylg_tf.training.trainer`), so the loop ends after the step in progress and the run saves a
checkpoint. A second SIGINT exits at once
(exit code 130) without saving.

Python runs signal handlers only in the main thread and only between bytecodes, never while a
tf.function executes; `run_in_worker(function)` therefore runs the loop in a worker thread while the main
thread waits, so the handler (and the flag) act while the loop is running.
"""

import os
import signal
import sys
import threading

SIGNALS = {signal.SIGTERM: "SIGTERM", signal.SIGINT: "SIGINT"}
WAKE_SECONDS = 0.05  # how often the waiting main thread looks for a signal
EXIT_AT_ONCE = 130  # 128 + SIGINT, as a shell reports a Ctrl-C


class StopRequest:
    """See the module docstring; `flag` is the boolean tf.Variable the training loop reads."""

    def __init__(self, flag):
        self.signal_name = None
        self.flag = flag
        self._previous = {}

    @property
    def raised(self):
        return self.signal_name is not None

    def _handle(self, signum, frame):
        name = SIGNALS[signum]
        if self.raised and signum == signal.SIGINT:
            print(f"{name} again: exiting at once without saving", file=sys.stderr, flush=True)
            os._exit(EXIT_AT_ONCE)
        if not self.raised:
            self.signal_name = name
            self.flag.assign(True)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous = {}


def run_in_worker(function, *args):
    """`function(*args)` run in a worker thread, the main thread waiting (and so free to run signal
    handlers); returns its result or raises its exception."""
    outcome = {}

    def target():
        try:
            outcome["result"] = function(*args)
        except BaseException as error:  # noqa: BLE001 - re-raised in the caller's thread
            outcome["error"] = error

    worker = threading.Thread(target=target, name="training-loop", daemon=True)
    worker.start()
    # A signal may reach any thread; the main thread runs Python's handler only once it wakes, so it wakes
    # often rather than blocking in one join.
    while worker.is_alive():
        worker.join(WAKE_SECONDS)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]
