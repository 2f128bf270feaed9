"""Evaluation library: IS/FID of streamed samples against NumPy/SciPy references, real-statistics cache
(also on a non-local tf.io.gfile path), the built-in classifier (trained, cached, reloaded), the periodic
evaluator (its classifier checked when it is made), result files and the progress line."""

import io
import json
import os
import uuid
from unittest import mock

import numpy as np
import pytest
import scipy.special
import tensorflow as tf
from ylg_tf.tfgan_import import tfgan
from PIL import Image

from fake_inception import write_fake_inception_savedmodel
from test_resizing import legacy_bilinear_reference
from ylg_tf.evaluation import builtin_classifier
from ylg_tf.data import builtin_shapes
from ylg_tf.data import datasets
from ylg_tf.evaluation import classifiers, evaluate, periodic, protocols, real_statistics, samples
from ylg_tf.evaluation import inception
from ylg_tf.evaluation import metrics
from ylg_tf import progress
from ylg_tf.config import DataConfig, ExperimentConfig, ModelConfig, TrainingConfig
from ylg_tf.models.networks import Discriminator, Generator
from ylg_tf.storage import workdir as workdirs

RELATIVE_TOLERANCE = 1e-6


# ----------------------------------------------------------------------------------------------
# References.


def reference_inception_score(logits):
    """exp(E_x KL(p(y|x) || p(y))), one split, float64."""
    log_probabilities = scipy.special.log_softmax(np.asarray(logits, np.float64), axis=1)  # [N, K]
    probabilities = np.exp(log_probabilities)
    marginal = probabilities.mean(axis=0)  # [K]
    return float(np.exp(np.mean(np.sum(probabilities * (log_probabilities - np.log(marginal)), axis=1))))


def reference_frechet_distance(activations_a, activations_b):
    """|mu_a - mu_b|^2 + tr C_a + tr C_b - 2 tr sqrt(C_a C_b), unbiased covariances, float64.

    tr sqrt(C_a C_b) is taken exactly, also when the covariances are singular (fewer samples than
    features): with centred rows A, B, the non-zero eigenvalues of C_a C_b are those of
    (A B^T)(A B^T)^T / ((n_a - 1)(n_b - 1)), so the trace is the sum of A B^T's singular values over
    sqrt((n_a - 1)(n_b - 1)).
    """
    a = np.asarray(activations_a, np.float64)
    b = np.asarray(activations_b, np.float64)
    centred_a, centred_b = a - a.mean(axis=0), b - b.mean(axis=0)
    covariance_a, covariance_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    trace_root = np.linalg.svd(centred_a @ centred_b.T, compute_uv=False).sum() / np.sqrt(
        (len(a) - 1) * (len(b) - 1))
    return float(np.sum((a.mean(axis=0) - b.mean(axis=0)) ** 2)
                 + np.trace(covariance_a) + np.trace(covariance_b) - 2.0 * trace_root)


class LinearClassifier:
    """images -> {"logits": [N, 7], "pool_3": [N, 5]}: fixed random maps of 4x4-pooled images."""

    def __init__(self, seed, num_logits=7, pool_features=5):
        generator = np.random.default_rng(seed)
        self.pool_weights = generator.normal(size=[48, pool_features]).astype(np.float32)
        self.logits_weights = generator.normal(size=[pool_features, num_logits]).astype(np.float32)
        self.calls = []

    def __call__(self, images):
        images = tf.convert_to_tensor(images, tf.float32)
        self.calls.append(int(images.shape[0]))
        pooled = tf.image.resize(images, [4, 4], method="area")
        pool = tf.nn.relu(tf.reshape(pooled, [-1, 48]) @ self.pool_weights)
        return {"logits": pool @ self.logits_weights, "pool_3": pool}


def toy_sample_function(z, labels):
    """A deterministic 'generator' [B, 8, 8, 3] depending on z and the labels."""
    z = tf.convert_to_tensor(z)
    base = tf.reshape(tf.tanh(z[:, :16] + tf.cast(labels, tf.float32)[:, None] * 0.3), [-1, 4, 4, 1])
    return tf.tile(tf.image.resize(base, [8, 8], method="nearest"), [1, 1, 1, 3])


def random_images(seed, count, size=8):
    return np.random.default_rng(seed).uniform(-1, 1, size=[count, size, size, 3]).astype(np.float32)


