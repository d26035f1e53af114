"""The docs cannot rot: every `path.py: Name` or `path.py: Class.method` reference in
docs/*.md must name a file that exists and a definition that is in it (found with ast),
and every image a doc shows must exist."""
import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = sorted((ROOT / "docs").glob("*.md"))
# `npgan/layers.py: Linear.backward`, `npgan/gan.py: g_step`, `tests/test_gan.py: test_x`
REFERENCE = re.compile(r"`([\w./-]+\.py): ([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)?)`")
IMAGE = re.compile(r"!\[[^\]]*\]\(([^)\s]+)\)")


def references(doc):
    return REFERENCE.findall(doc.read_text(encoding="utf-8"))


def definitions(path):
    """The names a module defines: top-level functions, classes and assignments,
    and 'Class.method' for the methods of each top-level class."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        if isinstance(node, ast.ClassDef):
            names.update(f"{node.name}.{item.name}" for item in node.body
                         if isinstance(item, (ast.FunctionDef, ast.AsyncFunctionDef)))
    return names


def test_there_are_docs_with_references():
    """Guards the tests below against a pattern that silently matches nothing."""
    walkthrough = ROOT / "docs" / "backprop_through_d.md"
    assert walkthrough in DOCS
    refs = references(walkthrough)
    assert len(refs) >= 20, refs
    assert ("npgan/gan.py", "g_step") in refs
    assert ("npgan/layers.py", "Linear.backward") in refs


def test_the_theory_doc_ties_each_result_to_a_check():
    """docs/theory.md: every derivation step names the function that checks it, and
    the three figures it is built around are shown."""
    theory = ROOT / "docs" / "theory.md"
    assert theory in DOCS
    refs = references(theory)
    for name in ("optimal_d", "jsd", "value_at_optimum", "train_d", "game_value", "kde"):
        assert ("npgan/toy1d.py", name) in refs, name
    assert sum(rel == "tests/test_toy1d.py" for rel, _ in refs) >= 4
    shown = IMAGE.findall(theory.read_text(encoding="utf-8"))
    assert {"figures/optimal_d.png", "figures/gan_1d.png", "figures/d_at_half.png"} <= set(shown)


def test_the_wgan_gp_walkthrough_is_checked_too():
    walkthrough = ROOT / "docs" / "wgan_gp.md"
    assert walkthrough in DOCS
    refs = references(walkthrough)
    assert len(refs) >= 20, refs
    for name in ("Linear.double_backward", "LeakyReLU.double_backward", "Sequential.double_backward"):
        assert ("npgan/layers.py", name) in refs
    assert ("npgan/conv.py", "Conv2d.double_backward") in refs
    assert ("npgan/wgan.py", "penalty_backward") in refs
    assert "docs/wgan_gp.md" in (ROOT / "README.md").read_text(encoding="utf-8")


def test_the_reference_pattern_and_the_lookup_can_fail():
    assert REFERENCE.findall("see `npgan/gan.py: g_step` and `a/b.py: C.m`") == [
        ("npgan/gan.py", "g_step"), ("a/b.py", "C.m")]
    names = definitions(ROOT / "npgan" / "layers.py")
    assert "Linear.backward" in names and "Linear" in names
    assert "Linear.no_such_method" not in names and "Linear.b" not in names


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_code_reference_exists(doc):
    missing = []
    cache = {}
    for rel, name in references(doc):
        path = ROOT / rel
        if not path.is_file():
            missing.append(f"{rel}: {name} (no such file)")
            continue
        if rel not in cache:
            cache[rel] = definitions(path)
        if name not in cache[rel]:
            missing.append(f"{rel}: {name} (not defined in that file)")
    assert not missing, f"{doc.name} refers to code that does not exist:\n" + "\n".join(missing)


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_every_image_exists(doc):
    images = IMAGE.findall(doc.read_text(encoding="utf-8"))
    missing = [src for src in images
               if not src.startswith("http") and not (doc.parent / src).is_file()]
    assert not missing, f"{doc.name} shows images that do not exist: {missing}"


HTML_IMAGE = re.compile(r'<img\s+src="([^"]+)"')
MD_LINK = re.compile(r"\]\(([^)\s#]+\.md)(?:#[^)]*)?\)")


@pytest.mark.parametrize("page", [ROOT / "README.md", *DOCS], ids=lambda p: p.name)
def test_pictures_and_linked_pages_exist(page):
    """The front page and the docs show pictures with <img src=...> too, and link to
    each other (README -> docs/results.md): every one must exist."""
    text = page.read_text(encoding="utf-8")
    targets = HTML_IMAGE.findall(text) + MD_LINK.findall(text)
    missing = [t for t in targets if not t.startswith("http") and not (page.parent / t).is_file()]
    assert not missing, f"{page.name} points at files that do not exist: {missing}"


def test_the_front_page_links_the_results_and_the_patterns_can_fail():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "docs/results.md" in MD_LINK.findall(readme)
    assert HTML_IMAGE.findall('<img src="a/b.png" width="3">') == ["a/b.png"]
    assert MD_LINK.findall("see [x](docs/y.md#part) and [z](https://q/r.md)") == [
        "docs/y.md", "https://q/r.md"]


def test_every_promise_of_the_faults_doc_names_its_test():
    """docs/faults.md: each fault (a section) names at least one test that produces it,
    and the faults of issue 26 are all there. That the named tests exist is checked by
    test_every_code_reference_exists above."""
    faults = ROOT / "docs" / "faults.md"
    assert faults in DOCS
    sections = re.split(r"^## ", faults.read_text(encoding="utf-8"), flags=re.MULTILINE)[1:]
    titles = [s.splitlines()[0] for s in sections]
    for fault in ("kill -9", "Ctrl-C", "SIGTERM", "full disk", "Two runs", "hostile",
                  "NaN", "does not know", "billion"):
        assert any(fault in t for t in titles), (fault, titles)
    for title, text in zip(titles, sections):
        tests = [(rel, name) for rel, name in REFERENCE.findall(text)
                 if rel.startswith("tests/") and name.startswith("test_")]
        assert tests, f"docs/faults.md, '{title}': no test named"
    assert "docs/faults.md" in (ROOT / "README.md").read_text(encoding="utf-8")


# ------------------------------------------------ the front page and the links both ways
FRONT_PAGE_LIMIT = 8000
DOCS_PATH = re.compile(r"(?<![\w/.])(docs/[\w/.-]+\.(?:md|png|gif))")


def test_the_front_page_is_short_and_leads_with_the_two_commands():
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme) <= FRONT_PAGE_LIMIT, f"README.md has {len(readme)} characters"
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    assert "examples/train_mnist.py" in blocks[0] and "pytest -q" in blocks[1], blocks[:2]


def test_every_docs_path_the_code_names_exists():
    """A docstring or a comment that sends the reader to docs/... must point at a file
    (the pattern skips URLs such as https://pytorch.org/docs/stable/...)."""
    missing = []
    for folder in ("npgan", "examples", "benchmarks", "tools"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            for name in DOCS_PATH.findall(path.read_text(encoding="utf-8")):
                if not (ROOT / name.rstrip(".")).is_file():
                    missing.append(f"{path.relative_to(ROOT)}: {name}")
    assert not missing, "\n".join(missing)
    assert DOCS_PATH.findall("see docs/r1.md and https://pytorch.org/docs/stable/x.html") == [
        "docs/r1.md"]


def test_every_docs_page_can_be_reached_from_the_front_page():
    """The README links some pages, they link others: every page of docs/ is reached."""
    seen, todo = set(), [ROOT / "README.md"]
    while todo:
        page = todo.pop()
        for target in MD_LINK.findall(page.read_text(encoding="utf-8")):
            path = (page.parent / target).resolve()
            if path.is_file() and path not in seen:
                seen.add(path)
                todo.append(path)
    unreached = [doc.name for doc in DOCS if doc.resolve() not in seen]
    assert not unreached, f"no link leads to: {unreached}"
