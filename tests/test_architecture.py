"""The package's shape: imports point one way (DESIGN.md), no cycles, small modules, few root modules.

Every import counts: module level or inside a function. The order is data below, so a later
change that breaks it fails here.
"""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mobilenet_sep"

LAYERS = {
    "utils": 0,
    "layers": 1,
    "zoo": 2,
    "profiler": 3,
    "data": 3,
    "train": 4,
    "export": 4,
    "speed": 5,  # times exported files: it calls the export writers, so it sits above them
    "demo": 6,
    "cli": 7,
}
"""Part -> rank. A part may import parts of lower rank only; parts of equal rank stay apart."""

ROOT = "__init__"  # the lazy public API: it may name any part


def _module_name(path):
    relative = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(relative.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules():
    return {_module_name(path): path for path in sorted(PACKAGE.rglob("*.py"))}


def _imports(path, name, known):
    """The package modules `path` imports, resolved to module names (a `from x import y` that names a module counts)."""
    tree = ast.parse(path.read_text(), str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        found.update(target for target in targets if target.split(".")[0] == "mobilenet_sep" and target in known)
    found.discard(name)
    return found


def _graph():
    modules = _modules()
    return {name: _imports(path, name, modules) for name, path in modules.items()}


def _part(name):
    parts = name.split(".")
    return ROOT if len(parts) == 1 else parts[1]


def test_every_part_has_a_rank():
    parts = {_part(name) for name in _modules()} - {ROOT}
    assert parts == set(LAYERS), "a new part of the package needs its place in LAYERS"


def test_imports_point_down():
    wrong = []
    for name, imported in _graph().items():
        if _part(name) == ROOT:
            continue
        for target in imported:
            source_part, target_part = _part(name), _part(target)
            if target_part == ROOT:
                wrong.append(f"{name} -> {target} (the root is the public API, not a dependency)")
            elif source_part != target_part and LAYERS[target_part] >= LAYERS[source_part]:
                wrong.append(f"{name} ({source_part}) -> {target} ({target_part})")
    assert not wrong, "imports against the order utils <- layers <- zoo <- ...:\n" + "\n".join(sorted(wrong))


def test_no_import_cycle():
    graph = _graph()
    state, cycles = {}, []

    def visit(node, trail):
        state[node] = "open"
        for target in sorted(graph[node]):
            if state.get(target) == "open":
                cycles.append(" -> ".join(trail[trail.index(target) :] + [target]))
            elif target not in state:
                visit(target, trail + [target])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    assert not cycles, "import cycles:\n" + "\n".join(cycles)


def test_no_string_registries():
    """Registries hold functions registered where defined, never "module:function" strings.

    The root's lazy public API is the one place that imports by name: that is what keeps
    `import mobilenet_sep` light.
    """
    offenders = []
    for name, path in _modules().items():
        if _part(name) == ROOT:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                text = node.value
                if text.startswith("mobilenet_sep.") and ":" in text and " " not in text:
                    offenders.append(f"{name}: {text}")
            if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "import_module":
                offenders.append(f"{name}: importlib.import_module")
    assert not offenders, offenders


@pytest.mark.parametrize("name", sorted(_modules()))
def test_modules_stay_small(name):
    lines = _modules()[name].read_text().count("\n")
    assert lines <= 400, f"{name} has {lines} lines: probably two modules"


def test_few_modules_at_the_root():
    root_modules = sorted(path.name for path in PACKAGE.glob("*.py"))
    assert len(root_modules) <= 3, root_modules


def test_the_checker_sees_a_wrong_import(tmp_path):
    """The walk resolves `from mobilenet_sep.x import y` and relative imports: a planted upward import is found."""
    source = tmp_path / "probe.py"
    source.write_text("from mobilenet_sep.cli import options\nfrom .speed import measure\n")
    known = {"mobilenet_sep.cli", "mobilenet_sep.cli.options", "mobilenet_sep.layers.speed.measure"}
    found = _imports(source, "mobilenet_sep.layers.probe", known)
    assert found == {"mobilenet_sep.cli.options", "mobilenet_sep.layers.speed.measure"}
