"""The link policy: one declarative TOML file that `recommender related`, `evaluate` and the nightly batch all
read, so the links a site shows and the links that are measured come from the same settings.

    [ranking]                # how candidates are scored (weights of per-query z-scores; chosen by `evaluate`)
    dense = 0                # the embedding model's cosine of the two article vectors (it still finds candidates)
    window = 0.6             # the window-level score: how well the two articles' passages match (rank/windows.py)
    lexical = 0.2            # TF-IDF cosine
    mention = 0.05           # one article names the other (its title or slug appears in the text)
    candidates = 200         # candidates per query from each of the dense, window and lexical scores
    learned = "auto"         # the ranking `recommender train` fitted on the curated lists: "auto" (when it beat
                             # the default under cross-validation), "on", "off"
    train_min_lists = 50     # the batch trains it when there are this many curated lists (and they changed)
    learned_for = "new"      # choose it for "new" articles (no list names them yet: when links are made) or for
                             # "existing" ones (other lists already link to them); docs/ranking.md, "Protocols"
    retrieval = "two-stage"  # candidates from indexes built for top-k, then only they are scored; "exact": every
                             # query against the whole corpus (the reference; its cost follows the corpus size)

    [links]                  # which candidates may become links
    k = 10
    min_score = 0.0          # fewer links rather than weak ones: a link must score above the average candidate
                             # (final score, see `related --explain`; measured by scripts/measure_min_score.py)
    min_reverse = 0.0        # and from the other side: the linked article must find this one above its own average
                             # (embedding cosine z-score; an article unlike the rest gets few or no links)
    direction = "any"        # "older": only links to articles published no later; "newer": no earlier
    max_age_days = 365       # no links to articles older than this (relative to today); omit for none
    same_source = "allow"    # "allow" | "exclude"
    same_topic = "allow"     # "allow" | "prefer" (a bonus) | "only" | "exclude"
    topic_bonus = 0.5
    include_drafts = false   # items marked `published: false` or `draft: true` are never linked to

    targets = ["site", "other-domains"]   # what may be linked: "site" (the site's pages), "other-domains" (a URL
                             # on another host than the site's), "no-url" (no URL and no page of its own),
                             # "stubs" (curated stubs: only an item of someone's related: list)

    [site]                   # how the site addresses its pages (the keys of --site-data, batch/pages.py)
    key = "url"              # "url": the path (and query) of the article's URL; "file": its source file's path;
                             # "slug": /SLUG/; "permalink": the pattern below
    permalink = ""           # e.g. "/posts/:slug/" (Hugo) or "/:year/:month/:day/:title/" (Jekyll)
    base_url = ""            # the site's address, e.g. "https://example.org/": its host is the site's domain

    [recency]
    half_life_days = 0       # 0 = off; else the score of a link halves for every half-life between the two dates

    [duplicates]
    threshold = 0.98         # near-duplicates (syndicated copies) collapse to one canonical copy; 1 = off

    [diversity]
    mmr_lambda = 1.0         # 1 = off (pure relevance); 0.7 trades some relevance for variety

    [batch]
    max_shrink = 0.2         # refuse a run that would remove more than this share of the index
    refit_drift = 0.05       # rebuild the corpus statistics (IDF, embedding moments) in full once this share
                             # of the articles was added, changed or removed since the last full rebuild

    [serve]
    cors_origins = []        # origins whose pages may read the links from the browser (the widget, GET only),
                             # e.g. ["https://www.example.com"]; none by default
    max_age = 300            # seconds a cache in front of `recommender serve` (a browser, a CDN) may keep a
                             # /related answer before it asks again (0: ask every time; docs/serve.md, "Caching")

Every key is optional; `recommender policy` prints the effective policy.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

from ..common.errors import InputError

DIRECTIONS = ("any", "older", "newer")
SAME_SOURCE = ("allow", "exclude")
LEARNED = ("auto", "on", "off")
LEARNED_FOR = ("new", "existing")  # evaluate.protocols.TRAINED_FOR
RETRIEVALS = ("two-stage", "exact")  # rank/ranking.py
SAME_TOPIC = ("allow", "prefer", "only", "exclude")
TARGETS = ("site", "other-domains", "no-url", "stubs")  # the kinds of link target (linking.target_kinds)
SITE_KEYS = ("url", "file", "slug", "permalink")
PERMALINK_TOKENS = ("section", "slug", "title", "filename", "year", "month", "day")
POLICY_FILE = "recommender.toml"
ORIGIN = re.compile(r"https?://[^/?#\s]+")  # what a browser sends as Origin: no path, no trailing slash
MAX_K = 1000  # the most links per article, as `-k` on the command line


class PolicyError(InputError):
    """A policy file that cannot be read or holds a wrong value; the message names the file and the key."""


NO_WINDOWS = {"dense": 0.3, "window": 0.0, "lexical": 0.55, "mention": 0.15}  # docs/ranking.md, "Default weights"


@dataclass(frozen=True)
class Ranking:
    # chosen for the worst corpus: the best lowest ratio of recall@10 to the best lexical baseline over the
    # shared corpora (scripts/measure_weights.py; docs/ranking.md, "Default weights"). Without stored windows (an
    # approximate index), `weights(windows=False)` gives the best weights measured without them.
    dense: float = 0.0
    window: float = 0.6
    lexical: float = 0.2
    mention: float = 0.05
    candidates: int = 200
    learned: str = "auto"  # "auto": the learned ranking when it beat the default under cross-validation; "on"; "off"
    train_min_lists: int = 50  # the batch fits the learned ranking when the corpus has at least this many lists
    learned_for: str = "new"  # the protocol the learned ranking is chosen and judged under: "new" or "existing"
    retrieval: str = "two-stage"  # RETRIEVALS: candidates from top-k indexes, or every query against every article

    def weights(self, windows: bool = True) -> dict[str, float]:
        """The parts' weights; windows=False: for an index without stored windows, where the defaults become
        NO_WINDOWS (the best lowest ratio measured without the window part) and a site's own weights give their
        window weight to dense (the closest part)."""
        weights = {"dense": self.dense, "window": self.window, "lexical": self.lexical, "mention": self.mention}
        if windows:
            return weights
        defaults = {name: Ranking.__dataclass_fields__[name].default for name in weights}
        if weights == defaults:
            return dict(NO_WINDOWS)
        return {**weights, "dense": weights["dense"] + weights["window"], "window": 0.0}


@dataclass(frozen=True)
class Links:
    k: int = 10
    # 0: a link scores above the average of its candidates. Measured (scripts/measure_min_score.py): it costs no
    # recall@10 on the demo, python_docs or MDN, and drops the demo's links that share nothing (13% of them).
    min_score: float | None = 0.0
    # the same from the linked article's side: the two articles' embedding cosine in standard deviations above
    # the linked article's average cosine (None: off). An article unlike the rest still has best matches, but it
    # is below their own average: measured in docs/ranking.md, "Weak links" (scripts/measure_min_score.py). Not
    # applied to a ranking without the embedding (dense and window weights 0); a large negative value turns it off
    min_reverse: float | None = 0.0
    direction: str = "any"
    max_age_days: float | None = None
    same_source: str = "allow"
    same_topic: str = "allow"
    topic_bonus: float = 0.5
    include_drafts: bool = False  # link to items marked `published: false` / `draft: true` too
    # what may be linked (TARGETS): the site's pages and articles on other domains, not curated stubs (no page
    # on the site) nor articles without a URL or page of their own (rank/linking.py: target_kinds)
    targets: tuple[str, ...] = ("site", "other-domains")

    @property
    def bonus_bound(self) -> float:
        """The most the topic bonus adds to a candidate's score: what the nightly reach adds to a score before the
        policy's adjustments to bound the adjusted one."""
        return self.topic_bonus if self.same_topic == "prefer" else 0.0


