"""requirements.txt picks, for every supported Python, exactly the pins of that Python's stack file.

The README's install command is `pip install -r requirements.txt`; the stack files are what a user names to
ask for the other stack. This checks the two never drift apart, by evaluating every environment marker as
pip does for each supported Python version.
"""

import pathlib

import pytest
from packaging.markers import default_environment
from packaging.requirements import Requirement

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
PAPER_PYTHONS = ("3.9", "3.10", "3.11")
CURRENT_PYTHONS = ("3.12", "3.13")


def selected_requirements(path, python_version):
    """{normalised name: specifier} that pip installs from `path` on `python_version` (follows -r)."""
    environment = dict(default_environment(), python_version=python_version,
                       python_full_version=f"{python_version}.0")
    selected = {}
    for line in path.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r "):
            included = selected_requirements(path.parent / line[3:].strip(), python_version)
            assert not set(included) & set(selected), f"{path}: a package is named twice"
            selected.update(included)
            continue
        requirement = Requirement(line)
        if requirement.marker is not None and not requirement.marker.evaluate(environment):
            continue
        name = requirement.name.lower().replace("_", "-")
        assert name not in selected, f"{path}: {name} is selected twice on Python {python_version}"
        selected[name] = str(requirement.specifier)
    return selected


@pytest.mark.parametrize("python_version", PAPER_PYTHONS + CURRENT_PYTHONS)
def test_requirements_txt_selects_the_stack_of_each_python(python_version):
    stack = "paper" if python_version in PAPER_PYTHONS else "current"
    expected = selected_requirements(REPOSITORY_ROOT / "requirements" / f"{stack}.txt", python_version)
    actual = selected_requirements(REPOSITORY_ROOT / "requirements.txt", python_version)
    assert actual == expected


@pytest.mark.parametrize("python_version", ("3.10", "3.11", "3.12", "3.13"))
def test_current_stack_pins_tensorflow_2_21_with_tf_keras_on_every_python_it_supports(python_version):
    current = selected_requirements(REPOSITORY_ROOT / "requirements" / "current.txt", python_version)
    assert current["tensorflow"] == "==2.21.0" and current["tf-keras"] == "==2.21.0"
    assert current["numpy"].startswith("==") and current["scipy"].startswith("==")
    assert "tensorflow-addons" not in current


def test_paper_stack_is_the_pinned_tensorflow_2_15_with_tensorflow_addons():
    paper = selected_requirements(REPOSITORY_ROOT / "requirements" / "paper.txt", "3.11")
    assert paper["tensorflow"] == "==2.15.1" and paper["tf-keras"] == "==2.15.1"
    assert paper["tensorflow-addons"] == "==0.23.0"
