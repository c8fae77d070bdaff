"""scripts/corpora/rdocs/extract.py's link resolution and page text on inline pages (no R needed): a plain
\\link{topic} resolves in the page's own package first, then R's default packages, then the others; the
`=topic`, `pkg` and `pkg:file` options as R's help resolves them; self links, duplicates and links outside the
corpus dropped; the header line and title left out of the text, the first Description paragraph the excerpt."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("rdocs_extract", ROOT / "scripts" / "corpora" / "rdocs" / "extract.py")
rdocs = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(rdocs)


def page(package, file, aliases, links=(), title="T", text=""):
    return {"package": package, "file": file, "name": aliases[0], "title": title, "aliases": list(aliases),
            "links": list(links), "text": text}


PAGES = [
    page("stats", "lm", ["lm"], [("", "summary.lm"), ("", "glm"), ("", "plot"), ("", "lm"), ("", "glm"),
                                 ("", "nowhere"), ("MASS", "rlm"), ("=Startup", "see the start-up"),
                                 ("nlme:lme", "a mixed model")]),
    page("stats", "summary.lm", ["summary.lm", "print.summary.lm"]),
    page("stats", "glm", ["glm", "plot"]),  # `plot` here, but also in graphics
    page("graphics", "plot.default", ["plot.default", "plot"]),
    page("base", "Startup", ["Startup", ".Rprofile"]),
    page("MASS", "rlm", ["rlm", "rlm.default"]),
    page("MASS", "glm.nb", ["glm.nb", "glm"]),  # MASS's own `glm` topic: stats comes first for a stats page
    page("nlme", "lme", ["lme", "lme.formula"]),
    page("nlme", "gls", ["gls"], [("", "glm"), ("", "lme")]),
]


def test_links_resolve_as_r_help_does():
    gold, counts = rdocs.gold_lists(PAGES, rdocs.Resolver(PAGES))
    by_id = {g["id"]: g["related"] for g in gold}
    assert by_id["stats/lm"] == ["stats/summary.lm", "stats/glm", "MASS/rlm", "base/Startup", "nlme/lme"]
    assert by_id["nlme/gls"] == ["stats/glm", "nlme/lme"]  # glm: not in nlme, so stats (a default package)
    assert set(by_id) == {"stats/lm", "nlme/gls"}  # pages without resolved links are no query
    assert counts["see_also_links"] == 11 and counts["links_outside_corpus"] == 1


def test_a_plain_link_prefers_the_own_package_then_the_default_packages():
    resolve = rdocs.Resolver(PAGES)
    assert resolve("stats", "", "plot") == "stats/glm"
    assert resolve("MASS", "", "plot") == "stats/glm"  # stats is attached before graphics, both before MASS
    assert resolve("MASS", "", "plot.default") == "graphics/plot.default"
    assert resolve("MASS", "", "glm") == "MASS/glm.nb"
    assert resolve("base", "graphics", "plot.default") == "graphics/plot.default"  # [pkg]{file}
    assert resolve("base", "graphics", "plot") == "graphics/plot.default"  # [pkg]{topic}: no such file
    assert resolve("base", "graphics:nope", "plot") is None


def test_the_text_leaves_out_the_header_and_title_and_the_excerpt_is_the_description():
    text = ("lm                         package:stats                         R Documentation\n\n"
            "Fitting Linear Models\n\nDescription:\n\n     lm is used to fit\n     linear models.\n\n"
            "     More.\n\nUsage:\n\n     lm(formula)\n")
    body, excerpt = rdocs.body_text(page("stats", "lm", ["lm"], title="Fitting Linear Models", text=text))
    assert body.startswith("Description:") and "R Documentation" not in body
    assert excerpt == "lm is used to fit linear models."