def batched(images, sizes):
    start = 0
    for size in sizes:
        yield images[start:start + size]
        start += size


# ----------------------------------------------------------------------------------------------
# Sampling and streaming scores.


def test_sample_latents_are_keyed_by_seed_and_batch():
    z, labels = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=7)
    z_again, labels_again = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=7)
    np.testing.assert_array_equal(z, z_again)
    np.testing.assert_array_equal(labels, labels_again)
    other_batch, _ = samples.sample_latents(4, 4096, num_classes=5, z_dim=16, seed=7)
    other_seed, _ = samples.sample_latents(3, 4096, num_classes=5, z_dim=16, seed=8)
    assert not np.allclose(z, other_batch) and not np.allclose(z, other_seed)
    assert z.shape == (4096, 16) and labels.dtype == tf.int32
    assert abs(float(np.mean(z))) < 0.02 and abs(float(np.std(z)) - 1.0) < 0.02
    counts = np.bincount(labels.numpy(), minlength=5)
    assert counts.size == 5 and counts.min() > 4096 / 5 * 0.85  # uniform over all classes


def test_evaluate_generator_equals_reference_formulas_with_partial_last_batch():
    classifier = LinearClassifier(seed=0)
    real_images = random_images(seed=1, count=23)
    real, reused = real_statistics.real_statistics(
        classifier, lambda: batched(real_images, [6, 6, 6, 6]), 23, None, {"test": 1})
    assert not reused and real.count == 23

    result = evaluate.evaluate_generator(
        toy_sample_function, classifier, num_samples=19, batch_size=6, num_classes=3, z_dim=16,
        real_statistics=real, seed=5)

    # Reference: the same 19 samples drawn explicitly (batches of 6; the last keeps 1 row).
    generated_images = np.concatenate([
        toy_sample_function(*samples.sample_latents(index, 6, 3, 16, seed=5)).numpy()
        for index in range(4)])[:19]
    generated_outputs = classifier(generated_images)
    real_pool = classifier(real_images)["pool_3"].numpy()
    expected_fid = reference_frechet_distance(generated_outputs["pool_3"].numpy(), real_pool)
    expected_score = reference_inception_score(generated_outputs["logits"].numpy())
    assert result["num_samples"] == 19
    np.testing.assert_allclose(result["fid"], expected_fid, rtol=RELATIVE_TOLERANCE)
    np.testing.assert_allclose(result["inception_score"], expected_score, rtol=RELATIVE_TOLERANCE)
    # ... and TF-GAN's one-shot functions on the same in-memory arrays.
    tfgan_fid = tfgan.eval.frechet_classifier_distance_from_activations(
        tf.constant(generated_outputs["pool_3"].numpy(), tf.float64), tf.constant(real_pool, tf.float64))
    tfgan_score = tfgan.eval.classifier_score_from_logits(
        tf.constant(generated_outputs["logits"].numpy(), tf.float64))
    np.testing.assert_allclose(result["fid"], float(tfgan_fid), rtol=1e-5)
    np.testing.assert_allclose(result["inception_score"], float(tfgan_score), rtol=RELATIVE_TOLERANCE)
    # Every classifier call had the full batch size (short batches are padded): one trace only.
    assert set(classifier.calls[:-2]) == {6}


@pytest.mark.parametrize("num_samples, batch_size, message", [
    (4, 8, "num_samples=4 is smaller than batch_size=8"),
    (1, 1, "num_samples must be an integer >= 2"),
    (16, 0, "batch_size must be an integer >= 1"),
])
def test_bad_sample_counts_are_user_errors(num_samples, batch_size, message):
    with pytest.raises(classifiers.EvaluationError, match=message):
        samples.check_sample_counts(num_samples, batch_size)
    assert issubclass(classifiers.EvaluationError, ValueError)  # the entry points' exit-2 errors


# ----------------------------------------------------------------------------------------------
# Real-data statistics cache.


