"""The original-code checkpoint fixture, rebuilt from its fill rule so that a plain clone carries it.

The fixture in tests/fixtures/ylg_original_small was made by running the unmodified YLG code (see
tests/fixtures/README.md). Its 47 MB checkpoint data file is not committed: every value in it follows the
fill rule recorded with the fixture (`weight_fill` in fixture.json, one rule per key in the last column of
variables.txt), so the tests write the checkpoint again from that rule and compare every rebuilt tensor with
the per-tensor checksums taken once from the real checkpoint (tensor_checksums.json). A rebuild that drifts
from the original (another numpy stream, another rule, another dtype) therefore fails, naming the key,
instead of silently testing against different weights.

A fixture directory that already holds the real checkpoint (`<prefix>.index` and its data files, e.g. the
shared copy the fixture came from) is used as it is; nothing is rebuilt.

As a script (from the repository root):
    python tests/original_fixture.py checksums ../shared/fixtures/ylg_original_small/model.ckpt-1234 \
        tests/fixtures/ylg_original_small/tensor_checksums.json
writes the checksums of a real checkpoint (how the committed file was made), and
    python tests/original_fixture.py rebuild tests/fixtures/ylg_original_small OUTPUT_DIRECTORY
writes the rebuilt checkpoint into OUTPUT_DIRECTORY and checks it.
"""

import argparse
import hashlib
import json
import pathlib
import re
import shutil

import numpy as np

DESCRIPTION_FILE = "fixture.json"
VARIABLE_TABLE_FILE = "variables.txt"
CHECKSUMS_FILE = "tensor_checksums.json"
CHECKPOINT_STATE_FILE = "checkpoint"

_NUMBER = r"[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?"
_RANDOM_RULE = re.compile(
    rf"^(?P<kind>\w+)\s*~\s*(?:(?P<offset>{_NUMBER})\s*\+\s*)?"
    rf"(?P<distribution>[A-Za-z]+)\(\s*(?P<first>{_NUMBER})\s*,\s*(?P<second>{_NUMBER})\s*\)$"
)
_CONSTANT_RULE = re.compile(rf"^(?P<kind>\w+)\s*=\s*(?P<value>{_NUMBER})$")
# The distributions the fill rule names, as numpy RandomState draws (float64): N(mean, std), U(low, high).
_DISTRIBUTIONS = {
    "N": lambda rng, mean, std, shape: rng.normal(mean, std, shape),
    "U": lambda rng, low, high, shape: rng.uniform(low, high, shape),
}


class FixtureFileMissing(FileNotFoundError):
    """A file the fixture layout needs is absent; the message names its path."""


def _require_file(path):
    if not path.is_file():
        raise FixtureFileMissing(f"missing fixture file {path}")
    return path


def parse_fill_rule(rule):
    """The rule text of variables.txt as a function (rng, shape, dtype) -> array.

    Parsed generically, not matched against a list of today's rules, so that another fixture with other
    parameters rebuilds too; anything not of the form `kind ~ [offset+]N(mean,std)`, `kind ~
    [offset+]U(low,high)` or `kind=value` is refused, because guessing would rebuild different weights.
    Random draws are float64 from the shared stream, offset added, then cast (the fixture's recorded order);
    a constant consumes no draws.
    """
    random_rule = _RANDOM_RULE.match(rule.strip())
    if random_rule:
        distribution = random_rule["distribution"]
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(
                f"unknown distribution {distribution!r} in fill rule {rule!r} (known: {', '.join(_DISTRIBUTIONS)})"
            )
        draw = _DISTRIBUTIONS[distribution]
        first, second = float(random_rule["first"]), float(random_rule["second"])
        offset = float(random_rule["offset"]) if random_rule["offset"] is not None else 0.0

        def fill(rng, shape, dtype):
            return (offset + draw(rng, first, second, tuple(shape))).astype(dtype)

        return fill
    constant_rule = _CONSTANT_RULE.match(rule.strip())
    if constant_rule:
        text = constant_rule["value"]
        value = int(text) if re.fullmatch(r"[-+]?\d+", text) else float(text)

        def fill(rng, shape, dtype):
            return np.full(tuple(shape), value, dtype=dtype)

        return fill
    raise ValueError(
        f"unknown fill rule {rule!r}: expected 'kind ~ [offset+]N(mean,std)', "
        "'kind ~ [offset+]U(low,high)' or 'kind=value'"
    )


