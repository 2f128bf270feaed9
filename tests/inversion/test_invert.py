"""Tests for ylg_tf.latents (labels, latent draws and layouts, batched generation) and ylg_tf.inversion.invert.invert (the
per-restart losses, the original's batch objective against NumPy, self-inversion of a tiny model, options)."""

import numpy as np
import pytest
import tensorflow as tf
import tf_keras

from ylg_tf.inversion import invert
from ylg_tf import latents
from ylg_tf.config import get_preset
from ylg_tf.models.networks import build_networks

MODEL = get_preset("test").model  # 32x32, 32 channels, YLG attention (D: 8 heads at 8x8)


def tiny_networks(seed, settle_discriminator=True):
    tf_keras.utils.set_random_seed(seed)
    generator, discriminator = build_networks(MODEL)
    if settle_discriminator:
        # A trained D's spectral-norm u vectors sit at their power-iteration fixed point; a fresh D's do not,
        # and since every D call moves them, the target features would drift away from those of G(z_true).
        for _ in range(30):
            discriminator.build_for_config()
    return generator, discriminator


def test_standard_normal_latents_truncation_and_seeding():
    draws = latents.standard_normal_latents(64, 16, seed=3, truncation=0.5)
    assert draws.shape == (64, 16) and draws.dtype == np.float32
    assert np.abs(draws).max() <= 0.5
    np.testing.assert_array_equal(draws, latents.standard_normal_latents(64, 16, seed=3, truncation=0.5))
    assert not np.array_equal(draws, latents.standard_normal_latents(64, 16, seed=4, truncation=0.5))
    untruncated = latents.standard_normal_latents(4000, 8, seed=0)
    assert np.abs(untruncated).max() > 3.0  # really N(0, 1) without truncation
    assert abs(untruncated.std() - 1.0) < 0.03
    # Untruncated draws are NumPy's standard normal stream for the seed, in order.
    expected = np.random.default_rng([5, 2]).standard_normal((3, 4)).astype(np.float32)
    np.testing.assert_array_equal(latents.standard_normal_latents(3, 4, seed=[5, 2]), expected)
    with pytest.raises(ValueError, match="truncation=-1"):
        latents.standard_normal_latents(2, 2, seed=0, truncation=-1.0)


def test_interpolate_latents_is_a_straight_line_between_the_ends():
    start, end = np.zeros(3, np.float32), np.array([4.0, -4.0, 8.0], np.float32)
    path = latents.interpolate_latents(start, end, 5)
    np.testing.assert_allclose(path, [[0, 0, 0], [1, -1, 2], [2, -2, 4], [3, -3, 6], [4, -4, 8]])
    with pytest.raises(ValueError, match="num_steps=1"):
        latents.interpolate_latents(start, end, 1)


def test_picture_layouts_draw_from_their_own_streams():
    grid, grid_labels = latents.class_grid_inputs([7, 1], 3, 16, seed=4, truncation=0.5)
    np.testing.assert_array_equal(grid, latents.standard_normal_latents(6, 16, [4, 0], 0.5))
    np.testing.assert_array_equal(grid_labels, [7, 7, 7, 1, 1, 1])
    line, line_labels = latents.interpolation_inputs([7, 1], 4, 16, seed=4, truncation=0.5)
    ends = latents.standard_normal_latents(4, 16, [4, 1], 0.5)
    assert line.shape == (8, 16)
    np.testing.assert_allclose(line[:4], latents.interpolate_latents(ends[0], ends[1], 4))
    np.testing.assert_allclose(line[4:], latents.interpolate_latents(ends[2], ends[3], 4))
    np.testing.assert_array_equal(line_labels, [7] * 4 + [1] * 4)


def test_labels_are_checked_against_the_number_of_classes():
    assert latents.resolve_labels(None, MODEL.num_classes) == list(range(min(MODEL.num_classes, 8)))
    assert latents.resolve_labels(None, 3) == [0, 1, 2]
    assert latents.resolve_labels([2, 0], 3) == [2, 0]
    out_of_range = MODEL.num_classes
    with pytest.raises(ValueError, match=rf"label {out_of_range} is out of range.*{MODEL.num_classes} classes"):
        latents.resolve_labels([0, out_of_range], MODEL.num_classes)
    with pytest.raises(ValueError, match="label -1"):
        latents.check_label(-1, MODEL.num_classes)
    with pytest.raises(ValueError, match="label True"):
        latents.check_label(True, MODEL.num_classes)
    with pytest.raises(ValueError, match="names no class"):
        latents.resolve_labels([], MODEL.num_classes)


