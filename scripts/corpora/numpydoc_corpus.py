"""Build the `numpydoc` evaluation corpus: the public API docstrings of numpy, scipy and pandas (as installed from
PyPI), each docstring's hand-written numpydoc "See Also" section as its curated related list.

    python scripts/corpora/numpydoc_corpus.py --out /work/corpora/numpydoc [--package numpy --package scipy ...]

Writes OUT/articles.jsonl (one public function, class, method or property a line: id = its qualified name, e.g.
"numpy.linalg.svd", title = the same, excerpt = the docstring's summary line, text = the signature and the
docstring without its See Also section, url = its page in the package's online reference, source, page_type =
function / class / method / property), OUT/gold.jsonl (object -> the objects its See Also names that are in the
corpus) and OUT/stats.json (counts, package versions, the TF-IDF baseline). An object exported under several names
(numpy.sum and numpy._core.fromnumeric.sum) is one article, named by its shortest public name; a See Also entry
resolves by importing the name it gives, as Sphinx would (as written, then relative to the object's class, module
and package, "np." and "pd." expanded), to that one id. Entries that do not resolve to an article are dropped and
counted. Deterministic for the same package versions. See numpydoc_corpus.README.md beside this script.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import os
import pkgutil
import re
import sys
import warnings
from importlib import metadata
from pathlib import Path

PACKAGES = ("numpy", "scipy", "pandas")
URLS = {"numpy": "https://numpy.org/doc/stable/reference/generated/{id}.html",
        "scipy": "https://docs.scipy.org/doc/scipy/reference/generated/{id}.html",
        "pandas": "https://pandas.pydata.org/docs/reference/api/{id}.html",
        "sklearn": "https://scikit-learn.org/stable/modules/generated/{id}.html"}
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
# Modules that are not public API although their names have no leading underscore (pandas documents pandas.core's
# classes under their top-level names; test suites and build helpers are not API).
SKIP_MODULE = re.compile(r"(^|\.)(_[^.]*|tests?|conftest|setup|pandas\.core|pandas\.compat|pandas\.util|"
                         r"numpy\.core|numpy\.distutils|numpy\.f2py|scipy\.special\.cython_special|sklearn\.externals|"
                         r"sklearn\.utils\.fixes)(\.|$)")
# pandas's modules outside these (pandas.io's readers and formatters, ...) are internal: their public objects are
# exported at the top level or under pandas.api.
PANDAS_PUBLIC = re.compile(r"^pandas($|\.(api|arrays|errors|plotting|testing|tseries|io\.formats\.style|io\.stata|"
                           r"io\.json)(\.|$))")
HEADER_RULE = re.compile(r"^\s*-{3,}\s*$")
ROLE = re.compile(r":(?:[\w-]+:)*[\w-]+:`~?([^`<]*?)(?:\s*<([^`>]+)>)?`")
NAME = re.compile(r"^~?[A-Za-z_][\w.]*$")
ALIASES = {"np": "numpy", "pd": "pandas", "sp": "scipy"}


# --- docstring parsing (pure functions, unit-tested on inline docstrings) ---

def split_sections(doc: str) -> list[tuple[str, list[str]]]:
    """A cleaned docstring as (header, lines) pairs; the text before the first header has header "". A header is a
    line followed by a rule of dashes (numpydoc's format)."""
    lines = inspect.cleandoc(doc).splitlines()
    out: list[tuple[str, list[str]]] = [("", [])]
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip() and i + 1 < len(lines) and HEADER_RULE.match(lines[i + 1]) \
                and not HEADER_RULE.match(line):
            out.append((line.strip(), []))
            i += 2
            continue
        out[-1][1].append(line)
        i += 1
    return out


def see_also_names(lines: list[str]) -> list[str]:
    """The names a See Also section lists, in order: entry lines are those at the section's own indent
    ("name : description", "name1, name2", ":func:`name`"), indented lines describe them."""
    body = [line for line in lines if line.strip()]
    if not body:
        return []
    indent = min(len(line) - len(line.lstrip()) for line in body)
    names: list[str] = []
    for line in body:
        if len(line) - len(line.lstrip()) > indent:
            continue
        entry = ROLE.sub(lambda m: m.group(2) or m.group(1), line.strip())
        head = entry.split(" :", 1)[0] if " :" in entry else entry.split(":", 1)[0]
        for token in head.split(","):
            token = token.strip().strip("`").lstrip("~").rstrip(".")
            if token and NAME.match(token) and token not in names:
                names.append(token)
    return names


def clean_markup(text: str) -> str:
    """RST roles to their shown text (the last component of a "~" name), backticks and rules dropped."""
    def shown(m: re.Match) -> str:
        label, target = m.group(1), m.group(2)
        if target:
            return label.strip()
        return label.rsplit(".", 1)[-1] if m.group(0).split("`", 1)[1].startswith("~") else label
    text = ROLE.sub(shown, text)
    return text.replace("``", "").replace("`", "")


def parse_docstring(doc: str) -> tuple[str, list[str]]:
    """(the docstring's text without its See Also section, the names the See Also section lists)."""
    kept, names = [], []
    for header, lines in split_sections(doc):
        if header.lower().rstrip(":") == "see also":
            names.extend(n for n in see_also_names(lines) if n not in names)
            continue
        block = ([header] if header else []) + lines
        kept.append("\n".join(block).strip())
    text = clean_markup("\n\n".join(k for k in kept if k))
    # doctest output marked "# may vary" (random samples scipy draws when it builds a docstring) is not kept
    text = re.sub(r"(?m)^(?!>>>).*#\s*may vary\s*$", "# may vary", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip(), names


def candidates(name: str, qualname: str) -> list[str]:
    """Where a See Also name may point, most specific first: as written, then relative to each enclosing scope of
    the object (its class, its module, ... its package)."""
    first, _, rest = name.partition(".")
    if first in ALIASES:
        name = ALIASES[first] + ("." + rest if rest else "")
    scopes = qualname.split(".")[:-1]
    out = [name] + [".".join(scopes[:i] + [name]) for i in range(len(scopes), 0, -1)]
    return list(dict.fromkeys(out))


def resolve_names(names: list[str], qualname: str, lookup) -> tuple[list[str], int]:
    """Each name to an article id by `lookup(dotted name) -> id or None` (first candidate that resolves); the
    object itself and repeats left out. Returns (ids, names that resolved to no article)."""
    ids, dropped = [], 0
    for name in names:
        target = next((t for t in map(lookup, candidates(name, qualname)) if t is not None), None)
        if target is None:
            dropped += 1
        elif target != qualname and target not in ids:
            ids.append(target)
    return ids, dropped


# --- walking the packages ---

def quiet_getattr(obj, name: str):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # deprecated shims warn on access: not public API
        try:
            return getattr(obj, name)
        except Exception:
            return None


def public_modules(package: str) -> list:
    root = importlib.import_module(package)
    names = {package}
    for info in pkgutil.walk_packages(root.__path__, package + "."):
        if not SKIP_MODULE.search(info.name) and (package != "pandas" or PANDAS_PUBLIC.match(info.name)):
            names.add(info.name)
    modules = []
    for name in sorted(names):
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            try:
                modules.append(importlib.import_module(name))
            except Exception:
                continue
    return modules


def owned(obj, package: str) -> bool:
    if type(obj).__name__ == "ufunc":  # every ufunc says "numpy": scipy.special's are scipy's
        return True
    module = getattr(obj, "__module__", None)
    if not isinstance(module, str):
        module = getattr(type(obj), "__module__", "")
    return module == package or module.startswith(package + ".")


def documented(obj) -> str | None:
    doc = getattr(obj, "__doc__", None)
    if not isinstance(doc, str) or not doc.strip():
        return None
    if not (inspect.isclass(obj) or inspect.isroutine(obj)) and doc is getattr(type(obj), "__doc__", None):
        return None  # an instance showing its type's docstring
    return doc


def kind_of(obj) -> str | None:
    if inspect.isclass(obj):
        return "class"
    if isinstance(obj, property):
        return "property"
    if callable(obj):
        return "function"
    return None


def module_names(module) -> list[str]:
    """A module's public names: its `__all__`, else every name without a leading underscore."""
    names = getattr(module, "__all__", None)
    if not isinstance(names, (list, tuple)):
        names = dir(module)
    return sorted({n for n in names if isinstance(n, str) and not n.startswith("_")})


def collect(packages: tuple[str, ...]) -> dict[int, dict]:
    """Every public documented object, by identity: {id(obj): {"obj", "names": [(inherited, qualified name)],
    "kind", "package"}}; `inherited` is 1 for a method named through a subclass of the class defining it."""
    found: dict[int, dict] = {}

    def add(obj, name: str, kind: str, package: str, inherited: int = 0) -> None:
        entry = found.setdefault(id(obj), {"obj": obj, "names": [], "kind": kind, "package": package})
        entry["names"].append((inherited, name))

    classes = []
    for package in packages:
        for module in public_modules(package):
            for name in module_names(module):
                obj = quiet_getattr(module, name)
                kind = kind_of(obj) if obj is not None else None
                if kind is None or inspect.ismodule(obj) or not owned(obj, package) or documented(obj) is None:
                    continue
                add(obj, f"{module.__name__}.{name}", kind, package)
                if kind == "class":
                    classes.append((obj, f"{module.__name__}.{name}", package))
    for cls, qualname, package in classes:
        for name in sorted(n for n in dir(cls) if not n.startswith("_")):
            owner = next((k for k in cls.__mro__ if name in vars(k)), None)
            if owner is None or not owned(owner, package):
                continue
            raw = vars(owner)[name]
            obj = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            kind = "property" if inspect.isdatadescriptor(obj) else "method" if callable(obj) else None
            if kind is None or inspect.isclass(obj) or documented(obj) is None:
                continue
            add(obj, f"{qualname}.{name}", kind, package, int(owner is not cls))
    return found


def canonical(entry: dict) -> str:
    """The name an object's page has: through the class that defines it, under its own `__name__` (numpy.arcsin,
    not its alias numpy.asin), then the shortest."""
    own = getattr(entry["obj"], "__name__", None)
    return min(entry["names"], key=lambda n: (n[0], n[1].rsplit(".", 1)[-1] != own, n[1].count("."), len(n[1]),
                                              n[1]))[1]


def signature(obj, name: str) -> str:
    try:
        target = obj.fget if isinstance(obj, property) else obj
        return re.sub(r" at 0x[0-9a-f]+>", ">", f"{name}{inspect.signature(target)}")  # no memory addresses
    except (TypeError, ValueError):
        return name


def summary(text: str, short: str) -> str | None:
    """The docstring's first paragraph, skipping a leading signature line (C functions start with one)."""
    for para in re.split(r"\n\s*\n", text):
        line = " ".join(para.split())
        if line and not re.match(rf"^{re.escape(short)}\s*\(", line):
            return line
    return None


def build(packages: tuple[str, ...]) -> tuple[list[dict], list[dict], dict]:
    found = collect(packages)
    entries = sorted(((canonical(e), e) for e in found.values()), key=lambda x: x[0])
    alias = {name: cid for cid, e in entries for _, name in e["names"]}
    ids = {cid for cid, _ in entries}
    resolved_cache: dict[str, str | None] = {}

    def lookup(dotted: str) -> str | None:
        """A dotted name to an article id: a known public name, else the object it imports as."""
        if dotted in alias:
            return alias[dotted]
        if dotted not in resolved_cache:
            resolved_cache[dotted] = None
            if dotted.split(".", 1)[0] not in packages:  # import nothing outside the packages read
                return None
            parts = dotted.split(".")
            for i in range(len(parts), 0, -1):
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        obj = importlib.import_module(".".join(parts[:i]))
                except Exception:
                    continue
                for part in parts[i:]:
                    obj = quiet_getattr(obj, part)
                    if obj is None:
                        break
                if obj is not None:
                    entry = found.get(id(obj)) or found.get(id(getattr(obj, "__func__", None)))
                    resolved_cache[dotted] = canonical(entry) if entry else None
                break
        return resolved_cache[dotted]

    articles, gold = [], []
    counts = {"see_also_entries": 0, "entries_not_resolved": 0, "objects_with_see_also": 0}
    for cid, e in entries:
        text, names = parse_docstring(documented(e["obj"]))
        short = cid.rsplit(".", 1)[-1]
        package = e["package"]
        articles.append({"id": cid, "title": cid, "text": signature(e["obj"], cid) + "\n\n" + text,
                         "excerpt": summary(text, short), "url": URLS[package].format(id=cid),
                         "source": f"pypi:{DISTRIBUTIONS.get(package, package)}=={version(package)}",
                         "page_type": e["kind"]})
        if names:
            counts["objects_with_see_also"] += 1
            counts["see_also_entries"] += len(names)
            related, dropped = resolve_names(names, cid, lookup)
            counts["entries_not_resolved"] += dropped
            related = [r for r in related if r in ids]
            if related:
                gold.append({"id": cid, "related": related})
    return articles, gold, counts


def version(package: str) -> str:
    return metadata.version(DISTRIBUTIONS.get(package, package))


def main() -> None:
    if os.environ.get("PYTHONHASHSEED") != "0":  # docstrings built at import time show sets: fix their order
        os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--package", action="append", choices=sorted(URLS),
                        help=f"packages to read (default: {', '.join(PACKAGES)})")
    args = parser.parse_args()
    packages = tuple(args.package or PACKAGES)
    articles, gold, counts = build(packages)
    args.out.mkdir(parents=True, exist_ok=True)
    for name, rows in (("articles.jsonl", articles), ("gold.jsonl", gold)):
        (args.out / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    links = sum(len(g["related"]) for g in gold)
    kinds: dict[str, int] = {}
    for a in articles:
        kinds[a["page_type"]] = kinds.get(a["page_type"], 0) + 1
    per_package = {p: sum(a["id"].startswith(p + ".") for a in articles) for p in packages}
    stats = {"articles": len(articles), "articles_per_package": per_package, "kinds": kinds, "queries": len(gold),
             "gold_links": links, "mean_gold_per_query": round(links / max(1, len(gold)), 2), **counts,
             "packages": {p: version(p) for p in packages}, "python": sys.version.split()[0]}
    sys.path.insert(0, str(Path(__file__).resolve().parent / "manpages"))
    from extract import tfidf_baseline  # the shared corpora's TF-IDF baseline, as the manpages corpus reports it
    stats["tfidf"] = tfidf_baseline(articles, gold)
    (args.out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))


if __name__ == "__main__":
    main()
