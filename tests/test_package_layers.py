"""The architecture of ylg_tf, checked from its source: every import points down a declared layer order.

The checks read the files with `ast` (nothing is imported, so no TensorFlow loads). A unit is a top-level
module (ylg_tf/config.py) or a sub-package (ylg_tf/attention/); LAYERS lists the units from the bottom up. A
module may import its own unit and the units of lower layers, never a unit of its own layer or of a higher
one. Also checked: no import cycles between modules (imports inside functions count), no absl flag
definitions and no `sys.path` edits in the library, a docstring on every module, and entry points
(experiments/train.py, tools/*.py) that import the library and never each other. The last test runs the
checker on a small synthetic package with one violation of each kind, so the checks cannot pass vacuously.
"""

import ast
import pathlib

REPOSITORY_ROOT = pathlib.Path(__file__).resolve().parents[1]
PACKAGE = "ylg_tf"

# Bottom to top. The bottom layer is plain Python helpers (config dataclasses, the entry-point runner, the
# progress line, the one tensorflow-gan import, latent draws); the layers above it add, in order, the
# normalisation layers and the input pipeline, attention (spectrally normalised projections), the networks,
# work directories and checkpoints (they rebuild networks), evaluation and pictures (read work directories),
# and finally the two workflows, training and GAN inversion.
LAYERS = (
    ("ylg_tf.config", "ylg_tf.progress", "ylg_tf.tfgan_import", "ylg_tf.latents"),
    ("ylg_tf.config_overrides", "ylg_tf.normalization", "ylg_tf.data"),
    ("ylg_tf.attention",),
    ("ylg_tf.models",),
    ("ylg_tf.storage",),
    ("ylg_tf.evaluation", "ylg_tf.pictures"),
    ("ylg_tf.training", "ylg_tf.inversion"),
    ("ylg_tf.command_line",),  # how entry points run: above the library, imported by entry points only
)
# The one library module that runs entry points under absl (it parses flags; it defines none).
ABSL_RUNNER_MODULES = ("ylg_tf.command_line",)
# Calls that define or declare absl flags.
FLAG_DEFINING_CALLS = ("mark_flag_as_required", "mark_flags_as_required", "declare_key_flag", "FlagValues")
ENTRY_POINT_DIRECTORIES = ("experiments", "tools", "tests", "benchmarks")  # never imported by the library


# ---------------------------------------------------------------------------------------------------------
# The checker


def read_modules(root, package=PACKAGE):
    """{dotted module name: (path, ast tree)} for every .py file of `package` under `root`."""
    modules = {}
    for path in sorted((root / package).rglob("*.py")):
        parts = path.relative_to(root).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = (path, ast.parse(path.read_text(), filename=str(path)))
    return modules


def _is_package(name, modules):
    path, _ = modules[name]
    return path.name == "__init__.py"


