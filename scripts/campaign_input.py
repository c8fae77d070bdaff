"""Hostile and broken input against the real nightly batch (issue 24): seeded mutations of real-format files beside
good ones, run through `recommender batch` with a per-run timeout. Prints, over all runs:

* crashed: runs that exited with an error (and the mutations they held);
* hung: runs killed at the timeout; files whose read ran past the per-file budget (reported and skipped);
* data lost: good files whose articles are missing from the outputs;
* unpublished linked: links to an article whose file (or JSONL line) says `published: false` or `draft: true`.

    python scripts/campaign_input.py --work /tmp/campaign            # 307 mutations + 20 good files, 5 MB bodies
    python scripts/campaign_input.py --work /tmp/c --mutations 40 --small

Sources, read at run time: the seed articles (../shared/seeds, or --seeds) and the demo corpus (news with front
matter and `related:`, blog posts, plain text, JSONL). Every class the issue lists is among the mutations (bad
dates and zones, `!!int "abc"`, nesting past 1,000 levels in front matter, `related:` items and JSONL, an alias
bomb, 51 KB and 500 KB `*a ` bodies, unclosed <script> and <svg/>, 5 MB bodies, truncated front matter, CR-only
line ends, a NUL in a JSONL line, UTF-16), the rest are random edits (byte flips, cut, repeated or moved lines,
stray markup). Each mutated file gets ids of its own, so it never hides a good file as a duplicate; about a third
are made drafts first. tests/ingest/test_fuzz.py runs the same mutations, smaller, in the suite.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BAD_DATES = ["2023-13-45", "2023-02-29T10:00:00Z", "0000-00-00", "2023-03-19T11:52:00+99:00",
             "0001-01-01T00:00:00+05:00"]
POLICY = "[ranking]\ndense = 0\nwindow = 0\nlexical = 1\nmention = 0\n"  # links by words: the hashing vectors are noise
# nine levels of nine aliases: a few hundred bytes that expand to 9**9 (387 million) values
ALIAS_BOMB = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n' + "".join(
    f"{c}: &{c} [{', '.join(['*' + p] * 9)}]\n" for p, c in zip("abcdefgh", "bcdefghi"))


def load_sources(folders: list[Path]) -> list[tuple[str, str]]:
    """(file name, text) of every article file under the folders, in a stable order."""
    found = []
    for folder in folders:
        for path in sorted(folder.rglob("*")):
            if path.is_file() and path.suffix in {".md", ".txt", ".jsonl"} and not path.name.lower().startswith("readme"):
                found.append((path.name, path.read_text(encoding="utf-8")))
    return found


def front_matter_end(text: str) -> int:
    """Offset just after the closing `---` line of the front matter, or -1."""
    match = re.match(r"---[ \t]*\n.*?^---[ \t]*$\n?", text, re.S | re.M)
    return match.end() if match else -1


def make_unique(name: str, text: str, n: int) -> str:
    """The file's ids made its own: URLs on a host of their own, slugs and JSONL ids prefixed."""
    text = text.replace("://", f"://m{n}.")
    text = re.sub(r"(?m)^slug:[ \t]*", f"slug: m{n}-", text)
    return text.replace('"id": "', f'"id": "m{n}/')


def make_draft(name: str, text: str) -> str:
    if name.endswith(".jsonl"):
        return text.replace('{"id"', '{"published": false, "id"')
    if text.startswith("---\n"):
        text = re.sub(r"(?m)^(published|draft):.*\n", "", text, count=2)
        return "---\npublished: false\n" + text[4:]
    return text


def with_date(text: str, value: str, in_related: bool = False) -> str:
    pattern = r"(?m)^(    |  )?(publishedDateTime|date|published): *[0-9][^\n]*$"
    lines = list(re.finditer(pattern, text))
    lines = [m for m in lines if bool(m.group(1)) == in_related] or lines
    if not lines:
        return text.replace("---\n", f"---\ndate: {value}\n", 1)
    m = lines[0]
    return text[:m.start()] + f"{m.group(1) or ''}{m.group(2)}: {value}" + text[m.end():]


def with_body(text: str, body: str) -> str:
    end = front_matter_end(text)
    return (text[:end] if end > 0 else "") + body


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


def named_mutations(scale: float) -> list[tuple[str, object]]:
    """(class, how) of every input class the issue lists; scale 1 is the issue's size, smaller for the suite."""
    big = int(5_000_000 * scale)
    return ([("date", v) for v in BAD_DATES] + [("related-date", v) for v in BAD_DATES[:3]]
            + [("jsonl-date", v) for v in BAD_DATES[:3]]
            + [("int-abc", None), ("deep-front-matter", 5000), ("deep-related", 3000), ("deep-jsonl", 100_000),
               ("alias-bomb", None), ("emphasis", 51_000), ("emphasis", int(500_000 * max(scale, 0.2))),
               ("unclosed-script", 30_000), ("unclosed-svg", 30_000), ("big-body", big), ("big-body", big),
               ("truncated-front-matter", None), ("truncated-front-matter", None), ("cr-only", None),
               ("cr-only", None), ("nul-jsonl", None), ("utf-16", None), ("utf-16-no-bom", None),
               ("brackets", 50_000), ("blank-lines", 200_000)])


