"""ylg_tf.training.stop_request: the first SIGTERM or SIGINT sets the flag the loop reads, a second SIGINT
exits at once, the handlers are restored, and the worker thread's result or exception reaches the caller."""

import os
import signal
import subprocess
import sys
import threading

import pytest
import tensorflow as tf

from ylg_tf.training.stop_request import StopRequest, run_in_worker


def test_a_second_sigint_exits_at_once():
    code = """
import os, signal, sys, time
import tensorflow as tf
from ylg_tf.training.stop_request import StopRequest
with StopRequest(tf.Variable(False)) as stop:
    os.kill(os.getpid(), signal.SIGINT)
    assert stop.signal_name == "SIGINT"
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(30)
"""
    completed = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                               env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    assert completed.returncode == 130, completed.stderr[-2000:]
    assert "Traceback" not in completed.stderr
    assert completed.stderr.strip().splitlines()[-1] == "SIGINT again: exiting at once without saving"


def test_the_first_signal_sets_the_flag_and_the_handlers_are_restored_on_exit():
    flag = tf.Variable(False)
    previous = signal.getsignal(signal.SIGTERM)
    with StopRequest(flag) as stop:
        assert not stop.raised and not bool(flag.numpy())
        signal.raise_signal(signal.SIGTERM)  # Python runs the handler before the next bytecode
        assert stop.signal_name == "SIGTERM" and bool(flag.numpy())
        signal.raise_signal(signal.SIGTERM)  # a second SIGTERM changes nothing
        assert stop.signal_name == "SIGTERM"
    assert signal.getsignal(signal.SIGTERM) is previous


def test_run_in_worker_returns_the_result_or_raises_the_error_of_a_worker_thread():
    threads = []

    def work(value):
        threads.append(threading.current_thread())
        if value < 0:
            raise ArithmeticError(f"negative {value}")
        return 2 * value

    assert run_in_worker(work, 21) == 42
    with pytest.raises(ArithmeticError, match="negative -1"):
        run_in_worker(work, -1)
    assert all(thread is not threading.main_thread() for thread in threads) and len(threads) == 2
