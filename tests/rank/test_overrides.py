"""Editorial overrides from the CLI, respected by `related`, the batch and evaluation; explanations; syndicated
copies collapsed end to end."""

import json

from click.testing import CliRunner

from recommender import Index, build_index
from recommender.batch.nightly import run_batch
from recommender.cli import cli
from recommender.evaluate.evaluation import evaluate_index
from recommender.rank.policy import TARGETS, Links, Policy


def invoke(*args):
    result = CliRunner().invoke(cli, [str(a) for a in args])
    return result


def related_ids(folder, ref, *extra):
    result = invoke("related", ref, "--index", folder, "--json", "-k", "4", *extra)
    assert result.exit_code == 0, result.output
    return [r["id"] for r in json.loads(result.stdout)["related"]], json.loads(result.stdout)["related"]


def test_pin_block_unpin_from_the_cli(index_copy, lexical_policy):
    def related_ids(folder, ref, *extra):  # ranked by words: several links in the fixture corpus
        return globals()["related_ids"](folder, ref, "--policy", lexical_policy, *extra)

    before, _ = related_ids(index_copy, "text/marathon")
    ids = Index.open(index_copy).data.store.ids()
    target = next(i for i in reversed(ids) if i not in before and i != "text/marathon")
    assert invoke("pin", "text/marathon", target, "--index", index_copy, "--note", "editor's pick",
                  "--policy", lexical_policy).exit_code == 0
    pinned, items = related_ids(index_copy, "text/marathon")
    assert pinned[0] == target and items[0]["pinned"] is True and len(pinned) == 4
    assert related_ids(index_copy, "text/marathon", "--no-overrides")[0] == before

    blocked = before[0]
    assert invoke("block", "*", blocked, "--index", index_copy).exit_code == 0
    for info in Index.open(index_copy).data.store.all():
        if info.id != blocked:
            assert blocked not in related_ids(index_copy, info.id)[0]
    listed = invoke("overrides", "--index", index_copy, "--json")
    assert [json.loads(line)["action"] for line in listed.stdout.splitlines()] == ["block", "pin"]

    assert invoke("unpin", "text/marathon", target, "--index", index_copy).exit_code == 0
    wrong = invoke("unpin", "*", blocked, "--index", index_copy)  # a block is removed by unblock, and says so
    assert wrong.exit_code == 1 and f"{blocked} is blocked on *, not pinned: unblock it instead" in wrong.output
    assert invoke("unblock", "*", blocked, "--index", index_copy).exit_code == 0
    assert related_ids(index_copy, "text/marathon")[0] == before
    missing = invoke("unpin", "text/marathon", target, "--index", index_copy)
    assert missing.exit_code == 1 and f"no pin of {target} on text/marathon" in missing.output
    assert "no block of" in invoke("unblock", "*", blocked, "--index", index_copy).output
    unknown = invoke("pin", "text/marathon", "no/such-article", "--index", index_copy)
    assert unknown.exit_code == 1 and "no article 'no/such-article'" in unknown.output


def test_batch_and_evaluation_respect_overrides(corpus_dir, tmp_path):
    idx, out = tmp_path / "idx", tmp_path / "out"
    policy = Policy().with_links(k=3, targets=TARGETS)  # the curated lists name curated stubs
    run_batch(corpus_dir, idx, out, policy, model="hashing", progress=False)
    with Index.open(idx) as index:
        gold = index.data.store.curated()
        query, wanted = next(iter(gold.items()))
        plain = evaluate_index(index, baselines=())
    assert [s.system for s in plain.systems] == ["system", "dense"]
    every = tmp_path / "every.toml"  # the policy of the batch: every target (pin checks the target against it)
    every.write_text('[links]\nk = 3\ntargets = ["site", "other-domains", "no-url", "stubs"]\n')
    assert invoke("pin", query, wanted[0], "--index", idx, "--policy", every).exit_code == 0
    record = run_batch(corpus_dir, idx, out, policy, model="hashing", progress=False)
    assert record.overrides == 1 and record.pinned_links == 1
    lines = {json.loads(l)["id"]: json.loads(l) for l in (out / "related.jsonl").read_text().splitlines()}
    assert lines[query]["related"][0] == {**lines[query]["related"][0], "id": wanted[0], "pinned": True}
    with Index.open(idx) as index:
        edited = evaluate_index(index, baselines=())
    by_name = {s.system: s for s in edited.systems}
    assert set(by_name) == {"system", "system+overrides", "dense"}
    ranks = {o.query: o.gold_ranks for o in by_name["system+overrides"].per_query}
    assert ranks[query][wanted[0]] == 1
    assert by_name["system"].overall == plain.system("system").overall  # without overrides: unchanged


def test_explain_shows_parts_terms_and_passage(hashing_index):
    result = invoke("related", "text/match-report", "--index", hashing_index, "-k", "2", "--explain", "--json")
    assert result.exit_code == 0, result.output
    first = json.loads(result.stdout)["related"][0]
    assert set(first["parts"]) == {"dense", "window", "lexical", "mention"}
    assert {"shared_terms", "mentions", "passage", "passage_score"} <= set(first["explanation"])
    table = invoke("related", "text/match-report", "--index", hashing_index, "-k", "2", "--explain")
    assert "why (ranking: default (fixed weights" in table.stdout and "best passage" in table.stdout \
        and "dense z" in table.stdout


def test_syndicated_copies_take_one_slot(tmp_path):
    story = ("The city council approved a new cycle lane network on Tuesday after a long debate about parking, "
             "shops and safety on the high street. ") * 3
    rows = [
        {"id": "wire/original", "title": "Council backs cycle lanes", "text": story, "published": "2024-05-01"},
        {"id": "paper-a/copy", "title": "Council backs cycle lanes", "text": story, "published": "2024-05-02"},
        {"id": "paper-b/copy", "title": "Council backs cycle lanes", "text": story + " (syndicated)",
         "published": "2024-05-03"},
        {"id": "local/parking", "title": "Shops fear loss of parking on the high street",
         "text": "Shop owners on the high street say the cycle lanes will cost them parking and customers.",
         "published": "2024-05-04"},
        {"id": "local/bus", "title": "Bus routes change in June", "text": "Two bus routes change in June.",
         "published": "2024-05-05"},
    ]
    corpus = tmp_path / "feed.jsonl"
    corpus.write_text("\n".join(json.dumps(r) for r in rows) + "\n")
    build_index(corpus, tmp_path / "idx", model="hashing", progress=False)
    with Index.open(tmp_path / "idx") as index:
        links = [r.id for r in index.related("local/parking", k=4, policy=Policy(links=Links(min_score=None, min_reverse=None)))]
        copies = [i for i in links if i in {"wire/original", "paper-a/copy", "paper-b/copy"}]
        assert copies == ["wire/original"]  # one copy, the earliest
        off = Policy(links=Links(min_score=None, min_reverse=None)).with_section("duplicates", threshold=1.0)
        # without the collapse, the list still never shows one title twice: the best-ranked copy stays
        assert len([i for i in (r.id for r in index.related("local/parking", k=4, policy=off))
                    if i.endswith(("original", "copy"))]) == 1
