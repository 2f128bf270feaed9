"""The strategy factory: the only module that knows TPUs exist.

`--tpu=NAME|local|grpc://host:port` gives a TPUStrategy; otherwise MultiWorkerMirroredStrategy when TF_CONFIG
describes several workers, MirroredStrategy over the visible GPUs (or over several logical CPUs, as the tests
configure), or the default strategy on one CPU.
"""

import json
import logging
import os
import socket
import urllib.parse

import tensorflow as tf

TPU_CONNECT_TIMEOUT_SECONDS = 5.0


class StrategyError(ValueError):
    """The requested accelerator cannot be used."""


def _check_grpc_reachable(address):
    parsed = urllib.parse.urlparse(address)
    if not parsed.hostname or not parsed.port:
        raise StrategyError(f"--tpu={address!r} is not of the form grpc://host:port")
    try:
        with socket.create_connection((parsed.hostname, parsed.port), timeout=TPU_CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        raise StrategyError(f"TPU {address!r} is unreachable: {error}") from None


def _tpu_strategy(tpu):
    if tpu.startswith("grpc://"):
        _check_grpc_reachable(tpu)
    try:
        resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu="" if tpu == "local" else tpu)
        if tpu != "local":
            tf.config.experimental_connect_to_cluster(resolver)
        tf.tpu.experimental.initialize_tpu_system(resolver)
    # OSError: a TPU name the GCE metadata lookup cannot resolve (urllib's URLError).
    except (ValueError, RuntimeError, ImportError, OSError, tf.errors.OpError) as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise StrategyError(f"TPU {tpu!r} cannot be used: {first_line}") from None
    return tf.distribute.TPUStrategy(resolver)


def _worker_count():
    try:
        cluster = json.loads(os.environ.get("TF_CONFIG", "{}")).get("cluster", {})
    except json.JSONDecodeError as error:
        raise StrategyError(f"TF_CONFIG is not valid JSON: {error}") from None
    return len(cluster.get("worker", [])) + len(cluster.get("chief", []))


def create_strategy(tpu=None):
    """The tf.distribute strategy for this machine (see the module docstring)."""
    if tpu:
        strategy = _tpu_strategy(tpu)
    elif _worker_count() > 1:
        strategy = tf.distribute.MultiWorkerMirroredStrategy()
    elif tf.config.list_logical_devices("GPU"):
        strategy = tf.distribute.MirroredStrategy()
    elif len(tf.config.list_logical_devices("CPU")) > 1:
        strategy = tf.distribute.MirroredStrategy([d.name for d in tf.config.list_logical_devices("CPU")])
    else:
        strategy = tf.distribute.get_strategy()
    logging.info("strategy %s with %d replica(s)", type(strategy).__name__, strategy.num_replicas_in_sync)
    return strategy


def describe_strategy(strategy):
    """{"strategy": class name, "num_replicas", "num_hosts", "devices"} of a tf.distribute strategy (JSON
    values; the default strategy has its one device, which it does not list)."""
    try:
        devices = list(strategy.extended.worker_devices)
    except RuntimeError:  # the default strategy
        devices = [tf.config.list_logical_devices()[0].name]
    hosts = {tf.DeviceSpec.from_string(device).replace(device_type=None, device_index=None).to_string()
             for device in devices}
    return {
        "strategy": type(strategy).__name__,
        "num_replicas": int(strategy.num_replicas_in_sync),
        "num_hosts": len(hosts),
        "devices": devices,
    }


def configure_logical_cpus(count):
    """Splits the CPU into `count` logical devices; must run before any TensorFlow op."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)
