"""Tests for ylg_tf.inversion: latent sampling, the weighted feature loss, and self-inversion of a tiny model."""

import numpy as np
import pytest
import tensorflow as tf

from ylg_tf import inversion
from ylg_tf.config import get_preset
from ylg_tf.networks import build_networks

MODEL = get_preset("test").model  # 32x32, 4 classes, 32 channels, YLG attention (D: 8 heads at 8x8)


def tiny_networks(seed, settle_discriminator=True):
    tf.keras.utils.set_random_seed(seed)
    generator, discriminator = build_networks(MODEL)
    if settle_discriminator:
        # A trained D's spectral-norm u vectors sit at their power-iteration fixed point; a fresh D's do not,
        # and since every D call moves them, the target features would drift away from those of G(z_true).
        for _ in range(30):
            discriminator.build_for_config()
    return generator, discriminator


def test_sample_latents_truncation_and_seeding():
    latents = inversion.sample_latents(64, 16, seed=3, truncation=0.5)
    assert latents.shape == (64, 16) and latents.dtype == np.float32
    assert np.abs(latents).max() <= 0.5
    np.testing.assert_array_equal(latents, inversion.sample_latents(64, 16, seed=3, truncation=0.5))
    assert not np.array_equal(latents, inversion.sample_latents(64, 16, seed=4, truncation=0.5))
    untruncated = inversion.sample_latents(4000, 8, seed=0)
    assert np.abs(untruncated).max() > 3.0  # really N(0, 1) without truncation
    assert abs(untruncated.std() - 1.0) < 0.03
    with pytest.raises(ValueError, match="truncation=-1"):
        inversion.sample_latents(2, 2, seed=0, truncation=-1.0)


def test_interpolate_latents_is_a_straight_line_between_the_ends():
    start, end = np.zeros(3, np.float32), np.array([4.0, -4.0, 8.0], np.float32)
    path = inversion.interpolate_latents(start, end, 5)
    np.testing.assert_allclose(path, [[0, 0, 0], [1, -1, 2], [2, -2, 4], [3, -3, 6], [4, -4, 8]])
    with pytest.raises(ValueError, match="num_steps=1"):
        inversion.interpolate_latents(start, end, 1)


def test_weighted_feature_loss_matches_numpy():
    random = np.random.default_rng(0)
    target = random.normal(size=(1, 4, 4, 3)).astype(np.float32)
    features = random.normal(size=(2, 4, 4, 3)).astype(np.float32)
    weights = random.uniform(size=(1, 8, 4, 4)).astype(np.float32)
    heads = (0, 2, 5)
    loss = inversion.weighted_feature_loss(target, features, weights, heads).numpy()
    expected = [
        sum(np.sqrt(np.sum(((target[0] - features[r]) * weights[0, h][:, :, None]) ** 2)) for h in heads)
        for r in range(2)
    ]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_heads_labels_and_config_are_validated():
    assert inversion.resolve_heads(None, 8) == (0, 1, 2, 3)
    assert inversion.resolve_heads(None, 1) == (0,)
    assert inversion.resolve_heads((7, 4), 8) == (7, 4)
    with pytest.raises(ValueError, match=r"heads \[8\] are out of range.*8 heads"):
        inversion.resolve_heads((0, 8), 8)
    with pytest.raises(ValueError, match="repeat"):
        inversion.resolve_heads((1, 1), 8)
    with pytest.raises(ValueError, match=r"label 4 is out of range.*4 classes"):
        inversion.check_label(4, 4)
    with pytest.raises(ValueError, match="label -1"):
        inversion.check_label(-1, 4)
    with pytest.raises(ValueError, match="restarts=0"):
        inversion.InversionConfig(restarts=0)
    with pytest.raises(ValueError, match="learning_rate=0"):
        inversion.InversionConfig(learning_rate=0.0)


def test_self_inversion_lowers_the_loss_tenfold_and_approaches_the_true_latent():
    generator, discriminator = tiny_networks(seed=1)
    true_latent = inversion.sample_latents(1, MODEL.z_dim, seed=101)
    label = 2
    image = generator((true_latent, tf.constant([label])), training=False).numpy()[0]
    config = inversion.InversionConfig(restarts=4, steps=200, learning_rate=0.07, seed=1, steps_per_call=50)
    reported = []
    result = inversion.invert(
        generator, discriminator, image, label, config, progress=lambda done, losses: reported.append(done)
    )
    assert reported == [50, 100, 150, 200]
    assert result.loss_history.shape == (201, 4) and result.pixel_loss_history.shape == (201, 4)
    assert result.heads == (0, 1, 2, 3)
    assert result.saliency.shape == (8, 8, 8)  # all heads of D, on the 8x8 feature grid
    np.testing.assert_array_equal(result.initial_latents, inversion.sample_latents(4, MODEL.z_dim, 1, 2.0))
    assert np.abs(result.initial_latents).max() <= 2.0  # truncated normal start
    best = result.best_index
    assert best == int(np.argmin(result.loss_history[-1]))
    assert result.final_loss[best] <= result.initial_loss[best] / 10.0
    assert np.all(result.final_loss < result.initial_loss)
    start = inversion.latent_distances(result.initial_latents, true_latent[0])[best]
    end = inversion.latent_distances(result.latents, true_latent[0])[best]
    assert end < start
    # The returned images are G of the returned latents, and the pixel loss fell with the feature loss.
    regenerated = generator((result.latents, tf.fill([4], label)), training=False).numpy()
    np.testing.assert_allclose(result.images, regenerated, atol=1e-5)
    assert result.pixel_loss_history[-1, best] < result.pixel_loss_history[0, best]


def test_options_lookahead_pixel_weight_heads_and_discriminator_u_updates():
    generator, discriminator = tiny_networks(seed=2, settle_discriminator=False)
    image = np.zeros((32, 32, 3), np.float32)
    start = inversion.sample_latents(2, MODEL.z_dim, seed=5, truncation=2.0)
    u_before = discriminator.blocks[0].sn_conv1.u.numpy()

    def run(**options):
        # One non-default head everywhere: each run checks the head choice reaches the result.
        config = inversion.InversionConfig(restarts=2, steps=6, seed=5, heads=(5,), **options)
        return inversion.invert(generator, discriminator, image, 0, config, initial_latents=start)

    plain = run()
    # Faithful to the original: D stores new u vectors on every call, including the calls inside the loop.
    assert not np.allclose(discriminator.blocks[0].sn_conv1.u.numpy(), u_before)
    with_lookahead = run(lookahead=True)
    with_pixels = run(pixel_loss_weight=10.0)
    for result in (plain, with_lookahead, with_pixels):
        assert result.heads == (5,)
        np.testing.assert_array_equal(result.initial_latents, start)
        assert np.all(np.isfinite(result.loss_history))
    # Lookahead pulls the weights back towards the slow copy after 5 steps, so the paths differ.
    assert not np.allclose(plain.latents, with_lookahead.latents)
    assert not np.allclose(plain.latents, with_pixels.latents)
    with pytest.raises(ValueError, match=r"heads \[9\] are out of range"):
        inversion.invert(generator, discriminator, image, 0, inversion.InversionConfig(restarts=1, heads=(9,)))
    with pytest.raises(ValueError, match=r"image must be \[32, 32, 3\]"):
        inversion.invert(generator, discriminator, np.zeros((16, 16, 3)), 0)