def test_real_statistics_are_cached_reused_and_recomputed_on_provenance_change(tmp_path):
    classifier = LinearClassifier(seed=2)
    images = random_images(seed=3, count=12)
    calls = []

    def make_batches():
        calls.append(1)
        return batched(images, [5, 5, 5])  # slices of 5, 5 and 2 images

    provenance = {"dataset": "builtin", "classifier": {"fingerprint": "a"}}
    path = str(tmp_path / "cache" / "real.npz")
    first, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, provenance)
    assert not reused and len(calls) == 1 and os.path.isfile(path)
    expected = classifier(images)["pool_3"].numpy().astype(np.float64)
    np.testing.assert_allclose(first.mean, expected.mean(axis=0), rtol=1e-10)
    np.testing.assert_allclose(first.covariance, np.cov(expected, rowvar=False), rtol=1e-9, atol=1e-12)

    modified = os.path.getmtime(path)
    again, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, provenance)
    assert reused and len(calls) == 1 and os.path.getmtime(path) == modified
    np.testing.assert_array_equal(again.covariance, first.covariance)
    assert again.provenance == provenance

    changed = {"dataset": "builtin", "classifier": {"fingerprint": "b"}}
    _, reused = real_statistics.real_statistics(classifier, make_batches, 12, path, changed)
    assert not reused and len(calls) == 2
    assert metrics.ActivationStatistics.load(path).provenance == changed
    _, reused = real_statistics.real_statistics(classifier, make_batches, 10, path, changed)  # other count
    assert not reused and len(calls) == 3

    with pytest.raises(classifiers.EvaluationError, match="only 12 images, fewer than the num_samples=13"):
        real_statistics.real_statistics(classifier, make_batches, 13, None, changed)


def test_real_statistics_cache_works_on_a_non_local_filesystem():
    # ram:// is TensorFlow's in-memory file system: any os.* call on the path would fail.
    classifier = LinearClassifier(seed=6)
    images = random_images(seed=7, count=6)
    directory = f"ram://evaluation-{uuid.uuid4().hex}/real_statistics"
    path = f"{directory}/real.npz"
    first, reused = real_statistics.real_statistics(classifier, lambda: batched(images, [3, 3]), 6, path, {"a": 1})
    again, reused_again = real_statistics.real_statistics(classifier, lambda: iter(()), 6, path, {"a": 1})
    assert (reused, reused_again) == (False, True)
    np.testing.assert_array_equal(again.covariance, first.covariance)
    assert tf.io.gfile.listdir(directory) == ["real.npz"]  # the temporary file was renamed, not left


def test_statistics_path_depends_on_provenance(tmp_path):
    description = {"kind": "inception", "source": "/m", "resize": "module", "fingerprint": "f"}
    provenance = real_statistics.real_data_provenance(
        description, dataset="imagenet_resized/32x32", split="validation", image_size=32, num_samples=100)
    path = real_statistics.real_statistics_path(tmp_path, provenance)
    assert os.path.dirname(path) == str(tmp_path / "evaluation" / "real_statistics")
    assert os.path.basename(path).startswith("imagenet_resized-32x32_validation_32px_100_")
    other = dict(provenance, classifier=dict(description, resize="bilinear_299"))
    assert real_statistics.real_statistics_path(tmp_path, other) != path
    with pytest.raises(classifiers.EvaluationError, match="unknown dataset 'mnist'"):
        real_statistics.real_data_provenance(description, dataset="mnist", split="train", image_size=32,
                                        num_samples=10)


def write_folder_dataset(directory, images_per_class):
    generator = np.random.default_rng(0)
    for class_name in ("a", "b"):
        (directory / class_name).mkdir(parents=True)
        for index in range(images_per_class):
            pixels = generator.integers(0, 256, size=[12, 10, 3], dtype=np.uint8)
            Image.fromarray(pixels).save(directory / class_name / f"{index}.png")
    return directory


def test_real_batches_are_the_first_images_in_order_and_too_few_is_an_error(tmp_path):
    folder = write_folder_dataset(tmp_path / "folder", images_per_class=3)
    batches = list(real_statistics.make_real_batches(
        "folder", split="train", image_size=8, num_samples=5, batch_size=2, data_dir=str(folder)))
    assert [int(batch.shape[0]) for batch in batches] == [2, 2, 1]
    expected = next(iter(datasets.make_dataset(
        "folder", split="train", image_size=8, batch_size=5, data_dir=str(folder), shuffle=False,
        repeat=False, num_examples=5)))[0]
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    with pytest.raises(classifiers.EvaluationError, match="has 6 images, fewer than the num_samples=7"):
        real_statistics.make_real_batches("folder", split="train", image_size=8, num_samples=7, batch_size=2,
                                     data_dir=str(folder))


# ----------------------------------------------------------------------------------------------
# Classifier loading.


