"""The `recommender` command line: a thin layer over the library. Results go to stdout, logs and progress
to stderr. Exit codes: 0 success, 1 a user error (one line on stderr), 2 bad usage."""

from __future__ import annotations

import functools
import json
import logging
import sys
from pathlib import Path

import click

from .embedder import BACKENDS
from .index import INDEX_ENV, DEFAULT_INDEX_DIR, Index, UnknownArticle
from .progress import configure_logging
from .render import render_info, render_related

log = logging.getLogger("recommender")


def user_errors(func):
    """Turn library errors into one-line `click.ClickException`s (exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from .batch import BatchError
        from .embedder import ModelError
        from .lock import LockedError
        from .manifest import IndexProblem
        from .policy import PolicyError

        try:
            return func(*args, **kwargs)
        except (UnknownArticle, IndexProblem, ModelError, LockedError, BatchError, PolicyError, FileNotFoundError,
                ValueError) as exc:
            message = exc.args[0] if exc.args else str(exc)
            raise click.ClickException(str(message)) from None

    return wrapper


def index_option(func):
    return click.option(
        "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), envvar=INDEX_ENV,
        default=DEFAULT_INDEX_DIR, show_default=True, show_envvar=True, help="Index folder.",
    )(func)


def model_options(func):
    """--model and --backend, shared by the commands that embed a corpus."""
    func = click.option("--backend", type=click.Choice(BACKENDS), default="auto", show_default=True,
                        help="Embedding backend; auto picks the fastest this machine supports (OpenVINO, then "
                             "PyTorch bf16 where the CPU has bf16, then PyTorch fp32).")(func)
    return click.option("--model", default=None, help="Local sentence-transformers folder, or 'hashing' (tests). "
                        "Default: the packaged all-MiniLM-L6-v2.")(func)


def policy_option(func):
    return click.option(
        "--policy", "policy_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
        help="Link policy TOML (weights, k, minimum score, rules). Default: ./recommender.toml if present.",
    )(func)


def load_policy_for(path: Path | None):
    from .policy import load_policy

    return load_policy(path)


def quiet_option(func):
    def callback(ctx, param, value):
        if value:
            configure_logging(quiet=True)
            ctx.meta["quiet"] = True
        return value

    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=callback, is_eager=True,
                        help="No progress bars or log lines, only results and errors.")(func)


def is_quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    while ctx is not None:
        if ctx.meta.get("quiet"):
            return True
        ctx = ctx.parent
    return False


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recommender")
@quiet_option
@click.option("-v", "--verbose", is_flag=True, help="Debug log lines on stderr.")
def cli(verbose: bool) -> None:
    """Related-articles links for a news or blog site: ingest, embed, index, query, evaluate."""
    if not is_quiet():
        configure_logging(verbose=verbose)


@cli.command("index")
@click.argument("corpus", type=click.Path(exists=True, path_type=Path))
@index_option
@model_options
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@quiet_option
@user_errors
def index_cmd(corpus: Path, index_dir: Path, model: str | None, backend: str, batch_size: int) -> None:
    """Build (or rebuild) the index from CORPUS: a folder, an article file, or a JSONL file.

    Vectors of unchanged articles are reused from the index's cache, so a rebuild only embeds what changed.
    """
    from .build import build_index

    report = build_index(corpus, index_dir, model=model, backend=backend, batch_size=batch_size,
                         progress=not is_quiet())
    click.echo(json.dumps({
        "index": str(index_dir), "articles": report.count, "embedded": report.vectors.embedded,
        "reused": report.vectors.reused, **report.changes.to_dict(), "skipped": len(report.problems),
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
    }))


@cli.command()
@click.argument("query")
@index_option
@click.option("-k", type=click.IntRange(1, 1000), default=None, help="How many links (default: the policy's k).")
@policy_option
@click.option("--explain", is_flag=True, help="Why each link: score parts, shared terms, best passage "
              "(loads the model for the passages).")
@click.option("--no-overrides", is_flag=True, help="Ignore the editors' pins and blocks.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@quiet_option
@user_errors
def related(query: str, index_dir: Path, k: int | None, policy_path: Path | None, explain: bool, no_overrides: bool,
            as_json: bool) -> None:
    """The articles most related to QUERY: an article id, a URL, or an article file.

    Ranked by the hybrid score (embedding, TF-IDF, mentions) under the link policy and the editors' overrides.
    By id or URL the stored index answers and no model is loaded; a file not in the index is embedded.
    """
    policy = load_policy_for(policy_path)
    with Index.open(index_dir) as index:
        source, results = related_for(index, query, k, policy=policy, explain=explain,
                                      overrides=not no_overrides)
    click.echo(render_related(source, results, as_json))


def related_for(index: Index, query: str, k: int | None, *, policy=None, explain: bool = False,
                overrides: bool = True):
    """(the query article's description, results) for an id, URL or file."""
    try:
        info = index.get(query)
        return {"id": info.id, "title": info.title, "url": info.url}, index.related(
            info.id, k, policy=policy, explain=explain, overrides=overrides)
    except UnknownArticle as unknown:
        path = Path(query)
        if "://" in query or not path.is_file():
            raise unknown
    from .ingest import read_corpus

    corpus = read_corpus(path)
    for problem in corpus.problems:
        log.warning("skipped %s", problem)
    main = [a for a in corpus.articles if a.kind != "related"]
    if not main:
        raise ValueError(f"{path}: no usable article in the file")
    article = main[0]
    return {"id": article.id, "title": article.title, "url": article.url}, index.related_to_article(
        article, k, policy=policy, explain=explain)


@cli.command()
@click.argument("text")
@index_option
@click.option("-k", type=click.IntRange(1, 1000), default=None, help="How many results (default: the policy's k).")
@policy_option
@click.option("--explain", is_flag=True, help="Why each result: score parts, shared terms, best passage.")
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@quiet_option
@user_errors
def search(text: str, index_dir: Path, k: int | None, policy_path: Path | None, explain: bool, as_json: bool) -> None:
    """Articles closest to free TEXT, by meaning and words (loads the model)."""
    with Index.open(index_dir) as index:
        results = index.search(text, k, policy=load_policy_for(policy_path), explain=explain)
    click.echo(render_related({"text": text}, results, as_json))


@cli.command()
@index_option
@click.option("--json", "as_json", is_flag=True, help="JSON output.")
@click.option("--verify", is_flag=True, help="Re-hash every index file against its sha256 in the manifest.")
@user_errors
def info(index_dir: Path, as_json: bool, verify: bool) -> None:
    """What the index holds: count, model, dimension, when it was built, size on disk."""
    with Index.open(index_dir, verify="full" if verify else True) as index:
        click.echo(render_info(index.info(), as_json))


@cli.command()
@index_option
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="gold.jsonl ({\"id\", \"related\": [ids]} a line). Default: the curated related: lists in the index.")
@click.option("-k", "ks", multiple=True, type=click.IntRange(1, 1000), default=(1, 5, 10, 20), show_default=True,
              help="Cut-offs for recall/precision/hit (repeat the option).")
