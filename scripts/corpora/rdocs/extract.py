"""Build the `rdocs` evaluation corpus: the help pages of R's base and recommended packages as Debian ships them
(`r-base-core`, `r-recommended`), each page's hand-written \\seealso section as its curated related list.

    apt-get install r-base-core r-recommended
    python scripts/corpora/rdocs/extract.py --out /work/corpora/rdocs

Writes OUT/articles.jsonl (one help page a line: id "stats/lm" (package/Rd file), title "lm {stats}: Fitting
Linear Models", text, excerpt, url, source, page_type = the package), OUT/gold.jsonl (page -> the pages its See
Also links to that are in the corpus) and OUT/stats.json. `extract.R` beside this script reads every page with
`tools::Rd_db` and renders it with `tools::Rd2txt` without its See Also, Examples, References, Author, Keyword and
Concept sections, so the gold is not in the text (links in the description and arguments stay, as a site's
in-text links stay in the other corpora). A See Also entry is a `\\link`: `\\link{topic}` resolves through the
topics (\\alias) of the page's own package first, then of R's default packages, then of the others;
`\\link[=topic]{text}` the same for `topic`; `\\link[pkg]{x}` to pkg's file x, else its topic x;
`\\link[pkg:file]{x}` to pkg's file; `\\linkS4class{C}` to the topic `C-class`. Links that resolve to no page of
the corpus (other packages, CRAN) are dropped and counted. Deterministic for the same package versions.
"""

from __future__ import annotations

import argparse
import collections
import importlib.util
import re
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
PACKAGES = ("r-base-core", "r-recommended")
# R's search path at start-up (after the package itself): where an unqualified \link{topic} is looked up first
DEFAULT_PACKAGES = ("base", "stats", "graphics", "grDevices", "utils", "datasets", "methods")
HEADER = re.compile(r"^\S+\s+package:\S+\s+R Documentation$")  # Rd2txt's first line: topic, package


def read_pages(folder: Path) -> list[dict]:
    pages = []
    for line in (folder / "pages.tsv").read_text(encoding="utf-8", errors="replace").split("\n"):
        if not line:
            continue
        package, file, name, title, aliases, links = line.split("\t")
        text = (folder / "text" / package / f"{file}.txt").read_text(encoding="utf-8", errors="replace")
        pages.append({"package": package, "file": file, "name": name, "title": title,
                      "aliases": [a for a in aliases.split("\x1f") if a],
                      "links": [tuple(link.split("\x1e", 1)) for link in links.split("\x1f") if "\x1e" in link],
                      "text": text})
    return pages


def body_text(page: dict) -> tuple[str, str | None]:
    """The rendered page without its title line, and its first Description paragraph (the excerpt)."""
    lines = page["text"].split("\n")
    while lines and (not lines[0].strip() or HEADER.match(lines[0].strip())
                     or lines[0].strip() == page["title"].strip()):
        lines = lines[1:]
    text = re.sub(r"\n{3,}", "\n\n", "\n".join(line.rstrip() for line in lines)).strip()
    match = re.search(r"^Description:\s*\n\s*\n?(.+?)(?:\n\s*\n|\Z)", text, flags=re.S | re.M)
    excerpt = " ".join(match.group(1).split()) if match else None
    return text, excerpt


class Resolver:
    """A See Also link (option, target) of a page of `package` -> the id of the page it names, or None."""

    def __init__(self, pages: list[dict]):
        self.files = {(p["package"], p["file"]): f"{p['package']}/{p['file']}" for p in pages}
        self.topics: dict[str, dict[str, str]] = collections.defaultdict(dict)
        for p in pages:
            for alias in p["aliases"] + [p["name"]]:
                self.topics[p["package"]].setdefault(alias, f"{p['package']}/{p['file']}")
        others = sorted(set(self.topics) - set(DEFAULT_PACKAGES))
        self.order = [pkg for pkg in DEFAULT_PACKAGES if pkg in self.topics] + others

    def topic(self, package: str, topic: str) -> str | None:
        for pkg in [package] + [p for p in self.order if p != package]:
            if topic in self.topics[pkg]:
                return self.topics[pkg][topic]
        return None

    def __call__(self, package: str, option: str, target: str) -> str | None:
        option = option.strip()
        if not option:
            return self.topic(package, target)
        if option.startswith("="):
            return self.topic(package, option[1:].strip())
        pkg, _, file = option.partition(":")
        if file:
            return self.files.get((pkg, file))
        return self.files.get((pkg, target)) or self.topics.get(pkg, {}).get(target)


def gold_lists(pages: list[dict], resolve: Resolver) -> tuple[list[dict], dict]:
    lists, entries, outside = {}, 0, 0
    for p in pages:
        key, related = f"{p['package']}/{p['file']}", []
        for option, target in p["links"]:
            entries += 1
            found = resolve(p["package"], option, target)
            if found is None:
                outside += 1
            elif found != key and found not in related:
                related.append(found)
        lists[key] = related
    # no boilerplate filter: the most linked pages (stats/lm, lattice/xyplot: 37-46 lists) are chosen links,
    # not a site-wide "see also" entry; stats.json lists them
    counts = collections.Counter(t for related in lists.values() for t in related)
    gold = [{"id": key, "related": related} for key, related in lists.items() if related]
    return gold, {"see_also_links": entries, "links_outside_corpus": outside,
                  "most_linked": dict(counts.most_common(10))}


def manpages_extract():
    """scripts/corpora/manpages/extract.py, whose corpus writer (files, stats, TF-IDF baseline) this corpus shares."""
    spec = importlib.util.spec_from_file_location("manpages_extract", HERE.parent / "manpages" / "extract.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as work:
        subprocess.run(["Rscript", str(HERE / "extract.R"), work], check=True, capture_output=True)
        pages = read_pages(Path(work))
    print(f"{len(pages)} help pages", file=sys.stderr)
    articles = []
    for p in pages:
        text, excerpt = body_text(p)
        articles.append({"id": f"{p['package']}/{p['file']}", "title": f"{p['name']} {{{p['package']}}}: {p['title']}",
                         "text": text, "excerpt": excerpt,
                         "url": f"https://stat.ethz.ch/R-manual/R-patched/library/{p['package']}/html/{p['file']}.html",
                         "source": f"r:{p['package']}/man/{p['file']}.Rd", "page_type": p["package"]})
    gold, counts = gold_lists(pages, Resolver(pages))
    manpages_extract().write_corpus(args.out, articles, gold, PACKAGES, counts)


if __name__ == "__main__":
    main()
