"""Shared test set-up: quiet TensorFlow, locate fixtures (the package itself is installed: pip install -e .)."""

import os
import pathlib
import shutil
import tempfile

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]

# The built-in classifier's cache (ylg_tf.command_line.default_classifier_cache_directory): one per test session,
# made by the main process and inherited by the xdist workers and every tool the tests run, so the classifier
# trains once per session and no test writes into the user's ~/.cache.
CLASSIFIER_CACHE_VARIABLE = "YLG_TF_CACHE_DIR"
_SESSION_CACHE_OWNER = "YLG_TF_TEST_SESSION_CACHE"


def pytest_configure(config):
    if os.environ.get(_SESSION_CACHE_OWNER):
        return  # an xdist worker: the main process has set the cache
    os.environ[CLASSIFIER_CACHE_VARIABLE] = tempfile.mkdtemp(prefix="ylg_tf_test_cache_")
    os.environ[_SESSION_CACHE_OWNER] = str(os.getpid())


def pytest_unconfigure(config):
    if os.environ.get(_SESSION_CACHE_OWNER) == str(os.getpid()):
        shutil.rmtree(os.environ[CLASSIFIER_CACHE_VARIABLE], ignore_errors=True)

import original_fixture  # noqa: E402  (a helper beside this file; loads no TensorFlow)

# Fixtures made by running the original code travel with the repository (tests/fixtures, see its README);
# the environment variables point the same tests at another directory of the same layout, e.g. the shared
# copy they came from, which also holds the real checkpoint.
ORIGINAL_FIXTURE_VARIABLE = "YLG_ORIGINAL_FIXTURE"
ORIGINAL_MASKS_VARIABLE = "YLG_ORIGINAL_MASKS"
REPOSITORY_FIXTURE_DIRECTORY = REPOSITORY_ROOT / "tests" / "fixtures"
ORIGINAL_FIXTURE_DIRECTORY = pathlib.Path(
    os.environ.get(ORIGINAL_FIXTURE_VARIABLE, str(REPOSITORY_FIXTURE_DIRECTORY / "ylg_original_small"))
)
ORIGINAL_MASKS_DIRECTORY = pathlib.Path(
    os.environ.get(ORIGINAL_MASKS_VARIABLE, str(REPOSITORY_FIXTURE_DIRECTORY / "ylg_original_masks"))
)


def original_checkpoint_prefix_for(fixture_directory, rebuild_directory):
    """The checkpoint prefix of the fixture in `fixture_directory`, rebuilt into `rebuild_directory` if the
    directory holds no checkpoint data (original_fixture.prepare_checkpoint).

    A missing fixture fails the test (never skips it: a clone without its fixture must not pass quietly),
    naming the path and the variable that chooses the directory.
    """
    try:
        return original_fixture.prepare_checkpoint(fixture_directory, rebuild_directory)
    except original_fixture.FixtureFileMissing as error:
        pytest.fail(f"{error} (set {ORIGINAL_FIXTURE_VARIABLE} to a fixture directory)", pytrace=False)


@pytest.fixture(scope="session")
def original_checkpoint_prefix(tmp_path_factory):
    """The original-code fixture's checkpoint prefix, for every test that reads the checkpoint.

    Session-scoped, so each process rebuilds at most once; the rebuild goes to this process's own temporary
    directory, so pytest-xdist workers never write the same files.
    """
    return original_checkpoint_prefix_for(
        ORIGINAL_FIXTURE_DIRECTORY, tmp_path_factory.mktemp("original_checkpoint")
    )
