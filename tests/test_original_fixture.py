"""The original-code checkpoint fixture that travels with the repository is rebuilt exactly.

These tests check the repository's own copy (tests/fixtures/ylg_original_small), whatever
YLG_ORIGINAL_FIXTURE says: they are about the data a plain clone carries, while the variable chooses what
the conformance tests run on. The reference is tensor_checksums.json, taken once from the real checkpoint.
"""

import hashlib
import json
import pathlib
import shutil

import numpy as np
import pytest
import tensorflow as tf

import original_fixture
from conftest import ORIGINAL_FIXTURE_VARIABLE, REPOSITORY_FIXTURE_DIRECTORY, original_checkpoint_prefix_for

FIXTURE_DIRECTORY = REPOSITORY_FIXTURE_DIRECTORY / "ylg_original_small"
SMALL_FILES = (
    original_fixture.DESCRIPTION_FILE,
    original_fixture.VARIABLE_TABLE_FILE,
    original_fixture.CHECKSUMS_FILE,
    original_fixture.CHECKPOINT_STATE_FILE,
    "golden.npz",
)


def file_states(directory):
    """{name: (size, mtime in ns, sha256)} of every file in `directory`, to tell whether anything was written."""
    return {
        path.name: (path.stat().st_size, path.stat().st_mtime_ns, hashlib.sha256(path.read_bytes()).hexdigest())
        for path in sorted(directory.iterdir())
    }


@pytest.fixture(scope="module")
def checksums():
    return json.loads((FIXTURE_DIRECTORY / original_fixture.CHECKSUMS_FILE).read_text())["tensors"]


@pytest.fixture(scope="module")
def rebuilt_prefix(tmp_path_factory):
    return original_checkpoint_prefix_for(FIXTURE_DIRECTORY, tmp_path_factory.mktemp("rebuilt"))


def test_the_repository_holds_no_checkpoint_data_so_the_checkpoint_is_rebuilt(rebuilt_prefix):
    prefix = original_fixture.checkpoint_prefix_in(FIXTURE_DIRECTORY)
    assert not list(FIXTURE_DIRECTORY.glob(f"{prefix.name}.*"))
    assert rebuilt_prefix != str(prefix)


def test_rebuilt_checkpoint_equals_the_checksums_of_the_original(rebuilt_prefix, checksums):
    description = json.loads((FIXTURE_DIRECTORY / original_fixture.DESCRIPTION_FILE).read_text())
    reader = tf.train.load_checkpoint(rebuilt_prefix)
    shapes, dtypes = reader.get_variable_to_shape_map(), reader.get_variable_to_dtype_map()
    assert set(shapes) == set(checksums)
    assert len(shapes) == description["checkpoint"]["n_variables"]
    for key, expected in checksums.items():
        value = np.ascontiguousarray(reader.get_tensor(key))
        assert dtypes[key].name == expected["dtype"], key
        assert list(shapes[key]) == expected["shape"], key
        assert hashlib.sha256(value.tobytes()).hexdigest() == expected["sha256"], key
    assert int(reader.get_tensor("global_step")) == description["checkpoint"]["global_step"]
    # The state file makes the directory a checkpoint directory as the original Saver left it.
    assert tf.train.latest_checkpoint(str(pathlib.Path(rebuilt_prefix).parent)) == rebuilt_prefix


def test_a_directory_with_a_real_checkpoint_is_used_as_is(tmp_path, rebuilt_prefix):
    # A directory of the fixture layout that also holds the checkpoint data, as the shared copy does.
    complete = tmp_path / "complete"
    complete.mkdir()
    for name in SMALL_FILES:
        shutil.copy2(FIXTURE_DIRECTORY / name, complete / name)
    rebuilt = pathlib.Path(rebuilt_prefix)
    for path in rebuilt.parent.glob(f"{rebuilt.name}.*"):
        shutil.copy2(path, complete / path.name)
    before = file_states(complete)
    unused = tmp_path / "unused"

    prefix = original_checkpoint_prefix_for(complete, unused)

    assert prefix == str(original_fixture.checkpoint_prefix_in(complete))
    assert file_states(complete) == before
    assert not unused.exists()

    # The checksum check runs on a checkpoint used as is, too: a changed checksum names its key.
    document = json.loads((complete / original_fixture.CHECKSUMS_FILE).read_text())
    changed = sorted(document["tensors"])[1]
    document["tensors"][changed]["sha256"] = "0" * 64
    (complete / original_fixture.CHECKSUMS_FILE).write_text(json.dumps(document))
    with pytest.raises(AssertionError, match=f"{changed}: sha256"):
        original_checkpoint_prefix_for(complete, unused)
    assert not unused.exists()