@click.option("--baseline", "baselines", multiple=True, type=click.Choice(["tfidf", "bm25", "random"]),
              default=("tfidf", "bm25", "random"), show_default=True, help="Baselines run on the same queries.")
@click.option("--hybrid", "hybrid", multiple=True, type=click.FloatRange(0, 1),
              help="Also evaluate a z-score fusion W*TF-IDF + (1-W)*system (repeat for several W).")
@policy_option
@click.option("--one-vector", is_flag=True, help="Also evaluate the naive design: one vector per article from "
              "title + text cut at the model's input limit (embeds the corpus again; loads the model).")
@click.option("--no-learned", is_flag=True, help="Skip the learned ranking under 5-fold cross-validation.")
@click.option("--sample", type=click.IntRange(1), default=None, help="Evaluate a random subset of N queries.")
@click.option("--seed", type=int, default=0, show_default=True,
              help="Seed of --sample, the random baseline and the cross-validation folds.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object per system, a line each.")
@click.option("--report", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write report.md, a recall@k plot and per-query files into this folder.")
@quiet_option
@user_errors
def evaluate(index_dir: Path, gold_path: Path | None, ks: tuple[int, ...], baselines: tuple[str, ...],
             hybrid: tuple[float, ...], policy_path: Path | None, one_vector: bool, no_learned: bool,
             sample: int | None, seed: int, as_json: bool, report_dir: Path | None) -> None:
    """Recall@k, precision@k, hit@k, MRR, MAP, nDCG@10 and coverage against hand-curated gold, beside
    lexical and random baselines computed on the same queries.

    Systems: `system` (the final ranking under the policy), `system+overrides` (with the editors' pins and
    blocks, when there are any), `learned (5-fold CV)` (the learned ranking, each query ranked by a model fitted
    without its own list), `dense` (the embedding alone), then the baselines."""
    from .evaluate import evaluate_index
    from .gold import load_gold_jsonl
    from .report import evaluation_json, evaluation_table, write_report

    gold = load_gold_jsonl(gold_path) if gold_path else None
    with Index.open(index_dir) as index:
        evaluation = evaluate_index(index, gold, gold_source=gold_path.name if gold_path else "curated related: lists",
                                    baselines=baselines, ks=tuple(sorted(set(ks))), sample=sample, seed=seed,
                                    hybrid=hybrid, policy=load_policy_for(policy_path), one_vector=one_vector,
                                    learned=not no_learned, progress=not is_quiet())
        if report_dir:
            titles = {info.id: info.title for info in index.store.all()}
            path = write_report(evaluation, report_dir, titles)
            log.info("report written to %s", path)
    if as_json:
        for record in evaluation_json(evaluation):
            click.echo(json.dumps(record))
    else:
        click.echo(evaluation_table(evaluation))


@cli.command()
@index_option
@click.option("-k", type=click.IntRange(1, 1000), default=10, show_default=True,
              help="A curated link counts as agreed when the system ranks it in its top k.")
@click.option("--suggestions", type=click.IntRange(0, 100), default=5, show_default=True,
              help="How many of the system's uncurated suggestions to show per article.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown report here instead of stdout.")
@quiet_option
@user_errors
def check(index_dir: Path, k: int, suggestions: int, out_path: Path | None) -> None:
    """Editors' check of the curated related: lists: agreed links, links ranked low, and suggestions missing."""
    from .atomic import atomic_write_text
    from .check import check_markdown, editors_check

    with Index.open(index_dir) as index:
        items = editors_check(index, k=k, suggestions=suggestions, progress=not is_quiet())
        titles = {info.id: info.title for info in index.store.all()}
    if not items:
        raise click.ClickException(f"{index_dir}: no article in the index has a curated related: list")
    text = check_markdown(items, titles, k)
    if out_path:
        atomic_write_text(out_path, text)
        log.info("editors' check of %d articles written to %s", len(items), out_path)
    else:
        click.echo(text)


@cli.command()
@index_option
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="gold.jsonl to learn from. Default: the curated related: lists in the index.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="Cross-validation folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fold assignment.")
@policy_option
@click.option("--dry-run", is_flag=True, help="Measure and print, but do not store the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@quiet_option
@user_errors
def train(index_dir: Path, gold_path: Path | None, folds: int, seed: int, policy_path: Path | None, dry_run: bool,
          as_json: bool) -> None:
    """Learn a ranking from the curated related lists (logistic regression over the pair signals), report it
    under k-fold cross-validation over queries, and store it with the index."""
    from .gold import load_gold_jsonl as load_gold
    from .learned import save_model, train as train_model

    policy = load_policy_for(policy_path)
    with Index.open(index_dir) as index:
        gold = load_gold(gold_path) if gold_path else None
        model, report = train_model(index, policy, folds=folds, seed=seed, gold=gold, progress=not is_quiet())
        if not dry_run:
            save_model(index.folder, model)
    report.pop("fold_of", None)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"learned from {model.trained_on} curated lists ({report['pairs']} candidate pairs), "
               f"{report['seconds']['total']:.1f} s")
    click.echo("weights (per standard deviation of each signal):")
    for name, weight in sorted(report["weights"].items(), key=lambda kv: -abs(kv[1])):
        click.echo(f"  {name:<16} {weight:+.3f}")
    click.echo(f"{folds}-fold cross-validation over queries (seed {seed}), {report['learned']['queries']} queries:")
    for name in ("learned", "default", "tfidf"):
        if name in report:
            click.echo(f"  {name:<8} recall@10 {report[name]['recall@10']:.3f}  mrr {report[name]['mrr']:.3f}")
    state = "stored; used by related, search, the batch and evaluate" if model.beats_default() else \
        "stored, but not used by default (it did not beat the default ranking; [ranking] learned = \"on\" forces it)"
    click.echo("model " + ("not stored (--dry-run)" if dry_run else state))


@cli.command()
@click.argument("corpus", type=click.Path(exists=True, path_type=Path))
@index_option
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for related.jsonl, related.json (a Hugo/Jekyll data file) and related.sqlite.")
@policy_option
@click.option("-k", type=click.IntRange(1, 1000), default=None, help="Links per article (overrides the policy).")
@click.option("--min-score", type=float, default=None,
              help="Fewer links rather than weak ones: drop links scoring below this (overrides the policy).")
@click.option("--exclude-same-source", is_flag=True, default=None,
              help="Never link two articles of the same source (overrides the policy).")
@click.option("--direction", type=click.Choice(["any", "older", "newer"]), default=None,
              help="Link only to older (or newer) articles than the one linked from (overrides the policy).")
@click.option("--max-age-days", type=click.FloatRange(0, min_open=True), default=None,
              help="Never link to an article published more than this many days ago (overrides the policy).")
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Also evaluate against this gold.jsonl (default: the corpus's curated related: lists).")
@model_options
@click.option("--engine", type=click.Choice(["local", "ray"]), default="local", show_default=True,
              help="Where embedding and all-pairs run: this process, or Ray (needs the ray extra).")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="Ray cluster to join with --engine ray ('auto', or host:port); default: a local Ray instance.")
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON.")
@quiet_option
@user_errors
def batch(corpus: Path, index_dir: Path, out_dir: Path, policy_path: Path | None, k: int | None,
          min_score: float | None, exclude_same_source: bool | None, direction: str | None,
          max_age_days: float | None, gold_path: Path | None, model: str | None, backend: str,
          engine: str, ray_address: str | None, as_json: bool) -> None:
    """The nightly job: update the index from CORPUS (embedding only new or changed articles), compute the
    related links of every article under the policy and the editors' overrides, and write them atomically
    into --out. Safe to rerun and to kill."""
    from .batch import run_batch
    from .render import render_run

    policy = load_policy_for(policy_path).with_links(
        k=k, min_score=min_score, direction=direction, max_age_days=max_age_days,
        same_source="exclude" if exclude_same_source else None)
    record = run_batch(corpus, index_dir, out_dir, policy, model=model, backend=backend, gold_path=gold_path,
                       progress=not is_quiet(), engine=engine, ray_address=ray_address)
    click.echo(json.dumps(record) if as_json else render_run(record))


@cli.command()
@policy_option
def policy(policy_path: Path | None) -> None:
    """Print the effective link policy as TOML (the file given, or ./recommender.toml, or the defaults)."""
    from .policy import PolicyError, policy_to_toml

    try:
        loaded = load_policy_for(policy_path)
    except PolicyError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"# {loaded.source}\n" + policy_to_toml(loaded))


