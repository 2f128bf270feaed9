"""The named presets: SAGAN's own experiments (Table 1 placements, Figure 3 stabilisation) and YLG at 64x64
build and train two steps at reduced widths; each preset holds the settings its docstring names."""

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf.config import ORIGINAL_BATCH_NORM_DECAY, PRESETS, get_preset
from ylg_tf.models.networks import check_attention_channels, placements
from ylg_tf.training.trainer import Trainer

SAGAN_TABLE_1 = [f"{kind}_feat{side}" for kind in ("sagan", "residual") for side in (8, 16, 32, 64)]
SAGAN_FIGURE_3 = ["sngan_baseline", "sagan_sn_gd", "sagan_sn_gd_ttur"]
CIFAR_ROWS = [
    "sagan_cifar_feat8", "sagan_cifar_feat16", "residual_cifar_feat8", "residual_cifar_feat16", "sngan_baseline_cifar"
]
NEW_PRESETS = SAGAN_TABLE_1 + SAGAN_FIGURE_3 + ["ylg_feat64"] + CIFAR_ROWS


def reduced(config, batch_size=2):
    """The preset with the narrowest equal widths gf = df (from 4) whose attention layers fit their heads."""
    for width in (4, 8, 16, 32, 64):
        candidate = config.replace(
            model={"generator_channels": width, "discriminator_channels": width, "num_classes": 3},
            training={"batch_size": batch_size, "steps_per_loop": 2},
        )
        try:
            check_attention_channels(candidate.model)
        except ValueError:
            continue
        return candidate
    raise AssertionError("no width up to 64 fits")


def test_every_preset_name_is_listed_once():
    assert set(NEW_PRESETS) <= set(PRESETS) and len(set(NEW_PRESETS)) == len(NEW_PRESETS)


@pytest.mark.parametrize("name", NEW_PRESETS)
def test_new_presets_build_and_train_two_steps_at_reduced_widths(name):
    config = reduced(get_preset(name))
    trainer = Trainer(config, tf.distribute.get_strategy())
    size = config.model.image_size
    images = tf.random.stateless_uniform([2, size, size, 3], seed=[1, 2], minval=-1.0, maxval=1.0)
    dataset = tf.data.Dataset.from_tensors((images, tf.constant([0, 1], tf.int32))).repeat()
    # The loop's own Python body, eagerly: the same step code without tracing a 128x128 graph per preset
    # (10x faster here); the traced loop is what tests/training/test_trainer.py runs.
    means, steps_done, finite = trainer.train_loop.python_function(iter(dataset), tf.constant(2, tf.int64))
    assert int(trainer.step.numpy()) == int(steps_done) == 2
    assert bool(finite) and np.isfinite(means.numpy()).all()
    assert int(trainer.generator_optimizer.iterations.numpy()) == 2


@pytest.mark.parametrize("side", [8, 16, 32, 64])
def test_sagan_table_1_rows_put_one_block_at_that_side_of_g_and_d(side):
    for kind, block in (("sagan", "attention"), ("residual", "residual")):
        model = get_preset(f"{kind}_feat{side}").model
        assert model.image_size == 128 and model.attention_block == block
        assert model.attention == ("sagan" if kind == "sagan" else "none")
        for network in ("generator", "discriminator"):
            assert [placement.resolution for placement in placements(model, network)] == [side]


def test_sagan_paper_rows_use_its_stated_recipe():
    for name in SAGAN_TABLE_1 + SAGAN_FIGURE_3:
        config = get_preset(name)
        training = config.training
        assert (training.beta_1, training.beta_2, training.batch_size, training.discriminator_steps) == (
            0.0, 0.9, 256, 1
        ), name
        assert config.data.dataset == "imagenet2012", name
    for name in SAGAN_TABLE_1 + ["sagan_sn_gd_ttur"]:
        training = get_preset(name).training
        assert (training.generator_learning_rate, training.discriminator_learning_rate) == (1e-4, 4e-4), name


def test_sagan_figure_3_models():
    baseline, sn_gd, ttur = (get_preset(name) for name in SAGAN_FIGURE_3)
    for config in (baseline, sn_gd, ttur):
        assert config.model.attention == "none"
    assert not baseline.model.generator_spectral_norm
    assert sn_gd.model.generator_spectral_norm and ttur.model.generator_spectral_norm
    for config in (baseline, sn_gd):
        assert config.training.generator_learning_rate == config.training.discriminator_learning_rate == 1e-4


def test_ylg_feat64_attends_on_the_generators_64x64_maps():
    model = get_preset("ylg_feat64").model
    assert model.attention == "ylg" and model.attention_implementation == "block_sparse"
    assert [p.resolution for p in placements(model, "generator")] == [64]
    assert [p.resolution for p in placements(model, "discriminator")] == [32]
    # The half-width model of the README's command fits its heads.
    check_attention_channels(get_preset("ylg_feat64").replace(
        model={"generator_channels": 32, "discriminator_channels": 32}
    ).model)


def test_the_original_presets_keep_the_original_places():
    for name in ("sagan", "sagan_8heads", "ylg", "ylg_no_esa", "ylg_strided", "sagan_cifar", "ylg_cifar", "demo"):
        model = get_preset(name).model
        assert model.generator_attention_resolutions is None and model.discriminator_attention_resolutions is None
        assert model.attention_block == "attention" and model.generator_spectral_norm


def test_only_the_short_local_runs_leave_the_original_batch_norm_decay():
    short = {"demo": 0.9}
    for name, config in PRESETS.items():
        assert config.model.batch_norm_decay == short.get(name, ORIGINAL_BATCH_NORM_DECAY), name
