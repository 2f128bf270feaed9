"""ylg_tf.evaluation.protocols: the named protocols' parameters, their names shared with the config, and
what makes an evaluation not comparable with its protocol."""

import dataclasses

import pytest

from ylg_tf import config
from ylg_tf.evaluation import protocols, resizing
from ylg_tf.evaluation.classifiers import EvaluationError


def test_the_protocols_hold_what_the_originals_did():
    ylg = protocols.get_protocol("ylg")
    # giannisdaras/ylg train: 32 eval steps of 1024, the validation split, TF1's bilinear resize to 299.
    assert (ylg.num_samples, ylg.split, ylg.resize) == (32 * 1024, "validation", "legacy_bilinear_299")
    assert (ylg.image_dtype, ylg.inception_score_splits) == ("float32", 1)
    standard = protocols.get_protocol("standard")
    assert (standard.num_samples, standard.split, standard.resize) == (50_000, None, resizing.RESIZE_BY_MODULE)
    assert protocols.DEFAULT_PROTOCOL == "standard"
    assert tuple(protocols.PROTOCOLS) == config.EVALUATION_PROTOCOLS
    assert protocols.get_protocol(ylg) is ylg
    with pytest.raises(dataclasses.FrozenInstanceError):
        ylg.num_samples = 10
    assert ylg.to_dict()["num_samples"] == 32768 and set(ylg.to_dict()) == {
        field.name for field in dataclasses.fields(protocols.EvaluationProtocol)}


def test_unknown_names_are_errors_naming_the_value():
    with pytest.raises(EvaluationError,
                       match=r"unknown evaluation protocol 'bogus'; choose one of \['standard', 'ylg'\]"):
        protocols.get_protocol("bogus")
    with pytest.raises(ValueError, match="eval_protocol='bogus' is not one of"):
        config.TrainingConfig(eval_protocol="bogus")
    with pytest.raises(ValueError, match="resize method 'nearest'"):
        dataclasses.replace(protocols.YLG, resize="nearest")


def test_deviations_list_each_difference_and_none_when_the_protocol_is_followed():
    ylg = protocols.YLG
    followed = dict(num_samples=32768, split="validation", resize="legacy_bilinear_299")
    assert protocols.deviations(ylg, **followed) == []
    assert protocols.not_comparable_warning(ylg, []) is None
    assert protocols.deviations(ylg, **{**followed, "num_samples": 1000}) == [
        "num_samples=1000 is below the ylg protocol's 32768"]
    assert protocols.deviations(ylg, **{**followed, "num_samples": 50000}) == [
        "num_samples=50000 is above the ylg protocol's 32768"]
    assert protocols.deviations(ylg, **{**followed, "split": "train", "resize": "bilinear_299"}) == [
        "real images from split 'train', not 'validation'", "resize 'bilinear_299', not 'legacy_bilinear_299'"]
    assert protocols.deviations(ylg, **followed, classifier_kind="builtin", quantised_images=True) == [
        "classifier 'builtin', not Inception",
        "generated images quantised to uint8 (an exported generator), not float32"]
    # The standard protocol takes any split (the config's evaluation split).
    assert protocols.deviations(protocols.STANDARD, num_samples=50000, split="test", resize="module") == []
    warning = protocols.not_comparable_warning(ylg, ["a", "b"])
    assert warning == "warning: scores not comparable with the YLG paper's scores: a; b" and "\n" not in warning


def test_ylg_presets_are_scored_with_the_ylg_protocol_and_others_with_the_standard_one():
    ylg_rows = ("sagan", "sagan_8heads", "ylg", "ylg_no_esa", "ylg_strided", "ylg_feat64")
    for name, preset in config.PRESETS.items():
        expected = "ylg" if name in ylg_rows else "standard"
        assert preset.training.eval_protocol == expected, name
        # The ImageNet paper rows evaluate periodically by default (YLG's cadence, or SAGAN's 50k samples).
        paper = preset.data.dataset == "imagenet2012"
        expected_every = (config.YLG_EVAL_EVERY if name in ylg_rows else config.SAGAN_EVAL_EVERY) if paper else 0
        assert preset.training.eval_every == expected_every, name
    for name in ylg_rows:
        assert config.PRESETS[name].training.eval_num_samples == protocols.YLG.num_samples, name