def override_command(action: str, summary: str):
    @click.argument("article")
    @click.argument("target")
    @index_option
    @click.option("--note", default=None, help="Why (kept with the override).")
    @user_errors
    def command(article: str, target: str, index_dir: Path, note: str | None) -> None:
        from .overrides import EVERY, Overrides

        with Index.open(index_dir) as index:
            article_id = article if article == EVERY else index.get(article).id
            target_id = index.get(target).id
        with Overrides.open(index_dir) as store:
            if action == "unpin":
                if not store.unpin(article_id, target_id):
                    raise click.ClickException(f"no pin or block of {target_id} on {article_id}")
                click.echo(json.dumps({"removed": {"article": article_id, "target": target_id}}))
            else:
                item = getattr(store, action)(article_id, target_id, note)
                click.echo(json.dumps(item.to_dict()))

    command.__doc__ = summary
    return command


cli.command("pin")(override_command(
    "pin", "Pin TARGET as a link of ARTICLE (ARTICLE '*' for every article): pinned links come first, in the "
           "order pinned, in `related` and in the batch."))
cli.command("block")(override_command(
    "block", "Block TARGET from the links of ARTICLE (ARTICLE '*' for every article): it never appears."))
cli.command("unpin")(override_command("unpin", "Remove a pin or a block of TARGET on ARTICLE."))


@cli.command()
@index_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--editor", is_flag=True, help="Serve the editors' page at / (pin, reorder, block links).")
@click.option("--token", default=None, help="Token editors' writes need (default: $RECOMMENDER_TOKEN; none: read-only).")
@user_errors
def serve(index_dir: Path, host: str, port: int, editor: bool, token: str | None) -> None:
    """HTTP JSON API over the index (/related, /search, /info, /health); follows new index versions."""
    from .serve import serve as run

    run(index_dir, host=host, port=port, editor=editor, token=token)


@cli.command("overrides")
@index_option
@click.option("--json", "as_json", is_flag=True, help="JSON lines.")
@user_errors
def overrides_cmd(index_dir: Path, as_json: bool) -> None:
    """List the editors' pins and blocks stored with the index."""
    from .overrides import Overrides

    with Overrides.open(index_dir) as store:
        items = store.all()
    for item in items:
        click.echo(json.dumps(item.to_dict()) if as_json else
                   f"{item.action:5}  {item.article}  ->  {item.target}" + (f"  ({item.note})" if item.note else ""))


def main() -> None:
    cli(prog_name="recommender")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
