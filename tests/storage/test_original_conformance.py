"""Our networks, loaded from an original-format checkpoint, reproduce the original code's outputs.

The fixture (YLG_ORIGINAL_FIXTURE, default tests/fixtures/ylg_original_small) was made by running the
unmodified YLG code; every size is read from its fixture.json, so another fixture of the same layout works.
Its checkpoint is the session fixture `original_checkpoint_prefix` (rebuilt from the fill rule when the
directory holds no checkpoint data, see tests/original_fixture.py).
Each golden group starts from the checkpoint state, so the checkpoint is reloaded before each one.
"""

import json

import numpy as np
import pytest
import tensorflow as tf

from conftest import ORIGINAL_FIXTURE_DIRECTORY
from ylg_tf.config import ModelConfig
from ylg_tf.models.networks import build_networks
from ylg_tf.storage.original_checkpoint import (
    checkpoint_global_step,
    infer_model_sizes,
    load_original_checkpoint,
    original_variable_map,
)


@pytest.fixture(scope="module", params=["dense", "block_sparse"])
def fixture(request, original_checkpoint_prefix):
    """The fixture, loaded into our networks with the original's masked dense attention or block-sparse."""
    description = json.loads((ORIGINAL_FIXTURE_DIRECTORY / "fixture.json").read_text())
    golden = dict(np.load(ORIGINAL_FIXTURE_DIRECTORY / "golden.npz"))
    prefix = original_checkpoint_prefix
    sizes = description["config"]
    model_config = ModelConfig(
        image_size=sizes["image_size"],
        num_classes=sizes["num_classes"],
        z_dim=sizes["z_dim"],
        generator_channels=sizes["gf_dim"],
        discriminator_channels=sizes["df_dim"],
        attention="ylg",
        attention_implementation=request.param,
    )
    generator, discriminator = build_networks(model_config)
    mapping = original_variable_map(generator, discriminator)

    def reload():
        load_original_checkpoint(prefix, generator, discriminator)

    tolerances = {name: entry["atol"] for name, entry in description["recommended_atol"].items()}
    return dict(
        description=description,
        golden=golden,
        prefix=prefix,
        generator=generator,
        discriminator=discriminator,
        mapping=mapping,
        reload=reload,
        atol=tolerances,
    )


def _assert_close(actual, expected, atol, what):
    actual = np.asarray(actual)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    error = float(np.max(np.abs(actual - expected)))
    assert error <= atol, f"{what}: max abs error {error:.3g} > {atol:.3g}"


def _golden_group(golden, prefix):
    return {key[len(prefix):]: value for key, value in golden.items() if key.startswith(prefix)}


def _first_queries(probabilities, golden_attention):
    # Golden attention holds batch element 0, all heads, the first query rows, all keys.
    return probabilities[0, :, : golden_attention.shape[1], :]


def _state(mapping, scope):
    return {key: variable.numpy() for key, variable in mapping.items() if key.startswith(scope)}


def test_checkpoint_covers_every_network_variable(fixture):
    description = fixture["description"]
    mapping = fixture["mapping"]
    counts = description["checkpoint"]["n_variables_by_kind"]
    # Every checkpoint variable except global_step has exactly one counterpart in our networks.
    assert len(mapping) == description["checkpoint"]["n_variables"] - counts["global_step"]
    networks = fixture["generator"].variables + fixture["discriminator"].variables
    assert {id(v) for v in mapping.values()} == {id(v) for v in networks}
    trainable = fixture["generator"].trainable_variables + fixture["discriminator"].trainable_variables
    assert len(trainable) == counts["trainable"]
    parameters = description["checkpoint"]["param_counts"]
    assert sum(int(np.prod(v.shape)) for v in fixture["generator"].trainable_variables) == parameters["G_trainable"]
    assert sum(int(np.prod(v.shape)) for v in fixture["discriminator"].trainable_variables) == parameters["D_trainable"]
    assert checkpoint_global_step(fixture["prefix"]) == description["checkpoint"]["global_step"]


def test_model_sizes_are_inferred_from_the_checkpoint(fixture):
    sizes = fixture["description"]["config"]
    assert infer_model_sizes(fixture["prefix"]) == {
        "z_dim": sizes["z_dim"],
        "num_classes": sizes["num_classes"],
        "generator_channels": sizes["gf_dim"],
        "discriminator_channels": sizes["df_dim"],
    }


def test_generator_inference(fixture):
    golden, atol = fixture["golden"], fixture["atol"]
    fixture["reload"]()
    before = _state(fixture["mapping"], "Generator")
    images, probabilities = fixture["generator"](
        (golden["in/z"], golden["in/y_g"]), training=False, return_attention=True
    )
    _assert_close(images, golden["g_inf/image"], atol["g_inf/image"], "g_inf/image")
    attention = golden["g_inf/attn_b0_q0_63"]
    _assert_close(_first_queries(probabilities, attention), attention, atol["g_inf/attn_b0_q0_63"], "g_inf attention")
    after = _state(fixture["mapping"], "Generator")
    assert all(np.array_equal(before[key], after[key]) for key in before), "inference changed G state"