@dataclass(frozen=True)
class Site:
    key: str = "url"  # SITE_KEYS: what the site data is keyed by (batch/pages.py)
    permalink: str = ""  # the pattern when key = "permalink": /posts/:slug/, /:year/:month/:day/:title/
    base_url: str = ""  # the site's address; its host is the site's own domain (else the most common one)

    @property
    def host(self) -> str | None:
        """The site's host as ids compare hosts (lower case, no www.), or None when base_url is not set."""
        from ..ingest.text import url_host

        return url_host(self.base_url)


@dataclass(frozen=True)
class Recency:
    half_life_days: float = 0.0


@dataclass(frozen=True)
class Duplicates:
    threshold: float = 0.98


@dataclass(frozen=True)
class Diversity:
    mmr_lambda: float = 1.0


@dataclass(frozen=True)
class Batch:
    max_shrink: float = 0.2  # refuse a run that would remove more than this share of the index (--allow-shrink)
    # a full rebuild (IDF, embedding moments, every list) once added + changed + removed articles since the last
    # one pass this share of the corpus: measured in docs/batch.md (scripts/measure_drift.py)
    refit_drift: float = 0.05


@dataclass(frozen=True)
class Serve:
    # the sites (scheme://host[:port], as a browser sends Origin) whose pages may call GET /related from the
    # browser: the widget (serve/widget.py). Any other origin gets no CORS header, so its browser refuses.
    cors_origins: tuple[str, ...] = ()
    # Cache-Control max-age of the service's /related answers (serve/caching.py): how long after a new index
    # version or a pin a cache in front may still show the answer it kept
    max_age: int = 300