def test_a_rebuild_that_differs_from_the_checksums_names_the_key(tmp_path):
    fixture = tmp_path / "fixture"
    fixture.mkdir()
    for name in SMALL_FILES:
        shutil.copy2(FIXTURE_DIRECTORY / name, fixture / name)
    # Another weight seed draws other values for every random key; the constant global_step still matches.
    description = json.loads((fixture / original_fixture.DESCRIPTION_FILE).read_text())
    description["config"]["weight_seed"] += 1
    (fixture / original_fixture.DESCRIPTION_FILE).write_text(json.dumps(description))
    with pytest.raises(AssertionError) as failure:
        original_checkpoint_prefix_for(fixture, tmp_path / "rebuilt")
    table = original_fixture.read_variable_table(fixture)
    random_keys = sorted(key for key, _, _, rule in table if "~" in rule)
    constant_keys = sorted(key for key, _, _, rule in table if "~" not in rule)
    message = str(failure.value)
    assert f"in {len(random_keys)} ways" in message
    assert f"{random_keys[0]}: sha256" in message
    assert not any(f"{key}:" in message for key in constant_keys)


def test_a_missing_fixture_fails_naming_the_path_and_the_variable(tmp_path):
    absent = tmp_path / "absent"
    with pytest.raises(pytest.fail.Exception) as failure:
        original_checkpoint_prefix_for(absent, tmp_path / "rebuilt")
    assert str(absent / original_fixture.DESCRIPTION_FILE) in str(failure.value)
    assert ORIGINAL_FIXTURE_VARIABLE in str(failure.value)

    # A fixture without checkpoint data needs its checksums: a rebuild nobody checks is refused.
    partial = tmp_path / "partial"
    partial.mkdir()
    for name in SMALL_FILES:
        if name != original_fixture.CHECKSUMS_FILE:
            shutil.copy2(FIXTURE_DIRECTORY / name, partial / name)
    with pytest.raises(pytest.fail.Exception, match=ORIGINAL_FIXTURE_VARIABLE) as failure:
        original_checkpoint_prefix_for(partial, tmp_path / "rebuilt")
    assert str(partial / original_fixture.CHECKSUMS_FILE) in str(failure.value)


@pytest.mark.parametrize(
    "rule, draw",
    [
        ("kernel ~ N(0,0.05)", lambda rng, shape: rng.normal(0.0, 0.05, shape)),
        ("bn_gamma ~ 1+N(0,0.1)", lambda rng, shape: 1.0 + rng.normal(0.0, 0.1, shape)),
        ("moving_variance ~ U(0.5,1.5)", lambda rng, shape: rng.uniform(0.5, 1.5, shape)),
        ("other ~ -2.5+U(-1e-1, 3)", lambda rng, shape: -2.5 + rng.uniform(-0.1, 3.0, shape)),
    ],
)
def test_random_fill_rules_are_float64_draws_cast_afterwards(rule, draw):
    shape = (3, 5)
    actual = original_fixture.parse_fill_rule(rule)(np.random.RandomState(7), shape, np.float32)
    expected = draw(np.random.RandomState(7), shape).astype(np.float32)
    assert actual.dtype == np.float32
    np.testing.assert_array_equal(actual, expected)


def test_a_constant_fill_rule_consumes_no_draws():
    rng = np.random.RandomState(3)
    value = original_fixture.parse_fill_rule("global_step=1234")(rng, [], "int64")
    assert value.dtype == np.int64 and value.shape == () and int(value) == 1234
    np.testing.assert_array_equal(rng.normal(size=4), np.random.RandomState(3).normal(size=4))


@pytest.mark.parametrize(
    "rule", ["kernel ~ Gamma(1,2)", "kernel ~ N(0)", "kernel ~ N(0,0.05) * 2", "kernel", "global_step=several"]
)
def test_an_unknown_fill_rule_fails_loudly(rule):
    with pytest.raises(ValueError, match="fill rule"):
        original_fixture.parse_fill_rule(rule)


def test_every_rule_of_the_repository_fixture_parses():
    description = json.loads((FIXTURE_DIRECTORY / original_fixture.DESCRIPTION_FILE).read_text())
    table = original_fixture.read_variable_table(FIXTURE_DIRECTORY)
    assert {rule for *_, rule in table} == set(description["weight_fill"]["rules"])
    for rule in description["weight_fill"]["rules"]:
        original_fixture.parse_fill_rule(rule)
