from recommender.ingest.text import (
    canonical_url, clean_body, clean_field, first_sentence, fix_text, shorten, strip_markdown, url_to_id,
)


def test_canonical_url_folds_variants():
    variants = [
        "https://www.Example.com/a/b/",
        "http://example.com/a/b",
        "HTTPS://EXAMPLE.COM:443/a/b?utm_source=x&utm_medium=y",
        "https://example.com/a/b#section",
        "https://example.com/a//b?fbclid=123&WT.mc_id=abc",
    ]
    assert {canonical_url(v) for v in variants} == {"https://example.com/a/b"}


def test_canonical_url_keeps_meaningful_query_sorted():
    assert canonical_url("https://ex.com/p?b=2&a=1&utm_campaign=z") == "https://ex.com/p?a=1&b=2"
    assert canonical_url("https://ex.com:8080/") == "https://ex.com:8080/"


def test_canonical_url_rejects_non_http():
    assert canonical_url("mailto:someone@example.com") is None
    assert canonical_url("/relative/path") is None
    assert canonical_url("") is None


def test_url_to_id_drops_scheme():
    assert url_to_id("http://www.ex.com/news/1/") == "ex.com/news/1"


def test_fix_text_repairs_cp1252_and_mac_roman_mojibake():
    assert fix_text("Donâ€™t panic") == "Don’t panic"
    broken = "🏁".encode("utf-8").decode("mac_roman")
    assert fix_text(f"6. {broken}Start") == "6. 🏁Start"
    assert fix_text("café naïve Müller") == "café naïve Müller"


def test_strip_markdown_keeps_prose_only():
    md = (
        "<head><link rel='canonical' href='https://x.example/'></head>\n"
        "## Heading\n<!-- hidden\nnote -->\n**Bold** and _it_ with [a link](https://x.example/y) "
        "and ![img](a.png).\n\n```python\ncode()\n```\n- item one\n1. item two\n> quoted `inline`"
    )
    text = " ".join(strip_markdown(md).split())
    assert text == "Heading Bold and it with a link and . item one item two quoted inline"


def test_clean_field_keeps_numbered_title():
    assert clean_field("6. The **Mission**") == "6. The Mission"


def test_clean_body_keeps_paragraphs():
    assert clean_body("One   line.\n\n\n\nTwo") == "One line.\n\nTwo"


def test_first_sentence_and_shorten():
    assert first_sentence("Short one. Then more text.") == "Short one."
    long = "word " * 40
    cut = shorten(long, 30)
    assert len(cut) <= 30 and cut.endswith("…")


def test_whitespace_runs_collapse_as_one_space_each():
    """collapse_whitespace's pattern skips single plain spaces (they stay what they are): every other run of
    spaces, tabs, no-break and ideographic spaces still becomes one space, as a plain `[...]+` would make it."""
    import random
    import re

    from recommender.ingest.text import _WS, _WS_CHARS, collapse_whitespace

    plain = re.compile(_WS_CHARS + "+")
    rng = random.Random(0)
    chars = " \t\u00a0\u2001\u3000\u200b\f\vab\n"
    for _ in range(3000):
        text = "".join(rng.choice(chars) for _ in range(rng.randint(0, 24)))
        assert _WS.sub(" ", text) == plain.sub(" ", text), repr(text)
    assert collapse_whitespace("a \u00a0 b\t\tc  d\n\n\n e") == "a b c d\n\ne"
