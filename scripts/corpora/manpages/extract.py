"""Build the `manpages` evaluation corpus: the Linux man-pages project's pages as Debian ships them (packages
`manpages` and `manpages-dev`), each page's hand-written SEE ALSO section as its curated related list.

    apt-get install manpages manpages-dev groff-base
    python scripts/corpora/manpages/extract.py --out /work/corpora/manpages

Writes OUT/articles.jsonl (one page a line: id "open.2", title, text, excerpt, url, source, page_type = the man
section), OUT/gold.jsonl (page -> the pages its SEE ALSO names that are in the corpus), OUT/stats.json and
OUT/tfidf_baseline.json. The text is the page rendered by groff (`-man -Tutf8`, no line wrapping), without its
SEE ALSO and COLOPHON sections and its header and footer lines, so the gold is not in the text. A SEE ALSO entry
names a page by name and section ("stat(2)"); it resolves through symlinks, `.so` stubs and the names a page's
NAME line lists (fstat(2) -> stat.2). Entries outside the corpus (man1, man8, other packages) are dropped and
counted. Deterministic: the same packages give the same files. See README.md beside this script.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import re
import subprocess
import sys
from pathlib import Path

PACKAGES = ("manpages", "manpages-dev")
SECTIONS = ("2", "3", "4", "5", "7")  # the project's library/kernel/file-format/overview pages (man1/man8: few)
REF = re.compile(r"([A-Za-z_][\w.:+-]*)\s*\((\d[a-z]*)\)")
HEADING = re.compile(r"^[A-Z][A-Z0-9 ,/&()-]*$")


def package_files() -> list[Path]:
    out = subprocess.run(["dpkg", "-L", *PACKAGES], capture_output=True, text=True, check=True).stdout.split()
    pattern = re.compile(r"/usr/share/man/man(\d)/[^/]+\.\d\w*\.gz$")
    return sorted(Path(p) for p in out if pattern.search(p) and pattern.search(p).group(1) in SECTIONS)


def page_key(path: Path) -> str:
    """open.2.gz -> open.2"""
    return path.name[:-3] if path.name.endswith(".gz") else path.name


def read_source(path: Path) -> str:
    with gzip.open(path, "rt", encoding="utf-8", errors="replace") as f:
        return f.read()


def render(source: str) -> str:
    result = subprocess.run(["groff", "-t", "-man", "-Tutf8", "-rLL=2000n", "-rHY=0", "-P-cbou"],
                            input=source, capture_output=True, text=True)
    return result.stdout


def sections(rendered: str) -> list[tuple[str, list[str]]]:
    """(heading, lines) of a rendered page, header and footer lines left out."""
    lines = [line.rstrip() for line in rendered.splitlines()]
    content = [i for i, line in enumerate(lines) if line.strip()]
    if len(content) < 2:
        return []
    lines = lines[content[0] + 1:content[-1]]
    out: list[tuple[str, list[str]]] = []
    for line in lines:
        if line and not line[0].isspace() and HEADING.match(line.strip()):
            out.append((line.strip(), []))
        elif out:
            out[-1][1].append(line.strip())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    files = package_files()
    alias: dict[str, str] = {}  # name.section -> page key
    pages: dict[str, tuple[Path, str]] = {}
    for path in files:
        real = Path(os.path.realpath(path))
        if real != path:
            alias[page_key(path)] = page_key(real)
            continue
        source = read_source(path)
        stub = re.match(r"\s*\.so\s+(\S+)", source)
        if stub and len(source.strip().splitlines()) <= 3:
            alias[page_key(path)] = Path(stub.group(1)).name.removesuffix(".gz")
            continue
        pages[page_key(path)] = (path, source)
    print(f"{len(pages)} pages, {len(alias)} aliases", file=sys.stderr)
    articles, see_also = [], {}
    for key in sorted(pages):
        path, source = pages[key]
        parts = sections(render(source))
        by_name = {h: body for h, body in parts}
        name_line = " ".join(x for x in by_name.get("NAME", []) if x)
        names, _, summary = name_line.partition(" - ")
        section = key.rsplit(".", 1)[1]
        for name in re.split(r",\s*", names):
            if name.strip():
                alias.setdefault(f"{name.strip()}.{section}", key)
        see_also[key] = [f"{n}.{s}" for n, s in REF.findall(" ".join(by_name.get("SEE ALSO", [])))]
        body = [f"{h}\n" + "\n".join(b) for h, b in parts if h not in ("SEE ALSO", "COLOPHON")]
        text = re.sub(r"\n{3,}", "\n\n", "\n\n".join(body)).strip()
        title = f"{key.rsplit('.', 1)[0]}({section})" + (f": {summary.strip()}" if summary.strip() else "")
        articles.append({"id": key, "title": title, "text": text, "excerpt": summary.strip() or None,
                         "url": f"https://man7.org/linux/man-pages/man{section[0]}/{key}.html",
                         "source": f"debian:{path.relative_to('/usr/share/man')}", "page_type": f"man{section[0]}"})
    ids = {a["id"] for a in articles}

    def resolve(ref: str) -> str | None:
        for _ in range(5):
            if ref in ids:
                return ref
            if ref not in alias:
                return None
            ref = alias[ref]
        return None

    gold, dropped, entries = [], 0, 0
    for key in sorted(see_also):
        related = []
        for ref in see_also[key]:
            entries += 1
            target = resolve(ref)
            if target is None:
                dropped += 1
            elif target != key and target not in related:
                related.append(target)
        if related:
            gold.append({"id": key, "related": related})
    write_corpus(args.out, articles, gold, PACKAGES, {"see_also_entries": entries, "entries_outside_corpus": dropped})


def write_corpus(out: Path, articles: list[dict], gold: list[dict], packages, counts: dict) -> dict:
    """OUT/articles.jsonl, OUT/gold.jsonl and OUT/stats.json (counts, the Debian packages' versions, the TF-IDF
    baseline), the stats printed; shared with scripts/corpora/rdocs/extract.py."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "articles.jsonl", "w", encoding="utf-8") as f:
        for a in articles:
            f.write(json.dumps(a, ensure_ascii=False) + "\n")
    with open(out / "gold.jsonl", "w", encoding="utf-8") as f:
        for g in gold:
            f.write(json.dumps(g) + "\n")
    links = sum(len(g["related"]) for g in gold)
    versions = subprocess.run(["dpkg-query", "-W", *packages], capture_output=True, text=True).stdout.split("\n")
    stats = {"articles": len(articles), "queries": len(gold), "gold_links": links,
             "mean_gold_per_query": round(links / max(1, len(gold)), 2), **counts,
             "packages": [v for v in versions if v]}
    stats["tfidf"] = tfidf_baseline(articles, gold)
    (out / "stats.json").write_text(json.dumps(stats, indent=2) + "\n")
    print(json.dumps(stats, indent=2))
    return stats


def tfidf_baseline(articles: list[dict], gold: list[dict]) -> dict:
    """The shared corpora's TF-IDF baseline (../shared/corpora/README.md): recall@10 and MRR over the corpus."""
    import numpy as np
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(sublinear_tf=True, stop_words="english", min_df=2, max_df=0.5,
                          token_pattern=r"(?u)\b\w[\w-]*\w\b|\b\w\b")
    M = vec.fit_transform([a["title"] + " \n" + a["text"][:20000] for a in articles])
    row = {a["id"]: i for i, a in enumerate(articles)}
    recalls, rr = [], []
    for g in gold:
        q = row[g["id"]]
        s = (M @ M[q].T).toarray().ravel()
        s[q] = -np.inf
        order = np.argsort(-s, kind="stable")
        rank = {int(r): i + 1 for i, r in enumerate(order)}
        ranks = [rank[row[t]] for t in g["related"]]
        recalls.append(sum(r <= 10 for r in ranks) / len(ranks))
        rr.append(1 / min(ranks))
    return {"recall@10": round(float(np.mean(recalls)), 4), "mrr": round(float(np.mean(rr)), 4)}


if __name__ == "__main__":
    main()