@dataclass(frozen=True)
class Policy:
    ranking: Ranking = field(default_factory=Ranking)
    links: Links = field(default_factory=Links)
    site: Site = field(default_factory=Site)
    recency: Recency = field(default_factory=Recency)
    duplicates: Duplicates = field(default_factory=Duplicates)
    diversity: Diversity = field(default_factory=Diversity)
    batch: Batch = field(default_factory=Batch)
    serve: Serve = field(default_factory=Serve)
    source: str = "built-in defaults"

    def __post_init__(self):
        check(self)

    def to_dict(self) -> dict:
        data = asdict(self)
        data.pop("source")
        return data

    def with_section(self, name: str, **changes) -> "Policy":
        """A copy with some settings of one section replaced; None values are ignored (an option not given)."""
        changes = {k: v for k, v in changes.items() if v is not None}
        return replace(self, **{name: replace(getattr(self, name), **changes)}) if changes else self

    def with_links(self, **changes) -> "Policy":
        """A copy with some [links] settings replaced (command-line options override the file)."""
        return self.with_section("links", **changes)


SECTIONS = {"ranking": Ranking, "links": Links, "site": Site, "recency": Recency, "duplicates": Duplicates,
            "diversity": Diversity, "batch": Batch, "serve": Serve}


def check(policy: Policy) -> None:
    where = policy.source
    r, links = policy.ranking, policy.links
    for name, value in r.weights().items():
        if value < 0:
            raise PolicyError(f"{where}: [ranking] {name} must not be negative")
    if sum(r.weights().values()) <= 0:
        raise PolicyError(f"{where}: [ranking] needs at least one positive weight")
    if r.learned not in LEARNED:
        raise PolicyError(f"{where}: [ranking] learned must be one of {', '.join(LEARNED)}, not {r.learned!r}")
    if r.learned_for not in LEARNED_FOR:
        raise PolicyError(f"{where}: [ranking] learned_for must be one of {', '.join(LEARNED_FOR)}, not "
                          f"{r.learned_for!r}")
    if r.retrieval not in RETRIEVALS:
        raise PolicyError(f"{where}: [ranking] retrieval must be one of {', '.join(RETRIEVALS)}, not "
                          f"{r.retrieval!r}")
    if r.candidates < 1:
        raise PolicyError(f"{where}: [ranking] candidates must be at least 1")
    if r.train_min_lists < 1:
        raise PolicyError(f"{where}: [ranking] train_min_lists must be at least 1")
    if links.k < 1:
        raise PolicyError(f"{where}: [links] k must be at least 1")
    if links.k > MAX_K:
        raise PolicyError(f"{where}: [links] k must be at most {MAX_K}, not {links.k}")
    if links.min_score is not None and links.min_score < 0:
        raise PolicyError(f"{where}: [links] min_score must be at least 0 on the score scale (z-scores over the "
                          f"candidates, 0 = the average candidate, the default; see `related --explain`), not "
                          f"{links.min_score:g}")
    if links.min_reverse is not None and not math.isfinite(links.min_reverse):
        raise PolicyError(f"{where}: [links] min_reverse must be a finite number")
    if links.max_age_days is not None and links.max_age_days <= 0:
        raise PolicyError(f"{where}: [links] max_age_days must be more than 0 (leave it out for no age limit), "
                          f"not {links.max_age_days:g}")
    if links.topic_bonus < 0:
        raise PolicyError(f"{where}: [links] topic_bonus must not be negative")
    for key, value, allowed in (("direction", links.direction, DIRECTIONS),
                                ("same_source", links.same_source, SAME_SOURCE),
                                ("same_topic", links.same_topic, SAME_TOPIC)):
        if value not in allowed:
            raise PolicyError(f"{where}: [links] {key} must be one of {', '.join(allowed)}, not {value!r}")
    unknown = [t for t in links.targets if t not in TARGETS]
    if unknown or not links.targets:
        raise PolicyError(f"{where}: [links] targets must be a list of {', '.join(TARGETS)}, not {list(links.targets)!r}")
    check_site(policy.site, where)
    if policy.recency.half_life_days < 0:
        raise PolicyError(f"{where}: [recency] half_life_days must not be negative")
    if not 0 < policy.duplicates.threshold <= 1:
        raise PolicyError(f"{where}: [duplicates] threshold must be in (0, 1]")
    if not 0 <= policy.diversity.mmr_lambda <= 1:
        raise PolicyError(f"{where}: [diversity] mmr_lambda must be between 0 and 1")
    if not 0 <= policy.batch.max_shrink <= 1:
        raise PolicyError(f"{where}: [batch] max_shrink must be between 0 and 1 (a share of the index)")
    if not policy.batch.refit_drift >= 0:
        raise PolicyError(f"{where}: [batch] refit_drift must not be negative (a share of the corpus)")
    for origin in policy.serve.cors_origins:
        if not ORIGIN.fullmatch(origin):
            raise PolicyError(f"{where}: [serve] cors_origins: {origin!r} is not an origin: scheme and host, with a "
                              f"port if not the default, no path and no trailing slash (\"https://www.example.com\")")
    if policy.serve.max_age < 0:
        raise PolicyError(f"{where}: [serve] max_age must not be negative (seconds; 0: caches ask every time)")


