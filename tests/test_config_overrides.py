"""ylg_tf.config_overrides: every config field set from text by its dotted name, values parsed by the field's
type, JSON config files; and the one-line preset list (ylg_tf.config.PRESET_DESCRIPTIONS)."""

import dataclasses
import json

import pytest

from ylg_tf import config_overrides
from ylg_tf.config import PRESET_DESCRIPTIONS, PRESETS, ExperimentConfig, ModelConfig, get_preset
from ylg_tf.config_overrides import ConfigOverrideError, Override, apply_overrides

BASE = get_preset("test")

# A text for every field of every section and the value it must give, each unlike the test preset's; the
# set as a whole is one valid config (residual blocks need attention "none"; 64x64 has G 8..64, D 4..32).
EVERY_FIELD = {
    "model.image_size": ("64", 64),
    "model.num_classes": (" 7 ", 7),
    "model.z_dim": ("16", 16),
    "model.generator_channels": ("8", 8),
    "model.discriminator_channels": ("1_6", 16),
    "model.attention": ("none", "none"),
    "model.attention_geometry": ("aligned", "aligned"),
    "model.attention_implementation": ("dense", "dense"),
    "model.generator_attention_resolutions": ("16,64", (16, 64)),
    "model.discriminator_attention_resolutions": ("[4, 32]", (4, 32)),
    "model.attention_block": ("residual", "residual"),
    "model.generator_spectral_norm": ("False", False),
    "model.batch_norm_decay": ("0.95", 0.95),
    "model.precision": ("mixed_bfloat16", "mixed_bfloat16"),
    "training.batch_size": ("8", 8),
    "training.train_steps": ("1_000", 1000),
    "training.generator_learning_rate": ("2e-4", 2e-4),
    "training.discriminator_learning_rate": ("3e-4", 3e-4),
    "training.beta_1": ("0.5", 0.5),
    "training.beta_2": ("0.9", 0.9),
    "training.epsilon": ("1e-6", 1e-6),
    "training.steps_per_loop": ("3", 3),
    "training.checkpoint_every": ("6", 6),
    "training.eval_every": ("5", 5),
    "training.eval_num_samples": ("64", 64),
    "training.eval_protocol": ("ylg", "ylg"),
    "training.generator_ema_decay": ("0.999", 0.999),
    "training.discriminator_steps": ("2", 2),
    "training.learning_rate_decay_steps": ("250", 250),
    "training.seed": ("7", 7),
    "data.dataset": ("cifar10", "cifar10"),
    "data.split": ("test", "test"),
    "data.eval_split": ("validation", "validation"),
    "data.data_dir": ("/data/tfds", "/data/tfds"),
}


def _value(config, path):
    section, name = path.split(".")
    return getattr(getattr(config, section), name)


def _overrides(**texts):
    """Override values from keyword arguments such as model__image_size="48" (section__field)."""
    return [Override(key.replace("__", "."), text, f"--config.{key.replace('__', '.')}") for key, text in texts.items()]


def test_the_fields_are_every_dataclass_field_of_every_section():
    expected = [
        f"{section.name}.{field.name}"
        for section in dataclasses.fields(ExperimentConfig)
        for field in dataclasses.fields(section.type)
    ]
    assert [field.path for field in config_overrides.config_fields()] == expected
    assert sorted(EVERY_FIELD) == sorted(expected)  # a new field needs a line in EVERY_FIELD


def test_every_field_of_every_section_is_set_from_text_with_its_type():
    overrides = [Override(path, text, f"--config.{path}") for path, (text, _) in EVERY_FIELD.items()]
    config = apply_overrides(BASE, overrides)
    for path, (_, expected) in EVERY_FIELD.items():
        assert _value(BASE, path) != expected, f"{path}: pick a value unlike the test preset's"
        value = _value(config, path)
        assert value == expected and type(value) is type(expected), (path, value)
    # A field not named keeps the base's value; the base is not changed.
    assert apply_overrides(BASE, []) == BASE
    assert apply_overrides(BASE, _overrides(training__seed="3")) == BASE.replace(training={"seed": 3})


