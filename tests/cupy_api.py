"""What npgan's library code asks of an array namespace, found by reading its source.

`uses(source)` walks a module's syntax tree (the `ast` module) and returns every
  * namespace use: `xp.<name>`, `be.xp.<name>`, `self.xp.random.<name>`, a name bound
    to get_array_module(...), and the op strings of backend.into(out, "<op>", ...);
  * generator use: `<...>.rng.<method>`, the backend's random generator;
  * array attribute: `<array>.<name>` for every name a numpy.ndarray has,
with the keyword arguments of each call. Code in a branch that cannot run on CuPy
(`if self.name == "numpy":`, `if xp is numpy:`, after `if ... == "cupy": return`) is
left out (`npgan.backend.is_numpy(xp)` and `is_cupy(xp)` are understood too), and so
are `getattr(xp, "name", default)`, `hasattr(xp, "name")` and the body of
`if hasattr(xp, "name"):`, which are fallbacks by construction.

`problems_with(uses, cupy)` checks each use against a CuPy module: tests/test_cupy_api.py
against the installed one, and, run as a program,

    PYTHONPATH=<a folder holding another CuPy> python -m tests.cupy_api [FILE ...]

against whichever CuPy that Python imports (the oldest one pyproject.toml accepts, in
.ci/run): it prints "cupy <version>: <n> uses checked", then one line per problem, and
exits 1 if there is any. Without FILEs it reads every module of npgan/.
"""
from __future__ import annotations

import ast
import inspect
import sys
from pathlib import Path
from typing import NamedTuple

import numpy as np

NAMESPACE_MAKERS = {"get_array_module", "_namespace_of"}
MODULE_NAMES = {"np", "numpy", "host", "math", "os", "json", "sys", "time", "warnings",
                "Path", "signal", "tempfile", "zipfile", "gzip", "hashlib", "dataclasses"}
# NumPy 1.26's arrays lack the Array API's attributes that NumPy 2's have: named here, so
# that the walk finds the same uses whichever NumPy runs it
ARRAY_ATTRIBUTES = {name for name in dir(np.ndarray) if not name.startswith("_")} \
    | {"device", "to_device", "mT"}


class Use(NamedTuple):
    kind: str            # "namespace" | "generator" | "array"
    path: tuple          # ("random", "default_rng"), ("permutation",), ("reshape",)
    keywords: tuple      # keyword names passed where the use is called
    where: str           # "npgan/backend/core.py:123"
    guarded: bool        # inside `try:` with `except TypeError`: a keyword may be refused

    def __str__(self):
        kw = f"({', '.join(k + '=' for k in self.keywords)})" if self.keywords else ""
        return f"{self.where}: {self.kind} {'.'.join(self.path)}{kw}"


def _branch(test) -> tuple[bool, bool]:
    """(true, false): whether CuPy is ruled out when `test` is true, and when it is
    false. `self.name == "cupy"` gives (False, True); `xp is numpy` (True, False)."""
    if isinstance(test, ast.UnaryOp) and isinstance(test.op, ast.Not):
        return _branch(test.operand)[::-1]
    if isinstance(test, ast.Call) and isinstance(test.func, ast.Name):
        if test.func.id == "is_numpy":                   # npgan.backend.is_numpy(xp)
            return True, False
        if test.func.id == "is_cupy":
            return False, True
    if isinstance(test, ast.BoolOp):
        parts = [_branch(v) for v in test.values]
        if isinstance(test.op, ast.And):
            return any(t for t, _ in parts), all(f for _, f in parts)
        return all(t for t, _ in parts), any(f for _, f in parts)
    if isinstance(test, ast.Compare) and len(test.ops) == 1:
        op, right = test.ops[0], test.comparators[0]
        if isinstance(op, ast.Is) and isinstance(right, ast.Name) and right.id in ("numpy", "host"):
            return True, False
        if isinstance(right, ast.Constant) and isinstance(right.value, str):
            if isinstance(op, ast.Eq) and right.value == "cupy":
                return False, True
            if isinstance(op, ast.Eq) and right.value in ("numpy", "array-api-strict"):
                return True, False
            if isinstance(op, ast.NotEq) and right.value == "cupy":
                return True, False
    return False, False


def _catches_type_error(handler) -> bool:
    names = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("TypeError", "Exception") for n in names)


def _ends_block(stmts) -> bool:
    return bool(stmts) and isinstance(stmts[-1], (ast.Return, ast.Raise))