def check_site(site: Site, where: str) -> None:
    import re

    if site.key not in SITE_KEYS:
        raise PolicyError(f"{where}: [site] key must be one of {', '.join(SITE_KEYS)}, not {site.key!r}")
    if site.key == "permalink" and not site.permalink:
        raise PolicyError(f'{where}: [site] key = "permalink" needs a permalink pattern, e.g. "/posts/:slug/"')
    if site.permalink:
        if not site.permalink.startswith("/"):
            raise PolicyError(f"{where}: [site] permalink must start with /, not {site.permalink!r}")
        unknown = [t for t in re.findall(r":(\w+)", site.permalink) if t not in PERMALINK_TOKENS]
        if unknown:
            raise PolicyError(f"{where}: [site] permalink has unknown :{unknown[0]} (known: "
                              f"{', '.join(':' + t for t in PERMALINK_TOKENS)})")
    if site.base_url and not re.match(r"https?://[^/\s]+", site.base_url):
        raise PolicyError(f"{where}: [site] base_url must be an http(s) address, not {site.base_url!r}")


def load_policy(path: str | Path | None = None) -> Policy:
    """The policy in a TOML file; None reads ./recommender.toml if there is one, else the defaults."""
    if path is None:
        if not Path(POLICY_FILE).exists():
            return Policy()
        path = POLICY_FILE
    path = Path(path)
    import tomllib  # only when there is a file to read (a query without one does not pay for the parser)

    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PolicyError(f"{path}: policy file not found") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{path}: not valid TOML ({exc})") from None
    return policy_from_dict(data, str(path))


def policy_from_dict(data: dict, source: str = "policy") -> Policy:
    parts = {}
    for name, value in data.items():
        if name not in SECTIONS:
            raise PolicyError(f"{source}: unknown section [{name}] (known: {', '.join(SECTIONS)})")
        if not isinstance(value, dict):
            raise PolicyError(f"{source}: [{name}] must be a table")
        cls = SECTIONS[name]
        known = {f.name: f for f in fields(cls)}
        for key, item in value.items():
            if key not in known:
                raise PolicyError(f"{source}: unknown key [{name}] {key} (known: {', '.join(known)})")
            default = getattr(cls(), key)
            if isinstance(default, tuple):
                if isinstance(item, str):
                    item = [item]
                if not isinstance(item, list) or not all(isinstance(x, str) for x in item):
                    raise PolicyError(f"{source}: [{name}] {key} must be a list of text (or one text)")
                value[key] = tuple(item)
                continue
            if isinstance(default, bool):
                if not isinstance(item, bool):
                    raise PolicyError(f"{source}: [{name}] {key} must be true or false")
                continue
            if isinstance(item, bool) or not isinstance(item, (int, float, str)):
                raise PolicyError(f"{source}: [{name}] {key} has an unusable value {item!r}")
            if isinstance(item, float) and not math.isfinite(item):
                raise PolicyError(f"{source}: [{name}] {key} must be a finite number, not {item!r}")
            if isinstance(default, str) != isinstance(item, str):
                raise PolicyError(f"{source}: [{name}] {key} must be {'text' if isinstance(default, str) else 'a number'}")
            if isinstance(default, int) and not isinstance(default, bool) and not float(item).is_integer():
                raise PolicyError(f"{source}: [{name}] {key} must be a whole number")
            if isinstance(default, int) and isinstance(item, float):
                value[key] = int(item)
        try:
            parts[name] = cls(**value)
        except TypeError as exc:
            raise PolicyError(f"{source}: [{name}] {exc}") from None
    return Policy(**parts, source=source)


def policy_to_toml(policy: Policy) -> str:
    """The policy as TOML text (what `recommender policy` prints); unset optional keys are comments."""
    lines = []
    for name, section in policy.to_dict().items():
        lines.append(f"[{name}]")
        for key, value in section.items():
            if value is None:
                lines.append(f"# {key} =")
            elif isinstance(value, str):
                lines.append(f'{key} = "{value}"')
            elif isinstance(value, (tuple, list)):
                lines.append(f"{key} = {json.dumps(list(value))}")
            elif isinstance(value, bool):
                lines.append(f"{key} = {str(value).lower()}")
            else:
                lines.append(f"{key} = {value!r}")
        lines.append("")
    return "\n".join(lines)
