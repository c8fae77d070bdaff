"""What may be linked ([links] targets) and one link per title (rank/linking.py)."""

from types import SimpleNamespace

import numpy as np

from recommender.rank.linking import RuleColumns, order_candidates
from recommender.rank.policy import Policy, policy_from_dict
from recommender.rank.ranking import Candidates

ARTICLES = [  # (id, title, url, kind, path)
    ("q", "The query", "https://site.example/q/", "news", "posts/q.md"),
    ("page", "A page of the site", "https://site.example/page/", "news", "posts/page.md"),
    ("other", "A page elsewhere", "https://other.example/x/", "news", "posts/other.md"),
    ("md", "Markdown without URL", None, "blog", "posts/md.md"),
    ("txt", "Plain text without URL", None, "text", "text/txt.txt"),
    ("stub", "A curated stub", "https://elsewhere.example/stub/", "related", "posts/q.md"),
    ("col-12", "Weekly column: notes", "https://site.example/col-12/", "news", "posts/col-12.md"),
    ("col-13", "Weekly Column — Notes!", "https://site.example/col-13/", "news", "posts/col-13.md"),
    ("page2", "Another page", "https://www.SITE.example/page2/", "news", "posts/page2.md"),
]


def ordered(policy: Policy) -> list[str]:
    infos = [SimpleNamespace(id=i, title=t, url=u, kind=k, path=p, source=None, published=None)
             for i, t, u, k, p in ARTICLES]
    facts = RuleColumns.from_infos(infos)
    rows = np.arange(1, len(infos))
    cand = Candidates(0, rows, np.linspace(3.0, 1.0, len(rows)), {}, {})
    vectors = np.eye(len(infos), dtype=np.float32)
    return [facts.ids[link.row] for link in order_candidates(cand, facts, vectors, policy)]


def test_default_targets_leave_out_stubs_and_plain_text_without_url():
    facts = RuleColumns.from_infos([SimpleNamespace(id=i, title=t, url=u, kind=k, path=p, source=None, published=None)
                              for i, t, u, k, p in ARTICLES])
    assert ordered(Policy()) == ["page", "other", "md", "col-12", "page2"]
    assert facts.left_out(Policy()) == {"no-url": 1, "stubs": 1}
    every = policy_from_dict({"links": {"targets": ["site", "other-domains", "no-url", "stubs"]}})
    assert ordered(every) == ["page", "other", "md", "txt", "stub", "col-12", "page2"]


def test_other_domains_are_told_by_the_sites_base_url_or_its_most_common_host():
    own = policy_from_dict({"links": {"targets": ["site"]}})  # the most common host: site.example
    assert ordered(own) == ["page", "md", "col-12", "page2"]
    elsewhere = policy_from_dict({"links": {"targets": ["site"]}, "site": {"base_url": "https://other.example/"}})
    assert ordered(elsewhere) == ["other", "md"]


def test_a_key_other_than_url_gives_every_file_a_page():
    by_file = policy_from_dict({"site": {"key": "file"}})
    assert ordered(by_file) == ["page", "other", "md", "txt", "col-12", "page2"]


def test_one_list_never_shows_one_title_twice():
    every = policy_from_dict({"links": {"targets": ["site", "other-domains", "no-url", "stubs"]}})
    assert "col-12" in ordered(every) and "col-13" not in ordered(every)  # the better-ranked issue stays


def test_a_link_below_the_linked_articles_own_average_is_cut():
    from recommender.rank.linking import choose_links

    infos = [SimpleNamespace(id=i, title=t, url=u, kind=k, path=p, source=None, published=None)
             for i, t, u, k, p in ARTICLES[:4]]
    facts = RuleColumns.from_infos(infos)
    rows = np.array([1, 2, 3])
    # the query's best matches by score, but "other" finds it below its own average cosine (0.30 < 0.45)
    cand = Candidates(0, rows, np.array([2.0, 1.8, 1.5]), {"dense": np.array([0.5, 0.3, 0.4])}, {})
    standing = (np.array([0.1, 0.2, 0.45, 0.1]), np.array([0.1, 0.1, 0.1, 0.1]))
    vectors = np.eye(4, dtype=np.float32)
    ordered = order_candidates(cand, facts, vectors, Policy(), limit=10, standing=standing)
    assert [facts.ids[link.row] for link in choose_links(ordered, Policy())] == ["page", "md"]
    assert [round(link.reverse, 2) for link in ordered] == [3.0, 3.0]
    off = policy_from_dict({"links": {"min_reverse": -1000}})
    assert len(choose_links(order_candidates(cand, facts, vectors, off, standing=standing), off)) == 3


def test_the_links_step_keeps_the_full_orders_links_above_the_reverse_minimum():
    # order_candidates with a limit (the batch) builds links only for the few it keeps: the same links, scores and
    # reverse z-scores (Python numbers) as the full order cut by the reverse minimum, pins first with their scores
    from recommender.rank.overrides import Override, OverrideSet

    rng = np.random.default_rng(5)
    n = 300
    infos = [SimpleNamespace(id=f"a{r}", title=f"story number {r % 170} of the site", url=f"https://s.example/{r}/",
                             kind="news", path=f"posts/{r}.md", source=None, published=None) for r in range(n)]
    facts = RuleColumns.from_infos(infos)  # rows r and r + 170 share a title: the better ranked one stays
    rows = np.sort(rng.choice(np.arange(1, n), 250, replace=False))
    dense = rng.random(len(rows)).astype(np.float32)
    cand = Candidates(0, rows, rng.normal(size=len(rows)).astype(np.float32), {"dense": dense}, {})
    standing = (rng.random(n).astype(np.float32) * 0.6, (0.05 + rng.random(n) * 0.2).astype(np.float32))
    vectors = np.eye(n, dtype=np.float32)
    policy = policy_from_dict({"links": {"min_reverse": 0.5}})
    full = order_candidates(cand, facts, vectors, policy, standing=standing)
    assert len(full) == len({facts.name_codes[link.row] for link in full}) > 100
    at = np.searchsorted(rows, [link.row for link in full])
    assert [link.reverse for link in full] == ((dense[at] - standing[0][[link.row for link in full]])
                                               / standing[1][[link.row for link in full]]).tolist()
    above = [link for link in full if not link.reverse < 0.5]
    assert 20 < len(above) < len(full)
    for limit in (1, 10, 40):
        cut = order_candidates(cand, facts, vectors, policy, limit=limit, standing=standing)
        assert cut == above[:limit]
        assert all(type(link.row) is int and type(link.score) is float and type(link.reverse) is float
                   for link in cut)
    pin = above[3].row  # a ranked link pinned first: its score kept, its title's other links left out
    pinned = OverrideSet([Override("a0", f"a{pin}", "pin", 0, None, "2026-12-06")])
    with_pin = order_candidates(cand, facts, vectors, policy, pinned, limit=10, standing=standing)
    assert with_pin[0].pinned and with_pin[0].row == pin and with_pin[0].score == above[3].score
    assert with_pin[1:] == [link for link in above[:10] if facts.name_codes[link.row] != facts.name_codes[pin]]
