"""Run as a script (by tests/training/test_trainer.py): one training step on 1 and on 2 replicas.

Two logical CPU devices must exist before any TensorFlow op runs, which is why this runs in its own process.
Prints a JSON object: the largest difference per kind of variable between the two runs, and whether a batch
that does not divide the replicas is refused.
"""

import json


import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from ylg_tf.training.distribution import configure_logical_cpus, create_strategy  # noqa: E402

configure_logical_cpus(2)

from ylg_tf.config import get_preset  # noqa: E402
from ylg_tf.training.trainer import Trainer  # noqa: E402


def variable_kind(name):
    if "spectral_norm_u" in name:
        return "spectral_norm_u"
    if "moving_" in name:
        return "batch_norm_statistics"
    return "weights"


def main():
    # Adam's first step is lr * g / (|g| + epsilon): with the paper's epsilon 1e-8 a gradient that is zero up
    # to float noise (e.g. a conv bias followed by batch norm) moves by +-lr depending on that noise. A larger
    # epsilon keeps the comparison about the distributed computation, not about the sign of noise.
    config = get_preset("test").replace(training={"batch_size": 4, "seed": 3, "epsilon": 1e-2})
    single = Trainer(config, tf.distribute.OneDeviceStrategy("/cpu:0"))
    mirrored_strategy = create_strategy()
    assert mirrored_strategy.num_replicas_in_sync == 2, mirrored_strategy
    mirrored = Trainer(config, mirrored_strategy)
    # Identical starting points: copy every network variable (the optimizers' slots start at zero in both).
    for network in ("generator", "discriminator"):
        for source, target in zip(getattr(single, network).variables, getattr(mirrored, network).variables):
            target.assign(source.numpy())

    initial = {n: [v.numpy() for v in getattr(single, n).variables] for n in ("generator", "discriminator")}
    images = tf.random.stateless_uniform([4, 32, 32, 3], seed=[1, 2], minval=-1.0, maxval=1.0)
    labels = tf.constant([0, 1, 2, 3], tf.int32)
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    single_metrics = single.run_loop(iter(single.strategy.experimental_distribute_dataset(dataset)), 1)
    mirrored_metrics = mirrored.run_loop(iter(mirrored_strategy.experimental_distribute_dataset(dataset)), 1)

    differences = {}
    for network in ("generator", "discriminator"):
        pairs = zip(getattr(single, network).variables, getattr(mirrored, network).variables, initial[network])
        for a, b, start in pairs:
            kind = variable_kind(a.name)
            values_b = [v.numpy() for v in b.values] if hasattr(b, "values") else [b.numpy()]
            replica_spread = max(float(np.max(np.abs(v - values_b[0]))) for v in values_b)
            error = float(np.max(np.abs(a.numpy() - values_b[0])))
            if error > differences.get(kind, 0.0):
                differences[kind] = error
                differences[f"{kind}_worst"] = f"{network}/{a.name}"
            differences["replica_spread"] = max(differences.get("replica_spread", 0.0), replica_spread)
            change = float(np.max(np.abs(a.numpy() - start)))
            differences[f"{kind}_change"] = max(differences.get(f"{kind}_change", 0.0), change)
    differences["metrics"] = max(
        abs(single_metrics.discriminator_loss - mirrored_metrics.discriminator_loss),
        abs(single_metrics.generator_loss - mirrored_metrics.generator_loss),
    )
    differences["steps"] = [single_metrics.step, mirrored_metrics.step]
    try:
        Trainer(config.replace(training={"batch_size": 3}), mirrored_strategy)
        differences["odd_batch_error"] = ""
    except ValueError as error:
        differences["odd_batch_error"] = str(error)
    print(json.dumps(differences))


if __name__ == "__main__":
    main()
