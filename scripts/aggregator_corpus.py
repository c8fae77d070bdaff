"""Write a folder of seed-format news items, as an aggregator's site holds them: the five seeds, the demo's news
items, the demo's feed items rewritten as news items (their `url` becomes `webUrl`, the source's address), and a
few items written for the checks of issue 26: two videos whose URLs differ only by `?v=`, two issues of a column
with one title, and one off-topic item (a power-supply product note among general news).

    python scripts/aggregator_corpus.py OUT_FOLDER [--seeds /work/shared/seeds]

Then `recommender batch OUT_FOLDER ...` and `python scripts/site_links.py OUT` for the figures.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

EXTRA = [  # (file name, title, webUrl, date, provider, topics, excerpt)
    ("video-comet", "Watch: the comet over the mountains in time-lapse", "https://www.youtube.com/watch?v=c0met01",
     "2024-10-12T10:00:00Z", "YouTube", ["Space"],
     "A time-lapse of the bright comet setting behind the mountains, its tail visible to the naked eye."),
    ("video-lander", "Watch: the lunar lander's final descent", "https://www.youtube.com/watch?v=lander02",
     "2025-03-03T08:00:00Z", "YouTube", ["Space"],
     "Footage from the lander's descent camera as it touched down near the Moon's south pole."),
    ("column-12", "Money matters: the weekly column", "https://money-weekly.example.com/column/12",
     "2024-11-01T07:00:00Z", "Money Weekly", ["Money"],
     "This week: mortgage rates, fixed deals and whether renters can still save for a deposit."),
    ("column-13", "Money Matters — the weekly column", "https://money-weekly.example.com/column/13",
     "2024-11-08T07:00:00Z", "Money Weekly", ["Money"],
     "This week: lenders cut mortgage rates again and savings accounts pay less; what it means for borrowers."),
    ("power-supplies", "Compact 800-W AC-DC Supplies", "https://power-electronics.example.com/2025/800w-supplies",
     "2025-01-20T09:00:00Z", "Power Electronics News", ["Components"],
     "A series of 800 W AC-DC power supplies in a 3 x 5 inch footprint reaches 94% efficiency with conduction "
     "cooling, 5 V standby rail, PMBus control and IEC 62368-1 and 60601-1 approvals for industrial and medical "
     "equipment."),
]


def news_item(title: str, url: str, date: str, provider: str, topics: list[str], excerpt: str) -> str:
    domain = url.split("/")[2]
    lines = ["---", "category: news", f"title: {json.dumps(title, ensure_ascii=False)}",
             f"excerpt: {json.dumps(excerpt, ensure_ascii=False)}", f"publishedDateTime: {date}",
             f'originalUrl: "{url}"', f'webUrl: "{url}"', "type: article", "published: true", "",
             "provider:", f"  name: {json.dumps(provider)}", f"  domain: {domain}", "", "topics:",
             *[f"  - {t}" for t in topics], "---", ""]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--seeds", type=Path, default=Path("/work/shared/seeds"))
    args = parser.parse_args()
    news = args.out / "news"
    news.mkdir(parents=True, exist_ok=True)
    if args.seeds.exists():
        shutil.copytree(args.seeds, args.out / "seeds", dirs_exist_ok=True)
    for path in sorted((ROOT / "demo" / "news").glob("*.md")):
        shutil.copy(path, news / path.name)
    for line in (ROOT / "demo" / "feed.jsonl").read_text(encoding="utf-8").splitlines():
        if line.strip():
            r = json.loads(line)
            name = r["id"].split("/")[-1]
            (news / f"{name}.md").write_text(news_item(r["title"], r["url"], r["published"], r["source"],
                                                       r.get("tags", []), r.get("excerpt") or r["text"][:300]),
                                             encoding="utf-8")
    for name, *fields in EXTRA:
        (news / f"{name}.md").write_text(news_item(*fields), encoding="utf-8")
    print(f"{args.out}: {len(list(args.out.rglob('*.*')))} files")


if __name__ == "__main__":
    main()