def test_generator_training_mode_and_state_updates(fixture):
    golden, atol, mapping = fixture["golden"], fixture["atol"], fixture["mapping"]
    fixture["reload"]()
    images, probabilities = fixture["generator"](
        (golden["in/z"], golden["in/y_g"]), training=True, return_attention=True
    )
    _assert_close(images, golden["g_train/image"], atol["g_train/image"], "g_train/image")
    attention = golden["g_train/attn_b0_q0_63"]
    _assert_close(_first_queries(probabilities, attention), attention, atol["g_train/attn_b0_q0_63"], "g_train attention")

    u_after = _golden_group(golden, "g_train/u_after_all/")
    assert u_after, "fixture has no g_train/u_after_all group"
    assert set(u_after) == {key for key in mapping if key.startswith("Generator") and key.endswith("_u")}
    for key, expected in u_after.items():
        _assert_close(mapping[key].numpy(), expected, atol["g_train/u_after_all/*"], key)
    named = fixture["description"]["named_u_layer"]
    _assert_close(mapping[named["checkpoint_key"]].numpy(), golden[named["npz_key"]], atol["g_train/u_after"], "named u")

    # Our training-mode call also applies the batch-norm moving-average updates (the original's UPDATE_OPS).
    statistics = _golden_group(golden, "g_train_ema/after/")
    assert statistics, "fixture has no g_train_ema group"
    for key, expected in statistics.items():
        _assert_close(mapping[key].numpy(), expected, atol["g_train_ema/after/*"], key)


def test_discriminator_real_two_calls(fixture):
    golden, atol, mapping = fixture["golden"], fixture["atol"], fixture["mapping"]
    fixture["reload"]()
    outputs = fixture["discriminator"](
        (golden["in/x"], golden["in/y_r"]), return_features=True, return_attention=True
    )
    _assert_close(outputs["logits"], golden["d_real/logits"], atol["d_real/logits"], "d_real/logits")
    _assert_close(outputs["features"], golden["d_real/h1_"], atol["d_real/h1_"], "d_real/h1_")
    attention = golden["d_real/attn_b0_q0_63"]
    _assert_close(_first_queries(outputs["attention"], attention), attention, atol["d_real/attn_b0_q0_63"], "d attention")

    u_after = _golden_group(golden, "d_real/u_after_all/")
    assert set(u_after) == {key for key in mapping if key.startswith("Discriminator") and key.endswith("_u")}
    for key, expected in u_after.items():
        _assert_close(mapping[key].numpy(), expected, atol["d_real/u_after_all/*"], key)

    second = fixture["discriminator"]((golden["in/x"], golden["in/y_r"]))
    expected = golden["d_real/logits_second_call"]
    _assert_close(second, expected, atol["d_real/logits_second_call"], "d_real/logits_second_call")


def test_discriminator_on_generated_images(fixture):
    golden, atol = fixture["golden"], fixture["atol"]
    fixture["reload"]()
    images = fixture["generator"]((golden["in/z"], golden["in/y_g"]), training=False)
    logits = fixture["discriminator"]((images, golden["in/y_g"]))
    _assert_close(logits, golden["d_fake_inf/logits"], atol["d_fake_inf/logits"], "d_fake_inf/logits")


def test_missing_and_misshaped_variables_are_named(fixture, tmp_path):
    description = fixture["description"]["config"]
    wider = ModelConfig(
        image_size=description["image_size"],
        num_classes=description["num_classes"] + 1,
        z_dim=description["z_dim"],
        generator_channels=description["gf_dim"],
        discriminator_channels=description["df_dim"],
        attention="ylg",
    )
    generator, discriminator = build_networks(wider)
    with pytest.raises(ValueError, match="mis-shaped: .*d_embedding/embedding_map"):
        load_original_checkpoint(fixture["prefix"], generator, discriminator)
    with pytest.raises(ValueError, match="cannot read a checkpoint"):
        load_original_checkpoint(str(tmp_path / "nothing"), generator, discriminator)
    # A checkpoint lacking one variable names it.
    reader = tf.train.load_checkpoint(fixture["prefix"])
    dropped = "Generator/generator/g_ops/sigma_ratio"
    keys = [key for key in reader.get_variable_to_shape_map() if key != dropped]
    with tf.Graph().as_default(), tf.compat.v1.Session() as session:
        graph_variables = [
            tf.compat.v1.get_variable(key, initializer=reader.get_tensor(key)) for key in keys
        ]
        session.run(tf.compat.v1.variables_initializer(graph_variables))
        tf.compat.v1.train.Saver(graph_variables).save(session, str(tmp_path / "partial"))
    generator, discriminator = build_networks(fixture["generator"].model_config)
    with pytest.raises(ValueError, match=f"1 missing: {dropped}"):
        load_original_checkpoint(str(tmp_path / "partial"), generator, discriminator)