@pytest.fixture(scope="module")
def small_fake_inception(tmp_path_factory):
    return str(write_fake_inception_savedmodel(
        tmp_path_factory.mktemp("fake") / "module", resize_inside=True, pool_features=32, num_logits=10))


def test_inception_classifier_description_and_resize_modes(small_fake_inception, tmp_path):
    by_module = classifiers.load_evaluation_classifier(small_fake_inception, image_size=16)
    assert by_module.description["kind"] == "inception"
    assert by_module.description["resize"] == classifiers.RESIZE_BY_MODULE
    assert len(by_module.description["fingerprint"]) == 16
    images = random_images(seed=4, count=3, size=16)
    module = tf.saved_model.load(small_fake_inception)
    np.testing.assert_allclose(by_module.function(images)["pool_3"], module(images)["pool_3"], rtol=1e-6)

    by_tool = classifiers.load_evaluation_classifier(
        small_fake_inception, image_size=16, resize=classifiers.RESIZE_BILINEAR_299)
    assert by_tool.description["resize"] == classifiers.RESIZE_BILINEAR_299
    resized = tf.image.resize(images, [299, 299], method="bilinear")
    np.testing.assert_allclose(by_tool.function(images)["pool_3"], module(resized)["pool_3"], rtol=1e-6)

    # The YLG code's resize: TF1's bilinear kernel (NumPy reference), not TF2's.
    legacy = classifiers.load_evaluation_classifier(
        small_fake_inception, image_size=16, resize=classifiers.RESIZE_LEGACY_BILINEAR_299)
    assert legacy.description["resize"] == "legacy_bilinear_299"
    expected = module(tf.constant(legacy_bilinear_reference(images, 299), tf.float32))["pool_3"]
    np.testing.assert_allclose(legacy.function(images)["pool_3"], expected, rtol=1e-4, atol=1e-4)
    assert not np.allclose(legacy.function(images)["pool_3"], by_tool.function(images)["pool_3"], atol=1e-3)
    with pytest.raises(classifiers.EvaluationError, match="'bilinear' is not one of"):
        classifiers.load_evaluation_classifier(small_fake_inception, image_size=16, resize="bilinear")

    # A module with a fixed 299x299 input cannot take 16x16 images unless the tool resizes them.
    fixed = str(write_fake_inception_savedmodel(tmp_path / "fixed", pool_features=8, num_logits=4))
    with pytest.raises(inception.InceptionUnavailableError, match="--resize_to_299"):
        classifiers.load_evaluation_classifier(fixed, image_size=16)
    assert classifiers.load_evaluation_classifier(
        fixed, image_size=16, resize=classifiers.RESIZE_BILINEAR_299).description["fingerprint"] != (
        by_module.description["fingerprint"])


def test_classifier_errors_are_os_errors_so_entry_points_print_one_line(tmp_path):
    with pytest.raises(inception.InceptionUnavailableError, match="no such file") as error:
        classifiers.load_evaluation_classifier(str(tmp_path / "missing"), image_size=16)
    assert isinstance(error.value, OSError)
    with pytest.raises(classifiers.EvaluationError, match="needs a cache_directory"):
        classifiers.load_evaluation_classifier("builtin", image_size=32)
    with pytest.raises(ValueError, match="cache_directory must name"):
        builtin_classifier.load_or_train(None)


def test_default_classifier_is_builtin_only_for_the_builtin_dataset():
    assert classifiers.default_classifier_source("builtin") == "builtin"
    assert classifiers.default_classifier_source("cifar10") == inception.DEFAULT_INCEPTION


# ----------------------------------------------------------------------------------------------
# Built-in classifier.


@pytest.fixture(scope="module")
def builtin_cache(tmp_path_factory):
    cache = tmp_path_factory.mktemp("classifier_cache")
    directory, metadata = builtin_classifier.load_or_train(cache)
    return cache, directory, metadata


