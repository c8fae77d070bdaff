"""The package's floor plan: sub-packages by stage, data flowing one way, no import circles.

Every `from .x import y` in the package, at the top of a module or inside a function, is read with `ast` and
resolved to the module it names; the stage of each module is its sub-package."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import recommender

PACKAGE = Path(recommender.__file__).parent
# lowest first: a stage may import itself and the stages before it, never one after it
STAGES = ("common", "ingest", "embed", "store", "rank", "evaluate", "batch", "serve", "cli")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def package_modules() -> dict[str, Path]:
    return {module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """The package modules `name` imports anywhere in its source (relative or absolute)."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[: len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if not target.startswith("recommender"):
                continue
            for alias in node.names:  # `from . import incremental` names a module
                if f"{target}.{alias.name}" in known:
                    found.add(f"{target}.{alias.name}")
            found.add(target)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("recommender"))
    return {m for m in found if m in known and m != name}


def stage(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[1] in STAGES else None


def graph() -> dict[str, set[str]]:
    modules = package_modules()
    known = set(modules)
    return {name: imports_of(name, path, known) for name, path in modules.items()}


def test_every_module_lives_in_a_stage():
    loose = [m for m in package_modules() if m != "recommender" and stage(m) is None]
    assert not loose, f"modules outside the stage sub-packages: {loose}"
    assert sorted(p.name for p in PACKAGE.iterdir() if p.is_dir() and (p / "__init__.py").exists()) == sorted(STAGES)


def test_no_stage_imports_a_later_stage():
    upward = []
    for module, targets in graph().items():
        for target in targets:
            if stage(module) and stage(target) and STAGES.index(stage(target)) > STAGES.index(stage(module)):
                upward.append(f"{module} -> {target}")
    assert not upward, "a stage imports a later one:\n" + "\n".join(sorted(upward))


def test_no_import_circles():
    edges = graph()
    state: dict[str, int] = {}
    circles = []

    def visit(node, path):  # depth-first; a module met again while still open closes a circle
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                circles.append(" -> ".join(path[path.index(nxt):] + [nxt]))
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert not circles, "import circles:\n" + "\n".join(circles)


def test_the_layer_check_sees_an_upward_import(tmp_path):
    """The checker itself: a lower stage's function-level import of a later stage is found."""
    fake = tmp_path / "recommender" / "store" / "x.py"
    fake.parent.mkdir(parents=True)
    fake.write_text("def f():\n    from ..rank.index import Index\n")
    known = {"recommender.store.x", "recommender.rank.index"}
    assert imports_of("recommender.store.x", fake, known) == {"recommender.rank.index"}


@pytest.mark.parametrize("name", STAGES)
def test_each_stage_imports_alone(name):
    """Each sub-package imports in a fresh interpreter by itself, and none loads torch, FAISS or a model."""
    code = (f"import sys, recommender.{name}\n"
            "heavy = sorted(m for m in ('torch', 'faiss', 'sentence_transformers', 'openvino') if m in sys.modules)\n"
            "print(','.join(heavy))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "", f"importing recommender.{name} loaded {done.stdout.strip()}"


def test_the_documented_api_imports_from_the_top():
    for name in recommender.__all__:
        assert getattr(recommender, name) is not None

    doc = recommender.__doc__
    for name in STAGES:
        assert f"    {name}/" in doc, f"recommender/__init__.py does not say what {name}/ does"


# Private names another module may use, each with its reason: the standard library's documented privates and
# the public API of namedtuples (whose method names start with "_" so as not to clash with field names).
ALLOWED_PRIVATE = {
    ("os", "_exit"): "ends a forked worker without running the parent's clean-up (documented for that use)",
    ("*", "_replace"): "namedtuple's public API",
    ("*", "_asdict"): "namedtuple's public API",
    ("*", "_fields"): "namedtuple's public API",
    ("*", "_make"): "namedtuple's public API",
}


def private_uses(path: Path) -> list[str]:
    """`x._name`, `getattr(x, "_name")` and `from .m import _name` in a module where `x` is not self/cls and `_name` is not defined in
    that module (a function, class, variable, argument or attribute of self it binds): a reach into another
    module's privates. Dunder names and ALLOWED_PRIVATE are not counted."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    own = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            own.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            own.add(node.id)
        elif isinstance(node, ast.arg):
            own.add(node.arg)
        elif isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store) \
                and isinstance(node.value, ast.Name) and node.value.id in ("self", "cls"):
            own.add(node.attr)

    def private(name: str) -> bool:
        return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))

    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            found += [(node.lineno, 0, f"{path.name}:{node.lineno}: from {'.' * node.level}{node.module or ''} "
                                       f"import {a.name}") for a in node.names if private(a.name)]
            continue
        if isinstance(node, ast.Attribute):
            target, name = node.value, node.attr
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and len(node.args) >= 2 \
                and node.func.id in ("getattr", "hasattr", "setattr", "delattr") \
                and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str):
            target, name = node.args[0], node.args[1].value
        else:
            continue
        owner = target.id if isinstance(target, ast.Name) else None
        if not private(name) or name in own or owner in ("self", "cls") or (owner, name) in ALLOWED_PRIVATE \
                or ("*", name) in ALLOWED_PRIVATE:
            continue
        found.append((node.lineno, node.col_offset, f"{path.name}:{node.lineno}: {ast.unparse(node)}"))
    return [text for *_, text in sorted(found)]


def test_no_module_uses_another_modules_private_names():
    uses = [f"{name}: {use}" for name, path in package_modules().items() for use in private_uses(path)]
    assert not uses, "a module reaches into another module's private names (give them a public name):\n" + \
        "\n".join(uses)


def test_the_private_check_sees_a_reach(tmp_path):
    """The checker itself: another object's private attribute (read or written) and an imported private name are
    found; the module's own privates, self's, dunders and the allowed ones are not."""
    fake = tmp_path / "x.py"
    fake.write_text("from .reader import _relative\nimport os\n\n"
                    "class A:\n    def _mine(self):\n        self._cache = None\n        return self.__dict__\n\n"
                    "def f(job, other, point):\n    job._ranker = None\n    other._mine()\n"
                    "    point._replace(x=1)\n    os._exit(0)\n    hasattr(other, '_scipy')\n"
                    "    return job.ranker._uses('x')\n")
    assert private_uses(fake) == ["x.py:1: from .reader import _relative", "x.py:10: job._ranker",
                                  "x.py:14: hasattr(other, '_scipy')", "x.py:15: job.ranker._uses"]


# Module constants that may share a name and value in two modules, each with its reason.
SAME_CONSTANT = {
    "FORMAT": "each file's own format version (rank/learned.py: learned-ranker.json; rank/default_model.py: its JSON)",
}


def test_no_constant_is_defined_twice():
    """A constant (an UPPER_CASE name bound at a module's top) is defined once and imported where it is used: the
    same name and value in two modules is a copy (made to dodge an import) that can drift."""
    where: dict[tuple[str, str], list[str]] = {}
    for name, path in package_modules().items():
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            target = node.targets[0] if isinstance(node, ast.Assign) else getattr(node, "target", None)
            if isinstance(target, ast.Name) and target.id.isupper() and getattr(node, "value", None) is not None \
                    and target.id not in SAME_CONSTANT:
                where.setdefault((target.id, ast.unparse(node.value)), []).append(name)
    copies = [f"{constant} = {value}: {', '.join(modules)}" for (constant, value), modules in where.items()
              if len(modules) > 1]
    assert not copies, "constants defined twice:\n" + "\n".join(copies)