def read_variable_table(fixture_directory):
    """[(checkpoint key, shape, dtype name, fill rule)] from variables.txt, checked against fixture.json.

    Every rule must be one listed in fixture.json's `weight_fill.rules` and the key count must match
    `checkpoint.n_variables`, so a damaged or hand-edited table fails here rather than as a checksum.
    """
    fixture_directory = pathlib.Path(fixture_directory)
    description = json.loads(_require_file(fixture_directory / DESCRIPTION_FILE).read_text())
    table_path = _require_file(fixture_directory / VARIABLE_TABLE_FILE)
    listed_rules = set(description["weight_fill"]["rules"])
    rows = []
    for number, line in enumerate(table_path.read_text().splitlines(), start=1):
        if not line.strip() or line.startswith("#"):
            continue
        fields = line.split("\t")
        if len(fields) != 5:
            raise ValueError(f"{table_path}:{number}: expected 5 tab-separated fields, got {len(fields)}")
        key, shape_text, dtype_name, _, rule = fields
        if rule not in listed_rules:
            raise ValueError(f"{table_path}:{number}: rule {rule!r} of {key} is not in {DESCRIPTION_FILE} weight_fill")
        shape = json.loads(shape_text)
        if not isinstance(shape, list) or not all(isinstance(size, int) and size >= 0 for size in shape):
            raise ValueError(f"{table_path}:{number}: shape {shape_text!r} of {key} is not a list of sizes")
        rows.append((key, shape, np.dtype(dtype_name).name, rule))
    keys = [row[0] for row in rows]
    if len(set(keys)) != len(keys):
        raise ValueError(f"{table_path} lists a key twice")
    expected_count = description["checkpoint"]["n_variables"]
    if len(rows) != expected_count:
        raise ValueError(f"{table_path} lists {len(rows)} keys; {DESCRIPTION_FILE} says {expected_count}")
    return rows


def fill_values(fixture_directory):
    """{checkpoint key: array} following the fill rule: one RandomState(weight_seed) stream, sorted keys."""
    fixture_directory = pathlib.Path(fixture_directory)
    description = json.loads(_require_file(fixture_directory / DESCRIPTION_FILE).read_text())
    rng = np.random.RandomState(description["config"]["weight_seed"])
    values = {}
    for key, shape, dtype_name, rule in sorted(read_variable_table(fixture_directory)):
        try:
            fill = parse_fill_rule(rule)
        except ValueError as error:
            raise ValueError(f"{key}: {error}") from None
        values[key] = fill(rng, shape, dtype_name)
    return values


def checkpoint_prefix_in(fixture_directory):
    """The checkpoint prefix fixture.json names, inside `fixture_directory`."""
    fixture_directory = pathlib.Path(fixture_directory)
    description = json.loads(_require_file(fixture_directory / DESCRIPTION_FILE).read_text())
    return fixture_directory / description["checkpoint"]["prefix"]


def holds_checkpoint(prefix):
    """Whether `prefix` has its index and every data shard the shard names promise (the real thing)."""
    prefix = pathlib.Path(prefix)
    index = pathlib.Path(f"{prefix}.index")
    shards = sorted(prefix.parent.glob(f"{prefix.name}.data-?????-of-?????"))
    if not index.is_file() or not shards:
        return False
    count = int(shards[0].name.rsplit("-of-", 1)[1])
    return len(shards) == count


def write_checkpoint(values, prefix, state_file):
    """Writes `values` as a V2 (TF1 Saver format) checkpoint at `prefix`, and the `checkpoint` state file.

    tf.raw_ops.SaveV2 is the op tf.compat.v1.train.Saver runs, so the files are the same format with exactly
    these keys (no object graph, no extra variables) on every TensorFlow version the tests run on. The state
    file is the fixture's own copy, so tf.train.latest_checkpoint(directory) finds the prefix.
    """
    import tensorflow as tf  # loaded here: conftest imports this module, and mask tests need no TensorFlow

    prefix = pathlib.Path(prefix)
    prefix.parent.mkdir(parents=True, exist_ok=True)
    keys = sorted(values)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=keys,
        shape_and_slices=[""] * len(keys),
        tensors=[tf.constant(values[key]) for key in keys],
    )
    shutil.copyfile(state_file, prefix.parent / CHECKPOINT_STATE_FILE)
    found = tf.train.latest_checkpoint(str(prefix.parent))
    if found is None or pathlib.Path(found) != prefix:
        raise RuntimeError(f"state file {state_file} points at {found}, not the rebuilt checkpoint {prefix}")