def test_builtin_classifier_is_accurate_cached_and_reloaded_identically(builtin_cache):
    cache, directory, metadata = builtin_cache
    assert directory == builtin_classifier.classifier_directory(cache)
    assert metadata["held_out_accuracy"] >= 0.8  # chance is 0.1
    assert metadata["num_classes"] == builtin_shapes.NUM_CLASSES

    # The cache is used as is: no retraining, files untouched.
    saved_model_file = os.path.join(directory, "saved_model.pb")
    modified = os.path.getmtime(saved_model_file)
    with mock.patch.object(builtin_classifier, "train_classifier", side_effect=AssertionError("retrained")):
        again_directory, again_metadata = builtin_classifier.load_or_train(cache)
    assert (again_directory, again_metadata) == (directory, metadata)
    assert os.path.getmtime(saved_model_file) == modified

    # The SavedModel is the trained network: its held-out accuracy is the recorded one, and two loads
    # through the Inception loading path agree exactly.
    first = inception.load_classifier(directory, image_size=None)
    second = inception.load_classifier(directory, image_size=None)
    assert builtin_classifier.held_out_accuracy(first) == metadata["held_out_accuracy"]
    images = random_images(seed=5, count=4, size=32)
    for field, width in (("logits", builtin_shapes.NUM_CLASSES),
                         ("pool_3", builtin_classifier.FEATURE_DIMENSION)):
        assert first(images)[field].shape == (4, width)
        np.testing.assert_array_equal(first(images)[field], second(images)[field])


def test_builtin_classifier_handles_other_resolutions(builtin_cache):
    _, directory, _ = builtin_cache
    classifier = inception.load_classifier(directory, image_size=None)
    images, labels = next(iter(builtin_shapes.builtin_shapes_dataset(64, 3, 200, split="validation").batch(200)))
    predictions = np.argmax(classifier(images)["logits"], axis=1)
    assert np.mean(predictions == labels.numpy()) >= 0.8


def test_builtin_classifier_scores_real_images_far_better_than_an_untrained_generator(builtin_cache):
    cache, _, metadata = builtin_cache
    classifier = classifiers.load_evaluation_classifier("builtin", image_size=32, cache_directory=cache)
    assert classifier.description["kind"] == "builtin"
    assert classifier.description["held_out_accuracy"] == metadata["held_out_accuracy"]
    num_samples, batch_size = 256, 64
    real, _ = real_statistics.real_statistics(
        classifier,
        lambda: real_statistics.make_real_batches("builtin", split="validation", image_size=32,
                                             num_samples=num_samples, batch_size=batch_size),
        num_samples, None, {})
    # "Generators": other real images (train split), and an untrained network.
    other_real = iter(builtin_shapes.builtin_shapes_dataset(32, 1, split="train").batch(batch_size))
    real_scores = evaluate.evaluate_generator(
        lambda z, labels: next(other_real)[0], classifier, num_samples, batch_size, 10, 128, real)
    model_config = ModelConfig(image_size=32, num_classes=10, generator_channels=16,
                               discriminator_channels=16, attention="none")
    untrained = samples.generator_sample_function(Generator(model_config).build_for_config())
    untrained_scores = evaluate.evaluate_generator(
        untrained, classifier, num_samples, batch_size, 10, 128, real)
    assert real_scores["inception_score"] > 8.0  # 10 near-balanced classes, confidently classified
    assert untrained_scores["inception_score"] < real_scores["inception_score"] - 3.0
    assert real_scores["fid"] < 0.1 * untrained_scores["fid"]


# ----------------------------------------------------------------------------------------------
# Exported generator and periodic evaluation.


def tiny_config(eval_every=0):
    return ExperimentConfig(
        model=ModelConfig(image_size=32, num_classes=4, generator_channels=16, discriminator_channels=16,
                          attention="none"),
        training=TrainingConfig(batch_size=4, eval_every=eval_every, eval_num_samples=8),
        data=DataConfig(dataset="builtin", split="train", eval_split="validation"),
    )


def test_exported_generator_samples_match_the_network_up_to_uint8_rounding(tmp_path):
    from ylg_tf.storage import export

    config = tiny_config()
    generator = Generator(config.model).build_for_config()
    signature = export.load_exported_generator(
        export.export_generator(generator, config.model, tmp_path / "export"))
    sample = samples.exported_sample_function(signature, config.model)
    z, labels = samples.sample_latents(0, 4, config.model.num_classes, config.model.z_dim)
    exported = sample(z, labels).numpy()
    direct = generator((z, labels), training=False).numpy()
    np.testing.assert_allclose(exported, direct, atol=0.5 / 127.5 + 1e-6)
    assert exported.min() >= -1.0 and exported.max() <= 1.0
    with pytest.raises(classifiers.EvaluationError, match="z_dim=64"):
        samples.exported_sample_function(
            signature, ModelConfig(image_size=32, num_classes=4, z_dim=64, attention="none"))