def test_generate_images_in_batches_matches_one_call():
    tf_keras.utils.set_random_seed(0)
    generator, _ = build_networks(MODEL)
    draws = latents.standard_normal_latents(5, MODEL.z_dim, seed=0)
    labels = np.array([0, 1, 2, 3, MODEL.num_classes - 1])
    counts = []
    images = latents.generate_images(generator, draws, labels, batch_size=2, progress=counts.append)
    assert counts == [2, 2, 1]
    whole = generator((draws, tf.constant(labels)), training=False).numpy()
    np.testing.assert_allclose(images, whole, atol=1e-5)
    with pytest.raises(ValueError, match="labels"):
        latents.generate_images(generator, draws, labels[:3])


def weighted_squares(target, features, weights, head, restart):
    return np.sum(((target[0] - features[restart]) * weights[0, head][:, :, None]) ** 2)


def test_per_restart_loss_matches_numpy():
    random = np.random.default_rng(0)
    target = random.normal(size=(1, 4, 4, 3)).astype(np.float32)
    features = random.normal(size=(2, 4, 4, 3)).astype(np.float32)
    weights = random.uniform(size=(1, 8, 4, 4)).astype(np.float32)
    heads = (0, 2, 5)
    loss = invert.weighted_feature_loss(target, features, weights, heads).numpy()
    expected = [sum(np.sqrt(weighted_squares(target, features, weights, h, r)) for h in heads) for r in range(2)]
    np.testing.assert_allclose(loss, expected, rtol=1e-5)


def test_batch_objective_is_one_norm_over_the_restarts_per_head_as_the_original():
    random = np.random.default_rng(1)
    target = random.normal(size=(1, 4, 4, 3)).astype(np.float32)
    features = random.normal(size=(3, 4, 4, 3)).astype(np.float32)
    weights = random.uniform(size=(1, 8, 4, 4)).astype(np.float32)
    heads = (0, 1, 2, 3)
    objective = invert.batch_weighted_feature_loss(target, features, weights, heads).numpy()
    # The original: w_diff = (x - x_) * saliency, x repeated over the batch; tf.norm(w_diff, ord=2) is the
    # Euclidean norm of the whole [R, rows, columns, C] tensor; summed over heads 0-3.
    repeated = np.repeat(target, 3, axis=0).astype(np.float64)
    expected = sum(
        np.linalg.norm(((repeated - features) * weights[:, head, :, :, None]).ravel()) for head in heads
    )
    assert objective.shape == ()
    np.testing.assert_allclose(objective, expected, rtol=1e-5)
    # It differs from the sum of the per-restart losses (the --per_restart_objective option) ...
    per_restart = invert.weighted_feature_loss(target, features, weights, heads).numpy()
    assert per_restart.sum() > objective * 1.1
    # ... except with one restart, where the two are the same.
    np.testing.assert_allclose(
        invert.batch_weighted_feature_loss(target, features[:1], weights, heads).numpy(), per_restart[0], rtol=1e-5
    )


def test_heads_labels_and_config_are_validated():
    assert invert.resolve_heads(None, 8) == (0, 1, 2, 3)
    assert invert.resolve_heads(None, 1) == (0,)
    assert invert.resolve_heads((7, 4), 8) == (7, 4)
    with pytest.raises(ValueError, match=r"heads \[8\] are out of range.*8 heads"):
        invert.resolve_heads((0, 8), 8)
    with pytest.raises(ValueError, match="repeat"):
        invert.resolve_heads((1, 1), 8)
    with pytest.raises(ValueError, match="per_restart_objective=1"):
        invert.InversionConfig(per_restart_objective=1)
    with pytest.raises(ValueError, match="restarts=0"):
        invert.InversionConfig(restarts=0)
    with pytest.raises(ValueError, match="learning_rate=0"):
        invert.InversionConfig(learning_rate=0.0)


