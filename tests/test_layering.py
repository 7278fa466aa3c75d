"""The package's shape: an engine that knows no biology, small modules, public seams.

* ``mhimmune/core`` and ``mhimmune/runs`` hold no biology or treatment names outside
  docstrings and comments (identifiers and string literals are checked; temperature as a
  physical dimension of the unit checks is not biology);
* no module imports a private name (``_x``) of another mhimmune module, nor reaches into
  one through an imported module (``module._x``);
* no module reads or sets a private attribute (``obj._x``, *obj* not ``self``, ``cls`` or
  ``super()``) that another mhimmune module defines and it does not;
* no module is longer than 600 lines.
"""

import ast
import re
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "mhimmune"
MODULES = sorted(p for p in PACKAGE.rglob("*.py"))
ENGINE = [p for p in MODULES if p.relative_to(PACKAGE).parts[0] in ("core", "runs")]

#: words of the domain (biology, treatment, MH physics) that the engine must not know
BIOLOGY = re.compile(
    r"tumou?r|hyperthermi|\bmh_|_mh\b|pd_?l1|pdl1|cem43|hsp|gsh|glutathion|\bbso\b|\bcdt\b|"
    r"fenton|(?<!mh)immun|cd8|(?<![a-z])treg|dendritic|macrophage|antibod|cytokine|particle|\bsar\b|"
    r"sar_w|ilp|hergt|brezovich|thermal|cure\b|rechallenge|depletion",
    re.IGNORECASE,
)


def _docstring_nodes(tree: ast.AST) -> set[int]:
    ids = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                ids.add(id(body[0].value))
    return ids


def _engine_words(path: Path) -> list[str]:
    tree = ast.parse(path.read_text())
    docs = _docstring_nodes(tree)
    found = []
    for node in ast.walk(tree):
        text = None
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docs:
            text = node.value
        elif isinstance(node, ast.Name):
            text = node.id
        elif isinstance(node, ast.Attribute):
            text = node.attr
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            text = node.name
        elif isinstance(node, ast.arg):
            text = node.arg
        if text and BIOLOGY.search(text):
            found.append(
                f"{path.relative_to(PACKAGE)}:{getattr(node, 'lineno', '?')}: {text[:60]!r}"
            )
    return found


@pytest.mark.parametrize("path", ENGINE, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_engine_module_knows_no_biology(path):
    """core/ and runs/ name no tumour, treatment or MH-physics concept in code or strings."""
    assert _engine_words(path) == []


def test_the_biology_check_finds_biology():
    """The check itself can fail: a domain module is full of such names."""
    assert len(_engine_words(PACKAGE / "mh" / "protocol.py")) > 20


def _module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _private_reach_ins(path: Path) -> list[str]:
    here = _module_name(path)
    tree = ast.parse(path.read_text())
    found, modules = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mhimmune"):
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                if alias.name.startswith("_") and node.module != here:
                    found.append(f"{here}: from {node.module} import {alias.name}")
                modules.add(alias.asname or alias.name) if _is_module(target) else None
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("mhimmune"):
                    modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
            and isinstance(node.value, ast.Name)
            and node.value.id in modules
        ):
            found.append(f"{here}:{node.lineno}: {node.value.id}.{node.attr}")
    return found


def _is_module(dotted: str) -> bool:
    rel = Path(*dotted.split(".")[1:])
    return (PACKAGE / rel).with_suffix(".py").is_file() or (PACKAGE / rel / "__init__.py").is_file()


def test_no_module_imports_a_private_name_of_another():
    found = [x for p in MODULES for x in _private_reach_ins(p)]
    assert found == []


def _private_names_defined(tree: ast.AST) -> set[str]:
    """Private names a module defines: functions, methods, classes, assigned and
    annotated names and attributes, ``__slots__`` entries, ``object.__setattr__`` targets."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store):
            names.add(node.attr)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)  # __slots__ entries, object.__setattr__(self, "_x", v)
    return {n for n in names if n.startswith("_") and not n.startswith("__")}


TREES = {p: ast.parse(p.read_text()) for p in MODULES}
DEFINED = {p: _private_names_defined(t) for p, t in TREES.items()}


def _private_attribute_uses(path: Path, tree: ast.AST, defined: dict[Path, set[str]]) -> list[str]:
    """``obj._x`` in *tree* (of *path*) where another module defines ``_x`` and *path* does
    not (*defined*: the private names of each module)."""
    own = defined.get(path, set())
    elsewhere = set().union(*(names for p, names in defined.items() if p != path))
    found = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Attribute)
            and node.attr.startswith("_")
            and not node.attr.startswith("__")
        ):
            continue
        obj = node.value
        if isinstance(obj, ast.Name) and obj.id in ("self", "cls"):
            continue
        if isinstance(obj, ast.Call) and isinstance(obj.func, ast.Name) and obj.func.id == "super":
            continue
        if node.attr in elsewhere and node.attr not in own:
            found.append(
                f"{path.relative_to(PACKAGE)}:{node.lineno}: {ast.unparse(obj)}.{node.attr}"
            )
    return found


def test_no_module_touches_a_private_attribute_of_another():
    """Objects made by another module are used through their public names."""
    found = [x for p in MODULES for x in _private_attribute_uses(p, TREES[p], DEFINED)]
    assert found == []


def test_the_private_attribute_check_finds_reach_ins():
    """The check itself can fail: a module reaching into a model's private builder."""
    tree = ast.parse("def f(model):\n    return model._builder.boluses\n")
    path = PACKAGE / "interop" / "example.py"
    assert _private_attribute_uses(path, tree, DEFINED) == ["interop/example.py:2: model._builder"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_has_at_most_600_lines(path):
    assert len(path.read_text().splitlines()) <= 600


#: documents and trackers a user of the package does not have
_OUTSIDE = re.compile(
    "LITERATURE" + r"\.md|SEEDS" + r"\.md|[Ss]eed [Rr]eview|[Ss]eed [Tt]able|\bissue" + r" [0-9]+"
)


def test_no_file_cites_documents_a_user_does_not_have():
    """Sources are publications (parameters/references.tsv), never reading notes, the
    source reviews' internal labels or tracker numbers."""
    root = PACKAGE.parent
    folders = ("mhimmune", "models", "parameters", "analyses", "tests")
    files = [root / "README.md", root / "Makefile", root / "pyproject.toml"]
    files += [
        p
        for folder in folders
        for p in (root / folder).rglob("*")
        if p.is_file()
        and p.suffix in (".py", ".tsv", ".toml", ".md", ".ipynb")
        and "results" not in p.parts
    ]
    found = [
        f"{p.relative_to(root)}:{i}"
        for p in files
        for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if _OUTSIDE.search(line)
    ]
    assert found == []