def test_periodic_evaluator_scores_and_reuses_real_statistics(tmp_path, small_fake_inception):
    config = tiny_config(eval_every=2)
    evaluator = periodic.make_periodic_evaluator(config, tmp_path, small_fake_inception, batch_size=4)
    generator = Generator(config.model).build_for_config()
    first = evaluator(generator, 2)
    assert first["step"] == 2 and first["num_samples"] == 8
    assert first["protocol"] == "standard" and first["comparable"] is False  # 8 samples, not 50,000
    assert np.isfinite(first["fid"]) and first["fid"] > 0 and 1.0 <= first["inception_score"] <= 10.0
    statistics_files = os.listdir(tmp_path / "evaluation" / "real_statistics")
    assert len(statistics_files) == 1
    path = tmp_path / "evaluation" / "real_statistics" / statistics_files[0]
    modified = os.path.getmtime(path)
    second = evaluator(generator, 4)
    assert os.path.getmtime(path) == modified
    assert second["fid"] == pytest.approx(first["fid"], rel=1e-6)  # same seed, same weights
    provenance = metrics.ActivationStatistics.load(str(path)).provenance
    assert provenance["dataset"] == "builtin" and provenance["split"] == "validation"
    assert provenance["classifier"]["source"] == small_fake_inception
    json.dumps(first)  # plain JSON values, ready for summaries


def test_periodic_evaluator_loads_its_classifier_once_when_made(tmp_path, small_fake_inception):
    config = tiny_config(eval_every=2)
    with mock.patch.object(periodic, "load_evaluation_classifier",
                           wraps=classifiers.load_evaluation_classifier) as load:
        evaluator = periodic.make_periodic_evaluator(config, tmp_path, small_fake_inception, batch_size=4)
        assert load.call_count == 1  # before any training step
        evaluator(Generator(config.model).build_for_config(), 2)
        assert load.call_count == 1


def test_periodic_evaluator_with_a_bad_classifier_fails_when_made(tmp_path):
    # Training with --eval_every=N --inception=<bad> must fail before step 1, not after N steps.
    missing = str(tmp_path / "no_module")
    with pytest.raises(inception.InceptionUnavailableError, match="no such file") as error:
        periodic.make_periodic_evaluator(tiny_config(eval_every=5), tmp_path, missing)
    assert isinstance(error.value, OSError) and "\n" not in str(error.value)
    with pytest.raises(classifiers.EvaluationError, match="needs a cache_directory"):
        periodic.make_periodic_evaluator(tiny_config(eval_every=5), tmp_path, "builtin")
    # An evaluator that never runs does not load anything.
    periodic.make_periodic_evaluator(tiny_config(eval_every=0), tmp_path, missing)


def first_validation_images(count, offset=0):
    """Images offset .. offset + count - 1 of the built-in "validation" split, in order, at 32x32."""
    images = next(iter(datasets.make_dataset(
        "builtin", split="validation", image_size=32, batch_size=count + offset, shuffle=False, repeat=False,
        num_examples=count + offset)))[0]
    return images[offset:]


def test_ylg_protocol_scores_the_first_validation_images_in_order_resized_the_legacy_way(
        tmp_path, small_fake_inception):
    # The config evaluates on "train"; the ylg protocol takes the validation split, as the YLG code did.
    config = tiny_config().replace(data={"eval_split": "train"})
    directory = tmp_path / "workdir"
    workdirs.save_config(config, directory)
    workdirs.write_checkpoint(directory, Generator(config.model).build_for_config(),
                              Discriminator(config.model).build_for_config(), 3)
    messages = []
    result = evaluate.evaluate_workdir(
        directory, protocol="ylg", num_samples=8, batch_size=4, classifier_source=small_fake_inception,
        log=messages.append)
    assert result["split"] == "validation" and result["num_samples"] == 8
    assert result["protocol"] == protocols.YLG.to_dict()
    assert result["classifier"]["resize"] == classifiers.RESIZE_LEGACY_BILINEAR_299
    assert result["comparable"] is False
    assert result["deviations"] == ["num_samples=8 is below the ylg protocol's 32768"]
    warnings = [message for message in messages if message.startswith("warning:")]
    assert warnings == ["warning: scores not comparable with the YLG paper's scores: num_samples=8 is below "
                        "the ylg protocol's 32768"]

    # The real statistics are those of the first 8 validation images, legacy-resized to 299 before the module.
    module = tf.saved_model.load(small_fake_inception)

    def pool_mean(images):
        resized = tf.constant(legacy_bilinear_reference(images, 299), tf.float32)
        return np.asarray(module(resized)["pool_3"], np.float64).mean(axis=0)

    statistics = metrics.ActivationStatistics.load(result["real_statistics"]["path"])
    np.testing.assert_allclose(statistics.mean, pool_mean(first_validation_images(8)), rtol=1e-4, atol=1e-5)
    # Another choice of images would be seen: one image later, or the config's own split.
    assert not np.allclose(statistics.mean, pool_mean(first_validation_images(8, offset=1)), rtol=1e-3)
    train_images = next(iter(datasets.make_dataset(
        "builtin", split="train", image_size=32, batch_size=8, shuffle=False, repeat=False, num_examples=8)))[0]
    assert not np.allclose(statistics.mean, pool_mean(train_images), rtol=1e-3)