class _Walker:
    def __init__(self, filename):
        self.filename, self.found, self.namespace_names = filename, [], {"xp"}
        self.guarded = 0
        self.present = set()     # names known to exist here: inside `if hasattr(xp, name):`

    # -- what an expression is ---------------------------------------------------
    def is_namespace(self, node) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.namespace_names
        if isinstance(node, ast.Attribute):
            return node.attr == "xp"
        if isinstance(node, ast.Call):
            f = node.func
            name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
            return name in NAMESPACE_MAKERS
        return False

    def hasattr_name(self, test):
        """"name" for a test `hasattr(xp, "name")`, whose body may use xp.name; else None."""
        if isinstance(test, ast.Call) and isinstance(test.func, ast.Name) \
                and test.func.id == "hasattr" and len(test.args) == 2 \
                and self.is_namespace(test.args[0]) and isinstance(test.args[1], ast.Constant):
            return test.args[1].value
        return None

    def chain(self, node):
        """(base, [attr, ...]) of a.b.c, outermost attribute last."""
        attrs = []
        while isinstance(node, ast.Attribute):
            attrs.append(node.attr)
            node = node.value
        return node, attrs[::-1]

    def add(self, kind, path, node, keywords=()):
        if kind == "namespace" and path[0] in self.present:
            return
        self.found.append(Use(kind, tuple(path), tuple(keywords),
                              f"{self.filename}:{node.lineno}", self.guarded > 0))

    # -- the walk ----------------------------------------------------------------
    def block(self, stmts, excluded):
        for stmt in stmts:
            if isinstance(stmt, ast.If):
                if_true, if_false = _branch(stmt.test)
                self.node(stmt.test, excluded)
                present = self.hasattr_name(stmt.test)
                self.present.add(present)
                self.block(stmt.body, excluded or if_true)
                self.present.discard(present)
                self.block(stmt.orelse, excluded or if_false)
                if if_false and _ends_block(stmt.body):
                    excluded = True          # the rest of this block never runs on CuPy
            else:
                self.node(stmt, excluded)

    def node(self, node, excluded):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) \
                and self.is_namespace(node.value):
            self.namespace_names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            for d in node.decorator_list:
                self.node(d, excluded)
            self.block(node.body, excluded)
            return
        if isinstance(node, ast.Try) and any(_catches_type_error(h) for h in node.handlers):
            self.guarded += 1                    # try: xp.f(..., device=d) except TypeError:
            self.block(node.body, excluded)
            self.guarded -= 1
            for part in (node.handlers, node.orelse, node.finalbody):
                for stmt in part:
                    self.node(stmt, excluded)
            return
        if isinstance(node, ast.ExceptHandler):
            self.block(node.body, excluded)
            return
        if isinstance(node, (ast.For, ast.While, ast.With, ast.Try)):
            for _, value in ast.iter_fields(node):
                if isinstance(value, list) and value and isinstance(value[0], ast.stmt):
                    self.block(value, excluded)
                elif isinstance(value, list):
                    for v in value:
                        if isinstance(v, ast.AST):
                            self.node(v, excluded)
                elif isinstance(value, ast.AST):
                    self.node(value, excluded)
            return
        if isinstance(node, ast.IfExp):
            if_true, if_false = _branch(node.test)
            self.node(node.test, excluded)
            self.node(node.body, excluded or if_true)
            self.node(node.orelse, excluded or if_false)
            return
        if isinstance(node, ast.Call):
            if self.call(node, excluded):
                return
        if isinstance(node, ast.Attribute):
            self.attribute(node, (), excluded)
            return
        for child in ast.iter_child_nodes(node):
            self.node(child, excluded)

    def call(self, node, excluded) -> bool:
        """Record a call's use; True if the children were handled here."""
        f, keywords = node.func, [k.arg for k in node.keywords if k.arg]
        name = f.id if isinstance(f, ast.Name) else f.attr if isinstance(f, ast.Attribute) else None
        args = node.args
        if name in ("getattr", "hasattr") and args and self.is_namespace(args[0]):
            optional = name == "hasattr" or len(args) > 2
            if not optional and isinstance(args[1], ast.Constant) and not excluded:
                self.add("namespace", [args[1].value], node)
            for a in args[2:]:
                self.node(a, excluded)
            return True
        if name == "into" and len(args) >= 2 and isinstance(args[1], ast.Constant):
            if not excluded:
                self.add("namespace", [args[1].value], node, ["out"])
            return False
        if isinstance(f, ast.Attribute):
            self.attribute(f, keywords, excluded)
            for child in list(node.args) + [k.value for k in node.keywords]:
                self.node(child, excluded)
            return True
        return False

    def attribute(self, node, keywords, excluded):
        """Record an attribute chain's uses, and walk what the chain starts from."""
        base, attrs = self.chain(node)
        sub = base
        for cut, attr in enumerate(attrs):
            if self.is_namespace(sub):                     # xp.random.x -> (random, x)
                if not excluded:
                    self.add("namespace", attrs[cut:], node, keywords)
                self.node(base, excluded)
                return
            if attr == "rng" and cut + 1 < len(attrs):     # be.rng.random -> (random,)
                if not excluded:
                    self.add("generator", attrs[cut + 1:cut + 2], node, keywords)
                self.node(base, excluded)
                return
            sub = ast.Attribute(value=sub, attr=attr)
        self.node(base, excluded)
        base_name = base.id if isinstance(base, ast.Name) else None
        if base_name in MODULE_NAMES or excluded:
            return
        own = 1 if base_name == "self" else 0              # self.<x>: the object's own
        for i, attr in enumerate(attrs[own:], start=own):
            if attr in ARRAY_ATTRIBUTES:
                self.add("array", [attr], node, keywords if i == len(attrs) - 1 else ())