def imports_of(name, tree, modules, package=PACKAGE):
    """[(imported module, line)] of every `package` import in `tree` (also inside functions).

    `from a.b import c` names the module a.b.c when that is a module of the package, else a.b.
    """
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names if _in_package(alias.name, package)]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = name.split(".") if _is_package(name, modules) else name.split(".")[:-1]
                anchor = anchor[: len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            if not _in_package(base, package):
                continue
            for alias in node.names:
                submodule = f"{base}.{alias.name}"
                found.append((submodule if submodule in modules else base, node.lineno))
    return found


def _in_package(dotted, package):
    return dotted == package or dotted.startswith(package + ".")


def unit_of(dotted, package=PACKAGE):
    """ylg_tf.attention.masks -> ylg_tf.attention; ylg_tf.config -> ylg_tf.config; ylg_tf -> ylg_tf."""
    return ".".join(dotted.split(".")[:2]) if dotted != package else package


def layering_violations(modules, layers, package=PACKAGE):
    """One line per undeclared unit, declared unit that does not exist, or import that does not point down."""
    layer_of = {unit: index for index, layer in enumerate(layers) for unit in layer}
    units = {unit_of(name, package) for name in modules} - {package}
    problems = [f"{unit} is in no layer of LAYERS" for unit in sorted(units - set(layer_of))]
    problems += [f"{unit} is declared in LAYERS but does not exist" for unit in sorted(set(layer_of) - units)]
    for name, (path, tree) in sorted(modules.items()):
        source_unit = unit_of(name, package)
        for target, line in imports_of(name, tree, modules, package):
            target_unit = unit_of(target, package)
            if source_unit == package:
                problems.append(f"{path.name}:{line}: the package's __init__ imports {target}; it imports nothing")
            elif target_unit == source_unit:
                continue
            elif target_unit == package:
                problems.append(f"{name} (line {line}) imports the package root {target}")
            elif source_unit in layer_of and target_unit in layer_of:
                if layer_of[target_unit] == layer_of[source_unit]:
                    problems.append(f"{name} (line {line}) imports {target} from its own layer")
                elif layer_of[target_unit] > layer_of[source_unit]:
                    problems.append(f"{name} (line {line}) imports {target} from a higher layer")
    return problems


def import_cycles(modules, package=PACKAGE):
    """Every elementary cycle found by a depth-first search, as [a, b, ..., a]."""
    graph = {
        name: sorted({target for target, _ in imports_of(name, tree, modules, package) if target != name})
        for name, (_, tree) in modules.items()
    }
    cycles, state = [], {}  # state: 1 on the current path, 2 finished

    def visit(name, path):
        state[name] = 1
        for target in graph.get(name, ()):
            if state.get(target) == 1:
                cycles.append(path[path.index(target):] + [target])
            elif target in graph and target not in state:
                visit(target, path + [target])
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def _called_name(call):
    function = call.func
    return function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", "")


def _edits_sys_path(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "path":
            if isinstance(node.value, ast.Name) and node.value.id == "sys":
                yield node.lineno
        elif isinstance(node, ast.ImportFrom) and node.module == "sys":
            if any(alias.name == "path" for alias in node.names):
                yield node.lineno


def flag_and_path_violations(modules):
    """One line per absl flag definition, absl flags/app import outside the runner, or sys.path use."""
    problems = []
    for name, (_, tree) in sorted(modules.items()):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                called = _called_name(node)
                # The runner may define the flags every entry point shares (--workdir, --checkpoint, --use_ema).
                if name not in ABSL_RUNNER_MODULES and (called.startswith("DEFINE") or called in FLAG_DEFINING_CALLS):
                    problems.append(f"{name} (line {node.lineno}) defines absl flags ({called})")
            if name in ABSL_RUNNER_MODULES:
                continue
            if isinstance(node, ast.Import):
                imported = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module == "absl":
                imported = [f"absl.{alias.name}" for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                imported = [node.module or ""]
            else:
                continue
            for module in imported:
                if module in ("absl.flags", "absl.app") or module.startswith(("absl.flags.", "absl.app.")):
                    problems.append(f"{name} (line {node.lineno}) imports {module}; only the runner may")
        problems += [f"{name} (line {line}) uses sys.path" for line in _edits_sys_path(tree)]
    return problems


def entry_point_import_violations(modules, entry_points, package=PACKAGE):
    """Library imports of entry-point directories, and entry points importing one another.

    entry_points: {path: ast tree}. A script's directory is on sys.path when it runs, so `import generate`
    in tools/invert.py would load tools/generate.py: any import named like another entry point counts.
    """
    problems = []
    for name, (_, tree) in sorted(modules.items()):
        for node in ast.walk(tree):
            for top in _top_level_imports(node):
                if top in ENTRY_POINT_DIRECTORIES:
                    problems.append(f"{name} (line {node.lineno}) imports {top}, which is not library code")
    script_names = {path.stem for path in entry_points}
    forbidden = script_names | set(ENTRY_POINT_DIRECTORIES) | {"importlib", "runpy"}
    for path, tree in sorted(entry_points.items()):
        for node in ast.walk(tree):
            for top in _top_level_imports(node):
                if top in forbidden and top != package:
                    problems.append(f"{path.parent.name}/{path.name}:{node.lineno} imports {top}")
    return problems


def _top_level_imports(node):
    if isinstance(node, ast.Import):
        return [alias.name.split(".")[0] for alias in node.names]
    if isinstance(node, ast.ImportFrom) and not node.level and node.module:
        return [node.module.split(".")[0]]
    return []


def missing_docstrings(modules):
    return [
        f"{name} has no module docstring" for name, (_, tree) in sorted(modules.items()) if not ast.get_docstring(tree)
    ]


def read_entry_points(root):
    paths = [root / "experiments" / "train.py"] + sorted((root / "tools").glob("*.py"))
    return {path: ast.parse(path.read_text(), filename=str(path)) for path in paths}


# ---------------------------------------------------------------------------------------------------------
# The checks on this repository

MODULES = read_modules(REPOSITORY_ROOT)


def test_the_package_has_its_sub_packages():
    # A wrong root would make every other check pass on nothing.
    assert {"ylg_tf.attention.masks", "ylg_tf.models.networks", "ylg_tf.training.trainer"} <= set(MODULES)


def test_every_import_points_down_the_layers():
    assert layering_violations(MODULES, LAYERS) == []


def test_no_import_cycles():
    assert import_cycles(MODULES) == []


def test_the_library_defines_no_flags_and_edits_no_path():
    assert flag_and_path_violations(MODULES) == []


def test_every_module_has_a_docstring():
    assert missing_docstrings(MODULES) == []


def test_entry_points_import_the_library_and_not_each_other():
    entry_points = read_entry_points(REPOSITORY_ROOT)
    assert len(entry_points) >= 2 and all(path.exists() for path in entry_points)
    assert entry_point_import_violations(MODULES, entry_points) == []


def test_no_file_of_the_project_edits_sys_path():
    directories = (PACKAGE,) + ENTRY_POINT_DIRECTORIES
    files = [path for directory in directories for path in (REPOSITORY_ROOT / directory).rglob("*.py")]
    edits = [
        f"{path.relative_to(REPOSITORY_ROOT)}:{line}"
        for path in sorted(files)
        for line in _edits_sys_path(ast.parse(path.read_text(), filename=str(path)))
    ]
    assert edits == []


# ---------------------------------------------------------------------------------------------------------
# The checker finds each kind of violation

SYNTHETIC_FILES = {
    "pkg/__init__.py": '"""Root."""\n',
    "pkg/base.py": '"""Bottom layer."""\nimport sys\n\nsys.path.insert(0, "..")\n',
    "pkg/helpers.py": '"""Bottom layer too."""\nfrom pkg import base\n',
    "pkg/low/__init__.py": '"""Low package."""\n',
    "pkg/low/a.py": '"""Low a."""\nfrom pkg import base\nfrom . import b\n',
    "pkg/low/b.py": '"""Low b."""\nfrom pkg.low import a\n',
    "pkg/low/c.py": "from pkg.high import top\n",
    "pkg/high/__init__.py": '"""High package."""\n',
    "pkg/high/top.py": (
        '"""High."""\nfrom absl import flags\n\nfrom pkg.low import a\n\n'
        'def define():\n    import tools\n    flags.DEFINE_integer("steps", 1, "Steps.")\n'
    ),
    "pkg/stray.py": '"""In no layer."""\n',
    "tools/first.py": '"""Tool."""\nimport second\n',
    "tools/second.py": '"""Tool."""\nfrom pkg.high import top\n',
}
SYNTHETIC_LAYERS = (("pkg.base", "pkg.helpers"), ("pkg.low",), ("pkg.high",), ("pkg.missing",))


def test_the_checker_finds_each_kind_of_violation(tmp_path):
    for relative, text in SYNTHETIC_FILES.items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(text)
    modules = read_modules(tmp_path, package="pkg")

    assert layering_violations(modules, SYNTHETIC_LAYERS, package="pkg") == [
        "pkg.stray is in no layer of LAYERS",
        "pkg.missing is declared in LAYERS but does not exist",
        "pkg.helpers (line 2) imports pkg.base from its own layer",
        "pkg.low.c (line 1) imports pkg.high.top from a higher layer",
    ]
    assert import_cycles(modules, package="pkg") == [["pkg.low.a", "pkg.low.b", "pkg.low.a"]]
    assert flag_and_path_violations(modules) == [
        "pkg.base (line 4) uses sys.path",
        "pkg.high.top (line 2) imports absl.flags; only the runner may",
        "pkg.high.top (line 8) defines absl flags (DEFINE_integer)",
    ]
    assert missing_docstrings(modules) == ["pkg.low.c has no module docstring"]
    entry_points = {path: ast.parse(path.read_text()) for path in sorted((tmp_path / "tools").glob("*.py"))}
    assert entry_point_import_violations(modules, entry_points, package="pkg") == [
        "pkg.high.top (line 7) imports tools, which is not library code",
        "tools/first.py:2 imports second",
    ]
