"""A config from command-line text: every field by its dotted name (`training.batch_size`), values parsed by
the field's type, and JSON config files (the format of a work directory's config.json).

Nothing here knows about flags. An entry point hands in `Override(path, text, origin)` values, where `origin`
says how the user wrote it (e.g. "--config.training.batch_size"); every error names the origin, the value
and what is allowed (close field names for an unknown one). Values by the field's annotation:
  int                      "8", "1_000_000"
  float                    "2e-4", "0.999" (finite)
  bool                     "true" / "false" (also 1 / 0, yes / no; any case)
  str                      the text as given ("" included)
  Optional[Tuple[int,...]] "16,64", "(16, 64)", "[32]" or "none"
"""

import dataclasses
import difflib
import json
import math
import typing

from ylg_tf.config import ExperimentConfig

NONE_TEXTS = ("none", "null")
TRUE_TEXTS = ("true", "yes", "1")
FALSE_TEXTS = ("false", "no", "0")


class ConfigOverrideError(ValueError):
    """A config field name, value or file that the config cannot take."""


@dataclasses.dataclass(frozen=True)
class ConfigField:
    """One field of one config section; `annotation` is its dataclass type."""

    section: str
    name: str
    annotation: object
    default: object

    @property
    def path(self):
        return f"{self.section}.{self.name}"


@dataclasses.dataclass(frozen=True)
class Override:
    """`path` = `text`, as written at `origin` (for messages, e.g. "--config.training.seed")."""

    path: str
    text: str
    origin: str


def config_fields():
    """Every field of every ExperimentConfig section, in declaration order."""
    return tuple(
        ConfigField(section.name, field.name, field.type, field.default)
        for section in dataclasses.fields(ExperimentConfig)
        for field in dataclasses.fields(section.type)
    )


def _fields_by_path():
    return {field.path: field for field in config_fields()}


def _optional(annotation):
    """(inner type, whether None is allowed) of an annotation such as Optional[Tuple[int, ...]]."""
    arguments = typing.get_args(annotation)
    if typing.get_origin(annotation) is typing.Union and type(None) in arguments:
        (inner,) = [argument for argument in arguments if argument is not type(None)]
        return inner, True
    return annotation, False


def _is_integer_tuple(annotation):
    return typing.get_origin(annotation) is tuple and typing.get_args(annotation) == (int, Ellipsis)


def describe_type(annotation):
    """What a field of this annotation takes, in words ("an integer", "comma-separated integers or none")."""
    inner, optional = _optional(annotation)
    if _is_integer_tuple(inner):
        words = "comma-separated integers (e.g. 16,64)"
    else:
        words = {int: "an integer", float: "a finite number", bool: "true or false", str: "a string"}.get(inner)
        if words is None:
            raise TypeError(f"config fields of type {annotation!r} cannot be set from text")
    return f"{words} or none" if optional else words


def _close_paths(path, fields):
    """Field paths that look like `path`: the same field name in another section; else similar names in the
    same section, or in the similarly spelt section when the section is unknown."""
    section, _, name = path.rpartition(".")
    same_name = [field.path for field in fields.values() if field.name == name]
    if same_name:
        return same_name
    names_by_section = {}
    for field in fields.values():
        names_by_section.setdefault(field.section, []).append(field.name)
    sections = difflib.get_close_matches(section, list(names_by_section), n=1, cutoff=0.6)
    return [
        f"{candidate}.{similar}"
        for candidate in sections
        for similar in difflib.get_close_matches(name, names_by_section[candidate], n=3, cutoff=0.7)
    ]


def unknown_field_message(path, origin):
    """The one-line message for a field path the config does not have, naming the close or allowed names."""
    fields = _fields_by_path()
    section = path.split(".", 1)[0]
    sections = [field.name for field in dataclasses.fields(ExperimentConfig)]
    close = _close_paths(path, fields)
    if close:
        allowed = f"did you mean {' or '.join(close)}?"
    elif section in sections:
        names = ", ".join(field.name for field in fields.values() if field.section == section)
        allowed = f"the {section} fields are {names}"
    else:
        allowed = f"a field is SECTION.NAME with SECTION one of {', '.join(sections)}"
    return f"{origin}: the config has no field {path!r}; {allowed}"


def find_field(path, origin):
    """The ConfigField at `path` ("training.batch_size"); ConfigOverrideError naming close names if none."""
    field = _fields_by_path().get(path)
    if field is None:
        raise ConfigOverrideError(unknown_field_message(path, origin))
    return field