RANDOM_TOKENS = ["*", "_", "**", "[", "](", "`", "```\n", "<script>", "<svg/>", "<!--", "---\n", "\n---\n", ": ",
                 "&amp;", "é", "\x00", "\t", "\r", "{", "}", "!!int ", "*undefined", "&anchor ", "|", "\"", "'",
                 "\ufeff", "\u2028", "#", "> ", "- ", "\\"]


def random_mutation(rng: random.Random, text: str) -> str:
    op = rng.choice(["flip", "cut", "repeat-line", "drop-line", "swap-lines", "insert", "insert", "insert"])
    if op == "flip":
        data = bytearray(text.encode("utf-8", errors="surrogateescape"))
        for _ in range(rng.randint(1, 8)):
            data[rng.randrange(len(data))] ^= 1 << rng.randrange(8)
        return data.decode("utf-8", errors="surrogateescape")
    if op == "cut":
        return text[:rng.randrange(1, len(text))]
    lines = text.split("\n")
    i, j = rng.randrange(len(lines)), rng.randrange(len(lines))
    if op == "repeat-line":
        lines[i:i] = [lines[i]] * rng.randint(1, 50)
    elif op == "drop-line":
        del lines[i]
    elif op == "swap-lines":
        lines[i], lines[j] = lines[j], lines[i]
    else:
        at = rng.randrange(len(text) + 1)
        return text[:at] + rng.choice(RANDOM_TOKENS) * rng.choice([1, 1, 3, 200]) + text[at:]
    return "\n".join(lines)


