"""The tests mirror the packages: tests/attention/ tests ylg_tf/attention/, and so on.

Checked from the source with `ast` (nothing is imported):
- every library module with behaviour (a top-level function or class) is imported by a test file in its
  mirrored folder: ylg_tf/PACKAGE/MODULE.py by one in tests/PACKAGE/, ylg_tf/MODULE.py by one in tests/;
- every folder of tests/ is a sub-package's mirror or one of the folders that hold no library tests
  (the tools' end-to-end tests, fixtures, assets);
- test file names are unique across the folders (they have no __init__.py, so pytest imports each test file
  by its bare name).
The last test runs the checker on a small synthetic tree with one problem of each kind.
"""

import ast
import collections
import pathlib

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "ylg_tf"
# Folders of tests/ that mirror no sub-package: tools/*.py end to end, original-code fixtures, data files.
OTHER_TEST_FOLDERS = ("tools", "fixtures", "assets")


def library_modules_with_behaviour(root, package=PACKAGE):
    """{dotted name: the tests/ folder that mirrors its package} for modules defining a function or class."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        if path.name == "__init__.py":
            continue
        tree = ast.parse(path.read_text(), filename=str(path))
        if not any(isinstance(node, (ast.FunctionDef, ast.ClassDef)) for node in tree.body):
            continue
        parts = path.relative_to(root).with_suffix("").parts
        modules[".".join(parts)] = pathlib.Path("tests", *parts[1:-1])
    return modules


def imported_modules(tree):
    """Every dotted name an import statement may refer to as a module (`from a.b import c` gives a.b, a.b.c)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def mirror_problems(root, package=PACKAGE):
    tests = root / "tests"
    test_files = sorted(path for path in tests.rglob("test_*.py") if "fixtures" not in path.parts)
    imports_by_folder = collections.defaultdict(set)
    for path in test_files:
        imports_by_folder[path.parent.relative_to(root)].update(
            imported_modules(ast.parse(path.read_text(), filename=str(path))))
    problems = [
        f"{module} is imported by no test in {folder}/"
        for module, folder in library_modules_with_behaviour(root, package).items()
        if module not in imports_by_folder[folder]
    ]
    sub_packages = {path.parent.name for path in (root / package).glob("*/__init__.py")}
    problems += [
        f"tests/{folder.name}/ mirrors no sub-package of {package}"
        for folder in sorted(tests.iterdir())
        if folder.is_dir() and folder.name not in sub_packages | set(OTHER_TEST_FOLDERS) and folder.name[0] not in "._"
    ]
    by_name = collections.defaultdict(list)
    for path in test_files:
        by_name[path.name].append(path.relative_to(root).as_posix())
    problems += [f"{name} appears twice: {', '.join(paths)}" for name, paths in sorted(by_name.items()) if len(paths) > 1]
    return problems


def test_the_tests_mirror_the_packages():
    # A wrong root would make the check pass on nothing.
    assert {"ylg_tf.attention.masks", "ylg_tf.pictures"} <= set(library_modules_with_behaviour(REPOSITORY_ROOT))
    assert mirror_problems(REPOSITORY_ROOT) == []


SYNTHETIC_FILES = {
    "pkg/__init__.py": '"""Root."""\n',
    "pkg/helpers.py": '"""Tested at the top."""\ndef helper():\n    pass\n',
    "pkg/constants.py": '"""No behaviour."""\nVALUE = 1\n',
    "pkg/low/__init__.py": '"""Low."""\n',
    "pkg/low/tested.py": '"""Tested in its folder."""\nclass Thing:\n    pass\n',
    "pkg/low/elsewhere.py": '"""Tested in the wrong folder."""\ndef run():\n    pass\n',
    "tests/test_helpers.py": "from pkg import helpers\nfrom pkg.low import elsewhere\n",
    "tests/low/test_tested.py": "from pkg.low.tested import Thing\n",
    "tests/stray/test_helpers.py": "import pkg.helpers\n",
    "tests/fixtures/test_ignored.py": "",
}


def test_the_checker_finds_each_kind_of_problem(tmp_path):
    for relative, text in SYNTHETIC_FILES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    assert set(library_modules_with_behaviour(tmp_path, package="pkg")) == {
        "pkg.helpers", "pkg.low.tested", "pkg.low.elsewhere"}
    assert mirror_problems(tmp_path, package="pkg") == [
        "pkg.low.elsewhere is imported by no test in tests/low/",
        "tests/stray/ mirrors no sub-package of pkg",
        "test_helpers.py appears twice: tests/stray/test_helpers.py, tests/test_helpers.py",
    ]
