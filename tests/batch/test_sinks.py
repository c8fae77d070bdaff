"""The batch's outputs are one table (batch.outputs.SINKS): writing them, clearing a killed run's leftovers and
telling whether a folder has them all read it, so a new output format is a writer and one entry."""

import csv

from recommender.batch import outputs
from recommender.batch.lastrun import outputs_exist
from recommender.batch.outputs import ArticleLinks, Sink, write_outputs
from recommender.batch.runrecord import RunRecord
from recommender.rank.results import Related


def links():
    a = Related(id="a", score=1.5, title="Grids", url="https://x.org/a/", published=None, source=None, kind="site")
    b = Related(id="b", score=0.75, title="Flexbox", url="https://x.org/b/", published=None, source=None,
                kind="site")
    return [ArticleLinks("a", "Grids", "https://x.org/a/", None, None, (b,)),
            ArticleLinks("b", "Flexbox", "https://x.org/b/", None, None, (a,))]


def write_csv(path, out):
    """A new format: one row per link (article, rank, linked article, score)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        rows = csv.writer(fh)
        rows.writerow(["article", "rank", "related", "score"])
        for item in out.items:
            rows.writerows([item.id, rank, link.id, link.score] for rank, link in enumerate(item.related, 1))


def record():
    return RunRecord(started="2026-12-05T00:00:00Z", ended="2026-12-05T00:01:00Z", status="ok", corpus="c",
                     index="i", out="o", engine="local")


def test_a_new_output_format_is_one_entry(tmp_path, monkeypatch):
    write_outputs(tmp_path, links(), record())
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(outputs.output_names()) and outputs_exist(tmp_path)
    monkeypatch.setattr(outputs, "SINKS", (*outputs.SINKS, Sink("related.csv", write_csv)))
    assert not outputs_exist(tmp_path)  # a folder without the new output is not complete
    (tmp_path / ".related.csv.x.tmp").write_text("left by a killed run")
    write_outputs(tmp_path, links(), record())
    assert outputs_exist(tmp_path) and not list(tmp_path.glob(".*.tmp"))
    assert (tmp_path / "related.csv").read_text().splitlines() == ["article,rank,related,score", "a,1,b,0.75",
                                                                    "b,1,a,1.5"]
    assert [r["id"] for r in outputs.read_jsonl(tmp_path)] == ["a", "b"]  # the others as before