def test_self_inversion_lowers_the_loss_tenfold_and_approaches_the_true_latent():
    generator, discriminator = tiny_networks(seed=1)
    true_latent = latents.standard_normal_latents(1, MODEL.z_dim, seed=101)
    label = 2
    image = generator((true_latent, tf.constant([label])), training=False).numpy()[0]
    config = invert.InversionConfig(restarts=4, steps=200, learning_rate=0.07, seed=1, steps_per_call=50)
    reported = []
    result = invert.invert(
        generator, discriminator, image, label, config, progress=lambda done, losses: reported.append(done)
    )
    assert reported == [50, 100, 150, 200]
    assert result.loss_history.shape == (201, 4) and result.pixel_loss_history.shape == (201, 4)
    assert result.heads == (0, 1, 2, 3)
    assert result.saliency.shape == (8, 8, 8)  # all heads of D, on the 8x8 feature grid
    np.testing.assert_array_equal(result.initial_latents, latents.standard_normal_latents(4, MODEL.z_dim, 1, 2.0))
    assert np.abs(result.initial_latents).max() <= 2.0  # truncated normal start
    best = result.best_index
    assert best == int(np.argmin(result.loss_history[-1]))
    assert result.final_loss[best] <= result.initial_loss[best] / 10.0
    assert np.all(result.final_loss < result.initial_loss)
    start = invert.latent_distances(result.initial_latents, true_latent[0])[best]
    end = invert.latent_distances(result.latents, true_latent[0])[best]
    assert end < start
    # The returned images are G of the returned latents, and the pixel loss fell with the feature loss.
    regenerated = generator((result.latents, tf.fill([4], label)), training=False).numpy()
    np.testing.assert_allclose(result.images, regenerated, atol=1e-5)
    assert result.pixel_loss_history[-1, best] < result.pixel_loss_history[0, best]


def test_options_objective_lookahead_pixel_weight_heads_and_discriminator_u_updates():
    generator, discriminator = tiny_networks(seed=2, settle_discriminator=False)
    image = np.zeros((32, 32, 3), np.float32)
    start = latents.standard_normal_latents(2, MODEL.z_dim, seed=5, truncation=2.0)
    u_before = discriminator.blocks[0].sn_conv1.u.numpy()
    saved = [variable.numpy() for variable in discriminator.variables]

    def run(restarts=2, **options):
        # Every run starts from the same D: each call of D moves its u vectors, which alone would change
        # the path. One non-default head everywhere: each run checks the head choice reaches the result.
        for variable, value in zip(discriminator.variables, saved):
            variable.assign(value)
        config = invert.InversionConfig(restarts=restarts, steps=6, seed=5, heads=(5,), **options)
        return invert.invert(generator, discriminator, image, 0, config, initial_latents=start[:restarts])

    plain = run()
    # Faithful to the original: D stores new u vectors on every call, including the calls inside the loop.
    assert not np.allclose(discriminator.blocks[0].sn_conv1.u.numpy(), u_before)
    np.testing.assert_array_equal(run().latents, plain.latents)  # so differences below come from the options
    per_restart = run(per_restart_objective=True)
    with_lookahead = run(lookahead=True)
    with_pixels = run(pixel_loss_weight=10.0)
    for result in (plain, per_restart, with_lookahead, with_pixels):
        assert result.heads == (5,)
        np.testing.assert_array_equal(result.initial_latents, start)
        assert np.all(np.isfinite(result.loss_history))
    # The batch objective scales each restart's gradient by its share of the batch norm, which changes
    # from step to step; with one restart the two objectives are the same function.
    assert not np.allclose(plain.latents, per_restart.latents)
    np.testing.assert_allclose(
        run(restarts=1).latents, run(restarts=1, per_restart_objective=True).latents, rtol=1e-6, atol=1e-6
    )
    # Lookahead pulls the weights back towards the slow copy after 5 steps, so the paths differ.
    assert not np.allclose(plain.latents, with_lookahead.latents)
    assert not np.allclose(plain.latents, with_pixels.latents)
    with pytest.raises(ValueError, match=r"heads \[9\] are out of range"):
        invert.invert(generator, discriminator, image, 0, invert.InversionConfig(restarts=1, heads=(9,)))
    with pytest.raises(ValueError, match=r"image must be \[32, 32, 3\]"):
        invert.invert(generator, discriminator, np.zeros((16, 16, 3)), 0)
