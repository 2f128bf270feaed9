"""ylg_tf.evaluation.periodic: the evaluator training calls, its real-statistics reuse, its classifier
loaded once and checked when it is made."""

import json
import os
from unittest import mock

import numpy as np
import pytest

from evaluation_doubles import tiny_config
from fake_inception import write_fake_inception_savedmodel
from ylg_tf.evaluation import classifiers, periodic
from ylg_tf.evaluation import inception
from ylg_tf.evaluation import metrics
from ylg_tf.models.networks import Generator


@pytest.fixture(scope="module")
def small_fake_inception(tmp_path_factory):
    return str(write_fake_inception_savedmodel(
        tmp_path_factory.mktemp("fake") / "module", resize_inside=True, pool_features=32, num_logits=10))


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


def test_periodic_evaluation_follows_the_configs_protocol(tmp_path, small_fake_inception):
    config = tiny_config(eval_every=2).replace(
        training={"eval_protocol": "ylg", "eval_num_samples": 8}, data={"eval_split": "train"})
    evaluator = periodic.make_periodic_evaluator(config, tmp_path, small_fake_inception, batch_size=4)
    assert evaluator.split == "validation"
    assert evaluator.classifier.description["resize"] == classifiers.RESIZE_LEGACY_BILINEAR_299
    scores = evaluator(Generator(config.model).build_for_config(), 2)
    assert scores["protocol"] == "ylg" and scores["comparable"] is False
