"""The package's shape: its modules import each other without a cycle, and none takes a
private name (`_foo`) from another. Read with ast from every npgan/*.py, imports inside
functions included: a late import is still a dependency.

Without a cycle the modules stack as floors, each above everything it imports
(the note of issue 24 draws them), so a reader can start at the bottom and go up.
"""
import ast
from pathlib import Path

from npgan.config import LOSS_DEFAULTS
from npgan.losses import LOSSES

PACKAGE = Path(__file__).resolve().parent.parent / "npgan"


def imports_of(source, modules) -> dict:
    """{npgan module: names this source takes from it} for every npgan import in
    `source`, at any depth. `from npgan import x` is the module x when x is one of
    `modules`, else the name x of the package (__init__)."""
    taken = {}
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] == "npgan" and len(parts) > 1:
                    taken.setdefault(parts[1], set())
        elif isinstance(node, ast.ImportFrom):
            parts = (node.module or "").split(".")
            if node.level == 0 and parts[0] != "npgan":
                continue                                   # numpy, pathlib, ...
            if node.level > 0:                             # from .x import y
                parts = ["npgan"] + [p for p in parts if p]
            if len(parts) > 1:
                taken.setdefault(parts[1], set()).update(a.name for a in node.names)
                continue
            for alias in node.names:                       # from npgan import x
                if alias.name in modules:
                    taken.setdefault(alias.name, set())
                else:
                    taken.setdefault("__init__", set()).add(alias.name)
    return taken


def read_graph(sources) -> dict:
    """{module: {module it imports: names taken}} from {module name: source text}."""
    graph = {}
    for name, source in sources.items():
        deps = imports_of(source, sources)
        graph[name] = {m: names for m, names in deps.items() if m != name}
    return graph


def package_sources() -> dict:
    """{module: source} for npgan/*.py, and one entry per subpackage (npgan/backend/,
    npgan/fast/) holding all its files: a subpackage is one floor of the house."""
    sources = {p.stem: p.read_text(encoding="utf-8") for p in sorted(PACKAGE.glob("*.py"))}
    for sub in sorted(PACKAGE.iterdir()):
        if (sub / "__init__.py").is_file():
            sources[sub.name] = "\n".join(f.read_text(encoding="utf-8")
                                          for f in sorted(sub.glob("*.py")))
    return sources


def package_graph():
    return read_graph(package_sources())


def find_cycle(graph):
    """One import cycle as [a, b, ..., a], or None (a depth-first search: a module met
    again while it is still on the path closes a cycle)."""
    state, path = {}, []                                   # state: "open" on the path, "done"

    def visit(m):
        state[m], path[len(path):] = "open", [m]
        for dep in sorted(graph.get(m, ())):
            if state.get(dep) == "open":
                return path[path.index(dep):] + [dep]
            if dep not in state:
                found = visit(dep)
                if found:
                    return found
        state[m] = "done"
        path.pop()
        return None

    for m in sorted(graph):
        if m not in state:
            found = visit(m)
            if found:
                return found
    return None


def private_imports(graph) -> list:
    return [f"{m} takes {name} from {dep}" for m, deps in sorted(graph.items())
            for dep, names in sorted(deps.items()) for name in sorted(names)
            if name.startswith("_") and name not in ("__version__", "__all__")]


def reach(graph, start) -> set:
    seen, todo = set(), [start]
    while todo:
        for dep in graph[todo.pop()]:
            if dep not in seen:
                seen.add(dep)
                todo.append(dep)
    return seen


def test_the_whole_package_is_read_imports_in_functions_too():
    """Guards the checks below against a reader that silently sees nothing."""
    graph = package_graph()
    assert {"backend", "fast", "layers", "gan", "wgan", "train", "__init__", "__main__"} <= set(graph)
    assert {"wgan", "conditional", "losses"} <= set(graph["gan"])
    assert "info" in graph["train"]            # imported inside a function of train.py
    assert "backend" not in graph["backend"] and graph["backend"] == {}


def test_no_import_cycle():
    cycle = find_cycle(package_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_no_private_name_is_imported_from_another_module():
    assert private_imports(package_graph()) == []


def test_the_checks_fail_on_a_cycle_and_a_private_import():
    """The control: a fake package whose b imports a's private _h inside a function,
    while a imports b at the top. Both checks must see it; without b's import they pass."""
    sources = {"a": "from npgan.b import g\n",
               "b": "def g():\n    from npgan.a import _h, f\n    return _h\n",
               "c": "from npgan import a, b\nimport npgan.backend\n"}
    graph = read_graph(sources)
    assert graph == {"a": {"b": {"g"}}, "b": {"a": {"_h", "f"}},
                     "c": {"a": set(), "b": set(), "backend": set()}}
    assert find_cycle(graph) in (["a", "b", "a"], ["b", "a", "b"])
    assert private_imports(graph) == ["b takes _h from a"]
    sources["b"] = "def g():\n    return 1\n"
    graph = read_graph(sources)
    assert find_cycle(graph) is None and private_imports(graph) == []
    # from npgan import <a public name>: an import of the package itself
    assert read_graph({"x": "from npgan import Linear\n"}) == {"x": {"__init__": {"Linear"}}}


def test_config_sits_below_the_models_and_holds_every_losss_defaults():
    """The settings name what they validate (data sets, losses, priors) and nothing that
    builds or trains a model; LOSS_DEFAULTS gives every loss its paper's settings."""
    graph = package_graph()
    assert reach(graph, "config").isdisjoint(
        {"gan", "wgan", "dcgan", "layers", "conv", "models", "train"}), reach(graph, "config")
    assert tuple(LOSS_DEFAULTS) == LOSSES