def uses(source: str, filename: str = "<source>") -> list[Use]:
    """Every namespace, generator and array-attribute use in `source` (see the module)."""
    walker = _Walker(filename)
    walker.block(ast.parse(source, filename).body, False)
    return walker.found


# ----------------------------------------------------------- checking against a CuPy
ROOT = Path(__file__).resolve().parents[1]

# Uses the walker cannot tell are not on CuPy's path, each with the reason it is not.
NOT_ON_CUPY = {
    ("npgan/backend/core.py", "namespace", ("asarray",), ("device",)):
        "Backend._from_host, which only array-api-strict calls",
    ("npgan/plots.py", "array", ("resize",), ()): "a PIL image's resize, not an array's",
}


def library_uses(paths=None) -> list[Use]:
    """uses() of every module of npgan/ (or of the files `paths`)."""
    paths = sorted((ROOT / "npgan").rglob("*.py")) if paths is None else [Path(p) for p in paths]
    found = []
    for path in paths:
        where = path.resolve().relative_to(ROOT) if ROOT in path.resolve().parents else path
        found += uses(path.read_text(), str(where))
    return found


def accepted_keywords(obj):
    """The keyword names `obj` accepts, None for any, or "unknown" where CuPy exposes
    no signature (Cython functions), except ufuncs, whose keywords we know."""
    try:
        sig = inspect.signature(obj)
    except (TypeError, ValueError):
        if type(obj).__name__ in ("ufunc", "_GUFunc"):
            return {"out", "dtype", "casting"}
        return "unknown"
    params = sig.parameters.values()
    if any(p.kind is p.VAR_KEYWORD for p in params):
        return None
    return {p.name for p in params if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}


def problems_with(found, cupy):
    """One line per use that the CuPy module `cupy` does not support."""
    roots = {"namespace": cupy, "generator": cupy.random.Generator, "array": cupy.ndarray}
    problems = []
    for use in found:
        file = use.where.rsplit(":", 1)[0]
        if (file, use.kind, use.path, use.keywords) in NOT_ON_CUPY:
            continue
        obj = roots[use.kind]
        for name in use.path:
            if not hasattr(obj, name):
                problems.append(f"{use}: CuPy has no {'.'.join(use.path)}")
                break
            obj = getattr(obj, name)
        else:
            accepted = accepted_keywords(obj) if use.keywords else None
            if isinstance(accepted, set) and not use.guarded:
                refused = [k for k in use.keywords if k not in accepted]
                if refused:
                    problems.append(f"{use}: CuPy's {'.'.join(use.path)} takes no "
                                    f"{', '.join(refused)} (it takes {', '.join(sorted(accepted))})")
    return problems


def main(argv=None) -> int:
    import cupy                       # the CuPy on this Python's path: the one checked

    found = library_uses(argv or None)
    problems = problems_with(found, cupy)
    print(f"cupy {cupy.__version__}: {len(found)} uses checked")
    for line in problems:
        print(line)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