def test_periodic_evaluation_follows_the_configs_protocol(tmp_path, small_fake_inception):
    config = tiny_config(eval_every=2).replace(
        training={"eval_protocol": "ylg", "eval_num_samples": 8}, data={"eval_split": "train"})
    evaluator = periodic.make_periodic_evaluator(config, tmp_path, small_fake_inception, batch_size=4)
    assert evaluator.split == "validation"
    assert evaluator.classifier.description["resize"] == classifiers.RESIZE_LEGACY_BILINEAR_299
    scores = evaluator(Generator(config.model).build_for_config(), 2)
    assert scores["protocol"] == "ylg" and scores["comparable"] is False


# ----------------------------------------------------------------------------------------------
# Result files and progress.


def example_result(step):
    return {"fid": 12.3456, "inception_score": 3.21, "num_samples": 64, "step": step,
            "saved_model": None if step is not None else "/runs/a/export", "inception": "builtin",
            "classifier": {"held_out_accuracy": 0.987}, "workdir": "ram://unused"}


def test_result_paths_summary_and_writing_to_any_filesystem():
    workdir = f"ram://results-{uuid.uuid4().hex}"
    result = dict(example_result(7), workdir=workdir)
    assert evaluate.default_result_path(result) == f"{workdir}/evaluation/step_7.json"
    assert evaluate.default_result_path(dict(example_result(None), workdir=workdir)) == (
        f"{workdir}/evaluation/export.json")
    written = evaluate.write_result(result)
    with tf.io.gfile.GFile(written) as file:
        assert json.loads(file.read()) == result
    assert tf.io.gfile.listdir(f"{workdir}/evaluation") == ["step_7.json"]
    assert evaluate.result_summary(result) == (
        "FID 12.3456  IS 3.2100  (64 samples, step 7, classifier builtin, classifier held-out accuracy 0.987)")
    assert "export /runs/a/export" in evaluate.result_summary(example_result(None))


class FakeClock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_progress_line_reports_each_tenth_with_rate_and_time_left():
    stream, clock = io.StringIO(), FakeClock()
    report = progress.ProgressLine(stream, clock=clock)
    assert not report.interactive
    for done in range(0, 101, 5):
        report("generated", done, 100)
        clock.now += 0.5  # 10 images per second
    lines = stream.getvalue().splitlines()
    assert len(lines) == 11  # 0%, then once per tenth
    assert lines[0] == "generated images: 0/100 (0%)"
    assert lines[5] == "generated images: 50/100 (50%), 10.0 images/s, 5 s left"
    assert lines[-1] == "generated images: 100/100 (100%), 10.0 images/s, 0 s left"
    # A new phase measures its rate afresh.
    report("real", 10, 20)
    assert stream.getvalue().splitlines()[-1] == "real images: 10/20 (50%)"
    with pytest.raises(ValueError, match="total must be positive"):
        report("real", 0, 0)


def test_progress_line_rewrites_one_line_on_a_terminal():
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    stream = Terminal()
    report = progress.ProgressLine(stream, clock=FakeClock())
    for done in (1, 2, 3):
        report("real", done, 3)
    assert stream.getvalue() == ("\rreal images: 1/3 (33%)\rreal images: 2/3 (67%)\rreal images: 3/3 (100%)\n")
