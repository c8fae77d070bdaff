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
