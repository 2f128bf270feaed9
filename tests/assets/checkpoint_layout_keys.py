"""Writes tests/assets/checkpoint_layout_keys.json: the keys of the checkpoints a version of ylg_tf writes, and
the config.json of its training run.

The stored file was made at commit 887bc81 (before the checkpoint layout was defined in one module), so
tests/storage/test_checkpoint_layout.py can check that today's checkpoints have exactly the keys, shapes and dtypes
that version wrote, and that a work directory of that version still loads. To remake it from another
version, run this script with that version first on the path:

  PYTHONPATH=. python tests/assets/checkpoint_layout_keys.py tests/assets/checkpoint_layout_keys.json

It saves checkpoints the way that version's training and import did: Trainer(config, strategy).checkpoint
through a tf.train.CheckpointManager as training.experiment built it, and workdir.write_checkpoint.
"""

import json
import os
import sys
import tempfile

import tensorflow as tf

from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig, TrainingConfig
from ylg_tf.models.networks import build_networks
from ylg_tf.storage import workdir
from ylg_tf.training.trainer import Trainer

# The config every entry is written for; tests/storage/test_checkpoint_layout.py builds the same one.
MODEL = dict(image_size=32, num_classes=10, z_dim=8, attention="sagan", generator_channels=8, discriminator_channels=8)
BATCH_SIZE = 2
GENERATOR_EMA_DECAY = 0.5
WRITTEN_STEP = 3


def checkpoint_keys(prefix):
    """Every key of a checkpoint as "key [shape] dtype", sorted."""
    reader = tf.train.load_checkpoint(prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    return sorted(f"{key} {list(shapes[key])} {dtypes[key].name}" for key in shapes)


def main(output):
    model = ModelConfig(**MODEL)
    entries = {}
    with tempfile.TemporaryDirectory() as directory:
        for name, decay in (("trainer", 0.0), ("trainer_with_generator_ema", GENERATOR_EMA_DECAY)):
            config = ExperimentConfig(
                model=model, training=TrainingConfig(batch_size=BATCH_SIZE, generator_ema_decay=decay)
            )
            trainer = Trainer(config, tf.distribute.get_strategy())
            manager = tf.train.CheckpointManager(
                trainer.checkpoint, os.path.join(directory, name), max_to_keep=5, checkpoint_name="ckpt"
            )
            entries[name] = checkpoint_keys(manager.save(checkpoint_number=WRITTEN_STEP))
        generator, discriminator = build_networks(model)
        run = os.path.join(directory, "work_directory")
        path = workdir.write_checkpoint(run, generator, discriminator, WRITTEN_STEP)
        entries["written_work_directory"] = checkpoint_keys(path)
        entries["written_work_directory_file_name"] = os.path.relpath(path, run)
        # The config.json of a training run with the moving average, on the built-in data, that reached its end.
        entries["trainer_with_generator_ema_config_json"] = ExperimentConfig(
            model=model,
            training=TrainingConfig(
                batch_size=BATCH_SIZE, generator_ema_decay=GENERATOR_EMA_DECAY, train_steps=WRITTEN_STEP,
                steps_per_loop=1, checkpoint_every=1,
            ),
            data=DataConfig(dataset="builtin", split="train", eval_split="train"),
        ).to_json()
    with open(output, "w") as file:
        json.dump(entries, file, indent=1)
        file.write("\n")


if __name__ == "__main__":
    main(sys.argv[1])