@pytest.mark.parametrize(
    "path, text, expected",
    [
        ("model.generator_spectral_norm", "true", True),
        ("model.generator_spectral_norm", "YES", True),
        ("model.generator_spectral_norm", "1", True),
        ("model.generator_spectral_norm", "no", False),
        ("model.generator_spectral_norm", "0", False),
        ("model.generator_attention_resolutions", "none", None),
        ("model.generator_attention_resolutions", "None", None),
        ("model.generator_attention_resolutions", "32", (32,)),
        ("model.generator_attention_resolutions", "(8, 16)", (8, 16)),
        ("training.generator_learning_rate", "1", 1.0),
        ("training.train_steps", "+12", 12),
        ("data.data_dir", "", ""),
        ("data.data_dir", "none", "none"),  # None only where the field allows it
    ],
)
def test_spellings_each_type_accepts(path, text, expected):
    value = _value(apply_overrides(BASE, [Override(path, text, "origin")]), path)
    assert value == expected and type(value) is type(expected)


@pytest.mark.parametrize(
    "path, text, kind",
    [
        ("training.train_steps", "abc", "an integer"),
        ("training.train_steps", "2.0", "an integer"),
        ("training.batch_size", "", "an integer"),
        ("training.beta_2", "fast", "a finite number"),
        ("training.beta_2", "nan", "a finite number"),
        ("training.generator_learning_rate", "inf", "a finite number"),
        ("model.generator_spectral_norm", "maybe", "true or false"),
        ("model.discriminator_attention_resolutions", "8,x", "comma-separated integers (e.g. 16,64) or none"),
        ("model.image_size", "none", "an integer"),  # not optional
    ],
)
def test_a_bad_value_names_the_origin_the_value_and_what_the_field_takes(path, text, kind):
    with pytest.raises(ConfigOverrideError) as raised:
        apply_overrides(BASE, [Override(path, text, f"--config.{path}")])
    assert str(raised.value) == f"--config.{path}={text!r}: {path} takes {kind}"


def test_a_value_of_the_right_type_out_of_range_fails_in_the_config_own_checks():
    with pytest.raises(ValueError, match=r"^image_size=48 is not supported; choose one of \(32, 64, 128\)$"):
        apply_overrides(BASE, _overrides(model__image_size="48"))
    with pytest.raises(ValueError, match=r"generator_ema_decay=1.0 must be in \[0, 1\)"):
        apply_overrides(BASE, _overrides(training__generator_ema_decay="1"))
    with pytest.raises(ValueError, match="has no 64x64 feature map; choose from"):
        apply_overrides(BASE, _overrides(model__generator_attention_resolutions="16,64"))


@pytest.mark.parametrize(
    "path, named",
    [
        ("training.generator_ema_decy", "did you mean training.generator_ema_decay"),
        ("trainin.batch_size", "did you mean training.batch_size?"),
        ("training.image_size", "did you mean model.image_size?"),  # the same name in another section
        ("data.zzz", "the data fields are dataset, split, eval_split, data_dir"),
        ("optimizer.zzz", "a field is SECTION.NAME with SECTION one of model, training, data"),
        ("batch_size", "did you mean training.batch_size?"),
        ("training.zzz", "the training fields are batch_size, train_steps, generator_learning_rate,"),
    ],
)
def test_an_unknown_field_names_it_and_the_close_or_allowed_names(path, named):
    with pytest.raises(ConfigOverrideError) as raised:
        apply_overrides(BASE, [Override(path, "1", f"--config.{path}")])
    message = str(raised.value)
    assert message.startswith(f"--config.{path}: the config has no field {path!r}; ") and named in message
    assert "\n" not in message


