"""The record of one batch run: what it read, embedded and wrote, how long each phase took, how good the links are
against the curated lists, and (a failed run) why it stopped.

    record = run_batch("content/", "recommender-index", "recommender-out")
    print(record.links, record.seconds["related"], record.lists["kind"])
    print(render_run(record))              # the summary `recommender batch` prints
    json.dumps(record.to_dict())           # what `recommender batch --json` prints and the SQLite `runs` keeps

A field is in the record once the run has set it: a run that failed early has only the fields it reached, and
`to_dict` gives the fields in the order the run set them, as the record has always been written. The run log
(outputs.py: `runs` in related.sqlite) keeps each record as JSON; records read back from it are plain dicts.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

from ..common.render import plural


@dataclass
class RunRecord:
    # set when the run starts (in this order)
    started: str
    status: str  # "running", then "ok" or "failed"
    corpus: str
    index: str
    out: str
    engine: str  # "local" or "ray"
    seconds: dict[str, float] = field(default_factory=dict)  # per phase: engine, read, embed, index, ... write
    site_data: str | None = None  # the site's copy of the by-path links (--site-data), when asked for
    policy: dict | None = None  # the policy in force (Policy.to_dict) and where it came from
    policy_source: str | None = None
    # reading
    skipped: int | None = None  # files, JSONL lines and related: items not read
    warnings: int | None = None  # articles read without one of their values
    skipped_reasons: list[str] | None = None  # the first outputs' MAX_REASONS problems, file[:line]: reason
    ignored: int | None = None  # files that are not articles
    # the index update (build.Changes, then the vectors)
    added: int | None = None
    changed: int | None = None
    unchanged: int | None = None
    removed: int | None = None
    articles: int | None = None
    embedded: int | None = None
    reused: int | None = None
    index_rewritten: bool | None = None
    model: str | None = None
    model_fingerprint: str | None = None
    backend: str | None = None
    training: dict | None = None  # evaluate.training.train_if_due's report
    lexical_update: str | None = None  # "full" (IDF fitted) or "incremental" (frozen)
    lexical_drift: dict | None = None
    links_key: str | None = None  # digest of everything the links depend on (lastrun.links_key)
    # the related lists
    ranking: str | None = None  # "default", or the learned model's kind
    drafts_held_back: int | None = None
    targets_left_out: dict | None = None  # per kind of target [links] targets keeps out of every list
    lists: dict | None = None  # kind (full / incremental), recomputed, reasons, fresh_statistics
    lists_state: str | None = None  # the token of the lists state these outputs were written with (output_reuse)
    stored_lists: object = None  # what rank/storedlists.py kept for queries by id (or why not)
    links: int | None = None
    pinned_links: int | None = None
    articles_without_links: int | None = None
    overrides: int | None = None
    evaluation: dict | None = None  # the system's and TF-IDF's figures against the curated lists, or None
    outputs_reused: bool | None = None  # nothing that decides a link changed: the last outputs stand
    ended: str | None = None
    by_path: dict | None = None  # outputs.by_path's counts
    error: str | None = None  # a failed run: the message the user saw
    _set: list[str] = field(default_factory=list, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:  # the fields every record starts with, then any other one given
        self._set[:] = [*STARTED, *(f.name for f in fields(self)
                                    if f.name in FIELDS - set(STARTED) and getattr(self, f.name) is not None)]

    def __setattr__(self, name: str, value) -> None:
        if name not in FIELDS and name != "_set":
            raise AttributeError(f"a run record has no field {name!r}")
        chosen = self.__dict__.get("_set")
        if chosen is not None and name not in chosen:
            chosen.append(name)
        object.__setattr__(self, name, value)

    def to_dict(self) -> dict:
        """The fields the run set, in the order it set them (the run log's JSON and `batch --json`)."""
        return {name: getattr(self, name) for name in self._set}


FIELDS = frozenset(f.name for f in fields(RunRecord)) - {"_set"}
STARTED = ("started", "status", "corpus", "index", "out", "engine", "seconds")  # every record has these


def render_run(record: RunRecord) -> str:
    """A batch run record as a short human summary."""
    def number(value) -> int:
        return 0 if value is None else value

    seconds = record.seconds
    by_path = record.by_path or {}
    lines = [
        f"batch {record.status}: {plural(number(record.articles), 'article')}, "
        f"{plural(number(record.links), 'link')} written to {record.out}",
        "articles: " + ", ".join(f"{key} {number(getattr(record, key))}" for key in
                                 ("added", "changed", "unchanged", "removed", "skipped", "ignored"))
        + (f", warnings {record.warnings}" if record.warnings else ""),
        f"embedded {number(record.embedded)}, reused {number(record.reused)} from cache; index "
        + ("rewritten" if record.index_rewritten else "unchanged, kept"),
        *(["related links: nothing that decides them changed since the last run; outputs kept as they are"]
          if record.outputs_reused else []),
        *([f"unpublished drafts held back from every list: {record.drafts_held_back}"]
          if record.drafts_held_back else []),
        *(["left out of every list by [links] targets: " + ", ".join(
            f"{kind} {n}" for kind, n in record.targets_left_out.items())]
          if any((record.targets_left_out or {}).values()) else []),
        *([f"site data: {record.site_data} ({plural(by_path.get('keys', 0), 'page')} "
           f"keyed by {by_path.get('key', 'url')})"] if record.site_data else []),
        *([f"page keys shared: {by_path['collisions']} articles have the key of an earlier one, e.g. "
           + "; ".join(by_path.get("collided", [])[:3])]
          if by_path.get("collisions") else []),
        "seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()) + f" (total {sum(seconds.values()):.2f})",
    ]
    training = record.training or {}
    if training.get("trained"):
        cv = training["cv"]
        lines.append(f"learned ranking trained ({training['reason']}): {cv['folds']}-fold cross-validated recall@10 "
                     f"{cv['learned']['recall@10']:.3f} against the default's {cv['default']['recall@10']:.3f}; "
                     + ("in use" if training.get("used") else "not used"))
    elif training.get("reason"):
        lines.append(f"learned ranking not trained: {training['reason']}")
    evaluation = record.evaluation
    if evaluation:
        lines.append(f"against {evaluation['gold']} ({plural(evaluation['queries'], 'query', 'queries')}):")
        for system in ("system", "tfidf"):
            if system in evaluation:
                figures = evaluation[system]
                order = ("recall@10", "precision@10", "mrr", "map", "ndcg@10")  # as printed when computed
                keys = sorted(figures, key=lambda k: (order.index(k) if k in order else len(order), k))
                lines.append(f"  {system:7} " + "  ".join(f"{k} {figures[k]:.3f}" for k in keys))
    return "\n".join(lines)
