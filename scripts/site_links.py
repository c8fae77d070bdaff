"""What a reader of the site can follow, from a batch's outputs: the links of the site data
(related_by_path.json) by the kind of article they point to, the share a reader can follow, and what the run
left out per kind ([links] targets).

    python scripts/site_links.py --index IDX --out OUT

A link can be followed when it points to an article that has a page of its own (not a curated stub, which is
only an item of a related: list) and its href is either that article's own URL (http or https) or a path of
the site where the site publishes it: a Markdown or JSONL article (Hugo's /ID/ under [site] key = "url"), or
any article read from a file under the other keys. A plain-text file has no page, and a null href goes nowhere.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from recommender import Index  # noqa: E402
from recommender.batch.outputs import BY_PATH, read_runs  # noqa: E402
from recommender.rank.linking import NO_PAGE, STUB, page_kind  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()
    record = read_runs(args.out)[-1]
    key = (record.get("by_path") or {}).get("key", "url")
    data = json.loads((args.out / BY_PATH).read_text(encoding="utf-8"))
    with Index.open(args.index) as index:
        infos = {i.id: i for i in index.data.store.all()}
    kinds, followed = Counter(), Counter()
    for links in data.values():
        for link in links:
            target = infos[link["id"]]
            kind = page_kind(target)
            name = {STUB: "curated stub", NO_PAGE: "no URL, no page"}.get(kind, "URL" if target.url else "page at /ID/")
            kinds[name] += 1
            href = link.get("href")
            ok = kind != STUB and bool(href) and (
                (href.startswith(("http://", "https://")) and href == target.url)
                or (href.startswith("/") and (kind != NO_PAGE or key != "url")))
            followed[name] += ok
    total = sum(kinds.values())
    print(f"{args.out}: {len(data)} pages with a key, {total} links, [site] key {key}")
    for name, count in kinds.most_common():
        print(f"  to {name:16} {count:5}  followable {followed[name]}")
    print(f"followable: {sum(followed.values())} of {total} ({sum(followed.values()) / max(total, 1):.1%})")
    print(f"left out of every list by [links] targets (articles): {record.get('targets_left_out')}")
    print(f"page keys: {record.get('by_path')}")


if __name__ == "__main__":
    main()