def test_a_field_set_twice_is_refused_naming_both():
    overrides = [Override("training.train_steps", "4", "--train_steps"),
                 Override("training.train_steps", "4", "--config.training.train_steps")]
    with pytest.raises(ConfigOverrideError) as raised:
        apply_overrides(BASE, overrides)
    assert str(raised.value) == (
        "training.train_steps is set twice, by --train_steps='4' and by --config.training.train_steps='4'; give it once"
    )


def test_describe_type_refuses_a_type_it_cannot_parse():
    with pytest.raises(TypeError, match="cannot be set from text"):
        config_overrides.describe_type(dict)


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_round_trips_through_its_json(name):
    config = get_preset(name)
    assert config_overrides.config_from_json(config.to_json(), "file") == config


def test_a_partial_json_config_keeps_the_dataclass_defaults():
    config = config_overrides.config_from_json('{"training": {"generator_ema_decay": 0.999, "beta_1": 0}}', "f")
    assert config == ExperimentConfig().replace(training={"generator_ema_decay": 0.999})
    assert type(config.training.beta_1) is float
    resolutions = config_overrides.config_from_json('{"model": {"generator_attention_resolutions": [16, 32]}}', "f")
    assert resolutions.model == ModelConfig(generator_attention_resolutions=(16, 32))


@pytest.mark.parametrize(
    "values, message",
    [
        ({"training": {"batch_size": "8"}}, 'f: training.batch_size is "8", but it takes an integer'),
        ({"training": {"batch_size": True}}, "f: training.batch_size is true, but it takes an integer"),
        ({"training": {"batch_size": 8.0}}, "f: training.batch_size is 8.0, but it takes an integer"),
        ({"training": {"beta_1": "0"}}, 'f: training.beta_1 is "0", but it takes a finite number'),
        ({"model": {"generator_spectral_norm": 1}}, "f: model.generator_spectral_norm is 1, but it takes true or false"),
        ({"model": {"generator_attention_resolutions": [16, "32"]}},
         'f: model.generator_attention_resolutions is [16, "32"], but it takes comma-separated integers (e.g. 16,64) '
         "or none"),
        ({"data": {"dataset": None}}, "f: data.dataset is null, but it takes a string"),
        ({"training": {"bach_size": 8}}, "f: the config has no field 'training.bach_size'; did you mean training.batch_size?"),
        ({"optimizer": {}}, "f: the config has no section 'optimizer'; the sections are model, training, data"),
        ({"model": {"image_size": 48}}, "f: image_size=48 is not supported; choose one of (32, 64, 128)"),
        ([1, 2], "f: a config file is a JSON object of sections (model, training, data), each an object of fields, "
                 "as a work directory's config.json"),
    ],
)
def test_a_bad_json_config_names_the_file_the_field_and_what_it_takes(values, message):
    with pytest.raises(ConfigOverrideError) as raised:
        config_overrides.config_from_json(json.dumps(values), "f")
    assert str(raised.value) == message


def test_load_config_file_reads_a_work_directory_config_and_names_bad_paths(tmp_path):
    config = get_preset("demo").replace(training={"generator_ema_decay": 0.999})
    (tmp_path / "config.json").write_text(config.to_json())
    assert config_overrides.load_config_file(str(tmp_path / "config.json"), "--config_file") == config
    with pytest.raises(ConfigOverrideError, match=r"^--config_file='.*missing.json': no such file$"):
        config_overrides.load_config_file(str(tmp_path / "missing.json"), "--config_file")
    with pytest.raises(ConfigOverrideError, match="is a directory; name its config.json"):
        config_overrides.load_config_file(str(tmp_path), "--config_file")
    (tmp_path / "broken.json").write_text('{"model": ')
    with pytest.raises(ConfigOverrideError, match=r"^--config_file='.*broken.json': not valid JSON \("):
        config_overrides.load_config_file(str(tmp_path / "broken.json"), "--config_file")


def test_every_preset_has_one_line_of_description():
    assert list(PRESET_DESCRIPTIONS) == list(PRESETS)
    for name, line in PRESET_DESCRIPTIONS.items():
        assert line.strip() == line and "\n" not in line and 10 < len(line) <= 100, name