def _integer(text):
    return int(text.strip())


def _number(text):
    value = float(text.strip())
    if not math.isfinite(value):
        raise ValueError(text)
    return value


def _truth(text):
    lowered = text.strip().lower()
    if lowered in TRUE_TEXTS:
        return True
    if lowered in FALSE_TEXTS:
        return False
    raise ValueError(text)


def _integer_tuple(text):
    inside = text.strip()
    if inside[:1] + inside[-1:] in ("()", "[]"):
        inside = inside[1:-1]
    return tuple(int(item) for item in inside.split(",") if item.strip())


def parse_value(field, text, origin):
    """`text` converted to the type of `field`; ConfigOverrideError naming the origin, value and type if not."""
    inner, optional = _optional(field.annotation)
    if optional and text.strip().lower() in NONE_TEXTS:
        return None
    if inner is str:
        return text
    parse = _integer_tuple if _is_integer_tuple(inner) else {int: _integer, float: _number, bool: _truth}[inner]
    try:
        return parse(text)
    except ValueError:
        raise ConfigOverrideError(
            f"{origin}={text!r}: {field.path} takes {describe_type(field.annotation)}"
        ) from None


def apply_overrides(config, overrides):
    """`config` with every Override applied (each field at most once); the config's own checks then run
    on the result, so a value of the right type but out of range fails as it would in code."""
    changes, given = {}, {}
    for override in overrides:
        field = find_field(override.path, override.origin)
        if field.path in given:
            first = given[field.path]
            raise ConfigOverrideError(
                f"{field.path} is set twice, by {first.origin}={first.text!r} and by "
                f"{override.origin}={override.text!r}; give it once"
            )
        given[field.path] = override
        changes.setdefault(field.section, {})[field.name] = parse_value(field, override.text, override.origin)
    return config.replace(**changes)


def _json_value(field, value, origin):
    """A value read from JSON, checked against the field's type (JSON has lists, not tuples)."""
    inner, optional = _optional(field.annotation)
    if value is None and optional:
        return None
    if _is_integer_tuple(inner):
        if isinstance(value, list) and all(isinstance(item, int) and not isinstance(item, bool) for item in value):
            return tuple(value)
    elif inner is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value):
            return float(value)
    elif isinstance(value, inner) and not (inner is int and isinstance(value, bool)):
        return value
    raise ConfigOverrideError(
        f"{origin}: {field.path} is {json.dumps(value)}, but it takes {describe_type(field.annotation)}"
    )


def config_from_json(text, origin):
    """The ExperimentConfig of a JSON text with config.json's layout ({"model": {...}, "training": {...},
    "data": {...}}); sections or fields left out keep the dataclass defaults. Every name and value is checked."""
    try:
        values = json.loads(text)
    except json.JSONDecodeError as error:
        raise ConfigOverrideError(f"{origin}: not valid JSON ({error})") from None
    sections = [field.name for field in dataclasses.fields(ExperimentConfig)]
    if not isinstance(values, dict) or not all(isinstance(value, dict) for value in values.values()):
        raise ConfigOverrideError(
            f"{origin}: a config file is a JSON object of sections ({', '.join(sections)}), each an object "
            "of fields, as a work directory's config.json"
        )
    unknown = [section for section in values if section not in sections]
    if unknown:
        raise ConfigOverrideError(
            f"{origin}: the config has no section {unknown[0]!r}; the sections are {', '.join(sections)}"
        )
    checked = {}
    for section, section_values in values.items():
        for name, value in section_values.items():
            field = find_field(f"{section}.{name}", origin)
            checked.setdefault(section, {})[name] = _json_value(field, value, origin)
    try:
        return ExperimentConfig.from_dict(checked)
    except ValueError as error:
        raise ConfigOverrideError(f"{origin}: {error}") from None


def load_config_file(path, origin):
    """The ExperimentConfig of the JSON file at `path` (any tf.io.gfile path, e.g. gs://.../config.json)."""
    import tensorflow as tf  # here, not at the top: entry points import this module before TensorFlow

    if not tf.io.gfile.exists(path):
        raise ConfigOverrideError(f"{origin}={path!r}: no such file")
    if tf.io.gfile.isdir(path):
        raise ConfigOverrideError(f"{origin}={path!r} is a directory; name its config.json")
    with tf.io.gfile.GFile(path, "r") as file:
        try:
            text = file.read()
        except UnicodeDecodeError:
            raise ConfigOverrideError(f"{origin}={path!r} is not a text file") from None
    return config_from_json(text, f"{origin}={path!r}")
