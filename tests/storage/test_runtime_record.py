"""ylg_tf.storage.runtime_record (DIR/runtime.json, one entry per start) and what training records in it:
ylg_tf.training.distribution.describe_strategy, here on 2 logical CPUs in a subprocess."""

import json
import subprocess
import sys

import tensorflow as tf

from ylg_tf.storage import runtime_record

TWO_CPU_DESCRIPTION = """
import json
from ylg_tf.training import distribution
distribution.configure_logical_cpus(2)
print(json.dumps(distribution.describe_strategy(distribution.create_strategy())))
"""


def test_each_start_appends_an_entry_with_the_choices_given(tmp_path):
    assert runtime_record.read_runtime_record(tmp_path) == []
    runtime_record.record_start(tmp_path, start_step=0, tpu=None, jit_compile=False)
    path = runtime_record.record_start(tmp_path, start_step=4, tpu="my-tpu", jit_compile=True)
    assert path == str(tmp_path / runtime_record.RUNTIME_FILE)
    starts = json.loads((tmp_path / "runtime.json").read_text())["starts"]
    assert starts == runtime_record.read_runtime_record(tmp_path)
    assert [(s["start_step"], s["tpu"], s["jit_compile"]) for s in starts] == [(0, None, False), (4, "my-tpu", True)]
    assert all(s["tensorflow"] == tf.__version__ and s["started"].endswith("+00:00") for s in starts)
    assert sorted(starts[0]) == ["host", "jit_compile", "python", "start_step", "started", "tensorflow", "tpu"]


def test_an_unreadable_record_is_started_afresh(tmp_path):
    (tmp_path / "runtime.json").write_text("{ not json")
    runtime_record.record_start(tmp_path, start_step=2)
    assert [start["start_step"] for start in runtime_record.read_runtime_record(tmp_path)] == [2]


def test_describe_strategy_names_the_strategy_its_replicas_hosts_and_devices():
    completed = subprocess.run([sys.executable, "-c", TWO_CPU_DESCRIPTION], capture_output=True, text=True,
                               timeout=300)
    assert completed.returncode == 0, completed.stderr[-3000:]
    described = json.loads(completed.stdout.strip().splitlines()[-1])
    assert described == {
        "strategy": "MirroredStrategy",
        "num_replicas": 2,
        "num_hosts": 1,
        "devices": ["/job:localhost/replica:0/task:0/device:CPU:0", "/job:localhost/replica:0/task:0/device:CPU:1"],
    }
