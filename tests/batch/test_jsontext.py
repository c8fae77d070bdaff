import json

import numpy as np
import pytest

from recommender.common.jsontext import dumps_indented

LINK = {"title": "Ünïcode \"quoted\" \\ back\nslash\t\u2028", "href": None, "url": "https://x/é", "path": "/a/",
        "id": "a", "published": "2020-01-01", "score": 0.123457, "pinned": True}
TRICKY = {
    "/a/": [LINK, {**LINK, "score": None, "pinned": False}],
    "/empty/": [],
    "nested": {"list": [1, -2, 3.5, float("nan"), float("inf"), -float("inf"), -0.0, 1e-7, 10**20, True, None],
               "deep": [[{"k": []}, {}], ("tuple", 1)], "numpy": np.float64(0.25), "empty": {}},
    "": {1: "int key", None: "none key"},
    "ids": ["b", "c", "\x00\x1f"],
}


@pytest.mark.parametrize("indent", [1, 2])
@pytest.mark.parametrize("value", [TRICKY, {}, [], "plain", 3, None, [LINK], {"only": LINK}])
def test_the_same_text_as_json_dumps(value, indent):
    assert dumps_indented(value, indent) == json.dumps(value, ensure_ascii=False, indent=indent)


def test_what_json_refuses_is_refused():
    with pytest.raises(TypeError):
        dumps_indented({"a": [np.int64(1)]})


def test_the_by_path_text_is_json_dumps_of_the_by_path_links():
    from dataclasses import replace

    from recommender.batch.outputs import ArticleLinks, by_path, by_path_text
    from recommender.rank.results import Related

    def info(id, url, title):
        return Related(id=id, score=0.0, title=title, url=url, published="2021-05-01" if url else None,
                       source=None, kind="news")

    infos = [info("a", "https://x.org/a/", "Ä \"title\"\n"), info("b", None, "B"), info("c", "https://x.org/c", "C")]
    links = [replace(infos[1], score=0.5), replace(infos[2], score=None, pinned=True), replace(infos[0], score=1e-7)]
    items = [ArticleLinks(i.id, i.title, i.url, i.published, None, tuple(links[:n])) for n, i in enumerate(infos)]
    keyed, _ = by_path(items, infos)
    assert by_path_text(keyed) == json.dumps(keyed, ensure_ascii=False, indent=1)
    for more in ({"/nan/": [{**keyed["/c"][0], "score": float("nan")}]}, {"/odd/": [{"title": 1, "score": 0.5}]}):
        odd = {**keyed, **more}
        assert by_path_text(odd) == json.dumps(odd, ensure_ascii=False, indent=1)
    assert by_path_text({}) == "{}"