def apply(kind: str, how: object, name: str, text: str, rng: random.Random) -> tuple[str, str | bytes]:
    """(file name, content) of one named mutation of a source file (chosen to fit the class)."""
    if kind in ("date", "related-date"):
        return name, with_date(text, str(how), in_related=kind == "related-date")
    if kind == "jsonl-date":
        return name, re.sub(r'"published": "[^"]*"', f'"published": "{how}"', text, count=1)
    if kind == "int-abc":
        return name, text.replace("---\n", '---\nquality: !!int "abc"\n', 1)
    if kind == "deep-front-matter":
        return name, text.replace("---\n", f"---\ndeep: {nested(how)}\n", 1)
    if kind == "deep-related":
        return name, re.sub(r"(?m)^  - title:", f"  - nested: {nested(how)}\n    title:", text, count=1)
    if kind == "deep-jsonl":
        line = json.dumps({"id": f"deep-{rng.randrange(10**6)}", "title": "Deep", "text": "x"})
        return name, text + line.replace('"x"', nested(how)) + "\n"
    if kind == "alias-bomb":
        return name, text.replace("---\n", "---\n" + ALIAS_BOMB, 1).replace("\ntitle:", "\ntitle: *i\nold_title:", 1)
    if kind == "emphasis":
        return name, with_body(text, "*a " * (how // 3))
    if kind == "unclosed-script":
        return name, with_body(text, "Some words. <script>alert(1)\n" * (how // 30))
    if kind == "unclosed-svg":
        return name, with_body(text, "Words <svg/> more words\n" * (how // 24))
    if kind == "big-body":
        body = with_body(text, "")
        prose = text[len(body):] if len(text) > len(body) + 200 else "Long text about many things. " * 20 + "\n\n"
        return name, body + prose * (how // len(prose))
    if kind == "truncated-front-matter":
        end = front_matter_end(text)
        return name, text[:rng.randrange(12, max(13, end - 5))]
    if kind == "cr-only":
        return name, text.replace("\n", "\r")
    if kind == "nul-jsonl":
        lines = text.split("\n")
        lines[1] = lines[1][:20] + "\x00" + lines[1][20:]
        return name, "\n".join(lines)
    if kind == "utf-16":
        return name, text.encode("utf-16")
    if kind == "utf-16-no-bom":
        return name, text.encode("utf-16-le")
    if kind == "brackets":
        return name, with_body(text, "[" * how)
    if kind == "blank-lines":
        return name, with_body(text, "\n" * how + "The end.")
    raise ValueError(kind)


def fits(kind: str, name: str, text: str) -> bool:
    jsonl = name.endswith(".jsonl")
    if kind in ("jsonl-date", "deep-jsonl", "nul-jsonl"):
        return jsonl
    if kind in ("related-date", "deep-related"):
        return "\nrelated:" in text
    if kind in ("cr-only", "utf-16", "utf-16-no-bom"):
        return True
    return not jsonl and text.startswith("---\n")


def build_corpus(folder: Path, sources: list[tuple[str, str]], mutations: int, good: int, scale: float,
                 seed: int) -> dict:
    """Write `good` unchanged files under folder/a-good and `mutations` mutated ones under folder/mutated (one
    of each named class first, then random edits); return what was written."""
    rng = random.Random(seed)
    shutil.rmtree(folder, ignore_errors=True)
    (folder / "a-good").mkdir(parents=True)
    (folder / "mutated").mkdir()
    goods = []
    for i, (name, text) in enumerate((sources * (good // max(len(sources), 1) + 1))[:good]):
        path = folder / "a-good" / f"g{i:03d}-{name}"
        path.write_text(make_unique(name, text, 1000 + i) if i >= len(sources) else text, encoding="utf-8")
        goods.append(path.name)
    plan = named_mutations(scale)
    written = []
    for n in range(mutations):
        if n < len(plan):
            kind, how = plan[n]
            candidates = [(nm, t) for nm, t in sources if fits(kind, nm, t)]
        else:
            kind, how, candidates = "random", None, sources
        name, text = rng.choice(candidates)
        text = make_unique(name, text, n)
        if rng.random() < 0.35:
            text = make_draft(name, text)
        if kind == "random":
            for _ in range(rng.randint(1, 3)):
                text = random_mutation(rng, text)
            content: str | bytes = text
        else:
            name, content = apply(kind, how, name, text, rng)
        target = folder / "mutated" / f"m{n:03d}-{kind}-{name}"
        if isinstance(content, bytes):
            target.write_bytes(content)
        else:
            target.write_bytes(content.encode("utf-8", errors="surrogateescape"))
        written.append({"file": target.name, "class": kind})
    return {"good": goods, "mutated": written}


# --- checks ---------------------------------------------------------------------------------------------


def declared_drafts(path: Path) -> list[int] | bool:
    """Whether a file says it is unpublished, read independently of the reader: front matter (up to its closing
    line, or the whole text when it has none) with `published: false` or `draft: true`; for JSONL, the numbers of
    the lines that parse and say so."""
    raw = path.read_bytes()
    text = raw.decode("utf-16") if raw[:2] in (b"\xff\xfe", b"\xfe\xff") else raw.decode("utf-8", "replace")
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    if path.suffix == ".jsonl":
        lines = []
        for n, line in enumerate(text.split("\n"), start=1):
            try:
                record = json.loads(line)
            except (ValueError, RecursionError):
                continue
            if isinstance(record, dict) and (record.get("published") is False or record.get("draft") is True):
                lines.append(n)
        return lines
    if not text.startswith("---\n"):
        return False
    end = front_matter_end(text)
    head = text[:end] if end > 0 else text
    return re.search(r"(?m)^(published:[ \t]*false|draft:[ \t]*true)[ \t]*$", head) is not None


def draft_ids(folder: Path) -> set[str]:
    """Ids of the articles read from files (or JSONL lines) that declare themselves unpublished."""
    from recommender.ingest.reader import iter_corpus_files, read_file

    ids: set[str] = set()
    for path in iter_corpus_files(folder):
        declared = declared_drafts(path)
        if not declared:
            continue
        articles, _ = read_file(path, folder)
        for article in articles:
            if article.kind == "related":
                continue
            if article.kind != "jsonl" or _line_of(path, article.id) in declared:
                ids.add(article.id)
    return ids


def _line_of(path: Path, article_id: str) -> int | None:
    for n, line in enumerate(path.read_bytes().split(b"\n"), start=1):
        try:
            if str(json.loads(line).get("id", "")).strip() == article_id:
                return n
        except (ValueError, RecursionError, AttributeError):
            continue
    return None


def good_ids(root: Path, folder: str = "a-good") -> set[str]:
    """Ids of the articles of the good files (ids from a path are relative to the corpus root)."""
    from recommender.ingest.reader import iter_corpus_files, read_file

    return {a.id for path in iter_corpus_files(root / folder) for a in read_file(path, root)[0] if a.kind != "related"}


def read_times(folder: Path) -> list[tuple[float, str, list[str]]]:
    """(seconds, file, problems) of reading each file in this process, slowest first."""
    from recommender.ingest.reader import iter_corpus_files, read_file

    times = []
    for path in iter_corpus_files(folder):
        start = time.perf_counter()
        _, problems = read_file(path, folder)
        times.append((time.perf_counter() - start, path.name, [str(p) for p in problems]))
    return sorted(times, reverse=True)


def outputs(out: Path) -> tuple[set[str], set[str]]:
    """(ids of the articles written, ids linked to) from related.jsonl."""
    written, linked = set(), set()
    for line in (out / "related.jsonl").read_text(encoding="utf-8").splitlines():
        item = json.loads(line)
        written.add(item["id"])
        linked.update(link["id"] for link in item["related"])
    return written, linked


def check_run(folder: Path, out: Path, expected: set[str]) -> dict:
    written, linked = outputs(out)
    return {"data_lost": sorted(expected - written), "unpublished_linked": sorted(draft_ids(folder) & linked)}


# --- the campaign ---------------------------------------------------------------------------------------


def run_campaign(args) -> dict:
    seeds = [p for p in [args.seeds] if p and p.exists()]
    sources = load_sources(seeds + [ROOT / "demo"])
    start = time.perf_counter()
    corpus = args.work / "corpus"
    written = build_corpus(corpus, sources, args.mutations, args.good, args.scale, args.seed)
    expected = good_ids(corpus)
    policy = args.work / "recommender.toml"
    policy.write_text(POLICY)
    groups = [written["mutated"][i::args.runs] for i in range(args.runs)]
    totals = {"crashed": 0, "crashed_mutations": 0, "hung": 0, "data_lost": 0, "unpublished_linked": 0,
              "runs": args.runs, "mutations": len(written["mutated"]), "good": len(written["good"])}
    details = []
    for r, group in enumerate(groups):
        run_dir = args.work / f"run{r}"
        shutil.rmtree(run_dir, ignore_errors=True)
        shutil.copytree(corpus / "a-good", run_dir / "corpus" / "a-good")
        (run_dir / "corpus" / "mutated").mkdir()
        for item in group:
            shutil.copy(corpus / "mutated" / item["file"], run_dir / "corpus" / "mutated" / item["file"])
        command = [sys.executable, "-m", "recommender.cli", "--quiet", "batch", str(run_dir / "corpus"),
                   "--index", str(run_dir / "index"), "--out", str(run_dir / "out"), "--model", "hashing",
                   "--policy", str(policy), "-k", "10", "--min-score", "0", "--json"]
        began = time.perf_counter()
        try:
            proc = subprocess.run(command, capture_output=True, text=True, timeout=args.timeout)
        except subprocess.TimeoutExpired:
            totals["hung"] += 1
            details.append({"run": r, "hung": True})
            continue
        seconds = time.perf_counter() - began
        if proc.returncode != 0:
            totals["crashed"] += 1
            totals["crashed_mutations"] += len(group)
            details.append({"run": r, "crashed": proc.stderr.strip().splitlines()[-1:]})
            continue
        found = check_run(run_dir / "corpus", run_dir / "out", expected)
        record = json.loads(proc.stdout)
        totals["data_lost"] += len(found["data_lost"])
        totals["unpublished_linked"] += len(found["unpublished_linked"])
        details.append({"run": r, "seconds": round(seconds, 1), "articles": record.get("articles"),
                        "skipped": record.get("skipped"), "warnings": record.get("warnings"), **found})
    slow = read_times(corpus / "mutated")
    totals["over_read_budget"] = sum(1 for _, _, problems in slow if any("budget" in p for p in problems))
    totals["slowest_reads"] = [(round(s, 2), name) for s, name, _ in slow[:5]]
    totals["seconds"] = round(time.perf_counter() - start, 1)
    return {"totals": totals, "runs": details}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", type=Path, required=True, help="work folder (wiped)")
    parser.add_argument("--seeds", type=Path, default=ROOT.parent.parent / "shared" / "seeds")
    parser.add_argument("--mutations", type=int, default=307)
    parser.add_argument("--good", type=int, default=20)
    parser.add_argument("--runs", type=int, default=8, help="batches the mutations are spread over")
    parser.add_argument("--timeout", type=float, default=1800, help="seconds per batch run")
    parser.add_argument("--scale", type=float, default=1.0, help="size of the big bodies (1: 5 MB)")
    parser.add_argument("--small", action="store_const", const=0.05, dest="scale")
    parser.add_argument("--seed", type=int, default=24)
    result = run_campaign(parser.parse_args())
    for run in result["runs"]:
        print(json.dumps(run), file=sys.stderr)
    totals = result["totals"]
    print(f"crashed {totals['crashed']} (runs; {totals['crashed_mutations']} mutations in them), hung {totals['hung']}, "
          f"data lost {totals['data_lost']}, unpublished linked {totals['unpublished_linked']}; "
          f"{totals['mutations']} mutations + {totals['good']} good files in {totals['runs']} runs, "
          f"{totals['seconds']} s")
    print(json.dumps(totals))


if __name__ == "__main__":
    main()