def tensor_checksums(prefix):
    """{key: {dtype, shape, sha256 of the tensor's bytes in C order}} of the checkpoint at `prefix`."""
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(prefix))
    declared = reader.get_variable_to_dtype_map()
    checksums = {}
    for key in sorted(declared):
        value = np.asarray(reader.get_tensor(key))
        if value.dtype.name != declared[key].name:
            raise ValueError(f"{key}: read as {value.dtype.name} but declared {declared[key].name}")
        checksums[key] = dict(
            dtype=value.dtype.name,
            shape=list(value.shape),
            sha256=hashlib.sha256(np.ascontiguousarray(value).tobytes()).hexdigest(),
        )
    return checksums


def write_tensor_checksums(prefix, output_path):
    """Writes the checksums of the real checkpoint at `prefix` to `output_path` (done once; the file is data)."""
    document = dict(
        source=str(prefix),
        made_by="python tests/original_fixture.py checksums <prefix> <output>",
        meaning="per checkpoint key: dtype, shape and sha256 of the tensor's bytes in C order",
        tensors=tensor_checksums(prefix),
    )
    pathlib.Path(output_path).write_text(json.dumps(document, indent=1, sort_keys=True) + "\n")


def check_against_checksums(prefix, checksums_path):
    """Fails (AssertionError) unless the checkpoint at `prefix` has exactly the keys of `checksums_path`,
    each with the recorded dtype, shape and sha256; the message names every key that differs."""
    expected = json.loads(_require_file(pathlib.Path(checksums_path)).read_text())["tensors"]
    actual = tensor_checksums(prefix)
    problems = [f"{key}: missing" for key in sorted(set(expected) - set(actual))]
    problems += [f"{key}: not in the checksums" for key in sorted(set(actual) - set(expected))]
    for key in sorted(set(expected) & set(actual)):
        for field in ("dtype", "shape", "sha256"):
            if actual[key][field] != expected[key][field]:
                problems.append(f"{key}: {field} {actual[key][field]} != {expected[key][field]}")
    if problems:
        listed = "\n  ".join(problems[:20]) + (f"\n  ... {len(problems) - 20} more" if len(problems) > 20 else "")
        raise AssertionError(f"checkpoint {prefix} differs from {checksums_path} in {len(problems)} ways:\n  {listed}")


def rebuild_checkpoint(fixture_directory, rebuild_directory):
    """Writes the fixture's checkpoint from its fill rule into `rebuild_directory`, checks it, returns the prefix."""
    fixture_directory = pathlib.Path(fixture_directory)
    checksums_path = _require_file(fixture_directory / CHECKSUMS_FILE)
    state_file = _require_file(fixture_directory / CHECKPOINT_STATE_FILE)
    prefix = pathlib.Path(rebuild_directory) / checkpoint_prefix_in(fixture_directory).name
    write_checkpoint(fill_values(fixture_directory), prefix, state_file)
    check_against_checksums(prefix, checksums_path)
    return str(prefix)


def prepare_checkpoint(fixture_directory, rebuild_directory):
    """The prefix of the fixture's checkpoint: the real one if `fixture_directory` holds it, else a rebuild.

    A real checkpoint is used as it is (checked against tensor_checksums.json when the directory has one; a
    directory with the real checkpoint needs none, as it is the reference). Otherwise the checkpoint is
    rebuilt into `rebuild_directory`, which should belong to one process (pytest-xdist workers rebuild side
    by side), and checked against the checksums, which are then required.
    """
    fixture_directory = pathlib.Path(fixture_directory)
    prefix = checkpoint_prefix_in(fixture_directory)
    if holds_checkpoint(prefix):
        checksums_path = fixture_directory / CHECKSUMS_FILE
        if checksums_path.is_file():
            check_against_checksums(prefix, checksums_path)
        return str(prefix)
    return rebuild_checkpoint(fixture_directory, rebuild_directory)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    checksums = commands.add_parser("checksums", help="write the per-tensor checksums of a real checkpoint")
    checksums.add_argument("prefix")
    checksums.add_argument("output")
    rebuild = commands.add_parser("rebuild", help="rebuild a fixture's checkpoint and check it")
    rebuild.add_argument("fixture_directory")
    rebuild.add_argument("output_directory")
    arguments = parser.parse_args()
    if arguments.command == "checksums":
        write_tensor_checksums(arguments.prefix, arguments.output)
        print(f"wrote {arguments.output}")
    else:
        print(rebuild_checkpoint(arguments.fixture_directory, arguments.output_directory))


if __name__ == "__main__":
    main()
