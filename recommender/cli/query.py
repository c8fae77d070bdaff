"""Commands that ask the index: related, search, info, list."""

from __future__ import annotations

import logging
from pathlib import Path

import click

from ..common.errors import InputError
from ..rank.index import Index, UnknownArticle
from ..rank.policy import MAX_K
from ..common.render import plural, render_articles, render_info, render_related
from .options import common_options, json_option, load_policy_for, policy_option, user_errors, wide_option, \
    wide_output

log = logging.getLogger("recommender")

PATH_PREFIXES = ("/", "./", "../", "~")


@click.command()
@click.argument("query")
@click.option("-k", type=click.IntRange(1, MAX_K), default=None, help="How many links (default: the policy's k).")
@policy_option
@click.option("--explain", is_flag=True, help="Why each link: score parts, shared terms, best passage "
              "(loads the model for the passages).")
@click.option("--no-overrides", is_flag=True, help="Ignore the editors' pins and blocks.")
@click.option("--compute", is_flag=True, help="Compute the list even when the last batch's stored list stands.")
@json_option()
@wide_option
@common_options()
@user_errors
def related(query: str, index_dir: Path, k: int | None, policy_path: Path | None, explain: bool, no_overrides: bool,
            compute: bool, as_json: bool, wide: bool) -> None:
    """The articles most related to QUERY: an article id, a URL, or an article file.

    Ranked by the hybrid score (embedding, passage matches, TF-IDF, mentions) under the link policy and the
    editors' overrides.
    By id or URL the stored index answers and no model is loaded; a file not in the index is embedded.
    When nothing that decides the list changed since the last batch, its stored list answers (--json says
    "answered_by": "stored-list" or "computed"; a stored answer has no per-signal "parts").
    """
    policy = load_policy_for(policy_path)
    with Index.open(index_dir) as index:
        source, results, answered_by = related_for(index, query, k, policy=policy, explain=explain,
                                                   overrides=not no_overrides, stored=not compute)
    click.echo(render_related(source, results, as_json, wide_output(wide), answered_by))


def looks_like_a_file(query: str) -> bool:
    """A query meant as a file: it starts like a path, or ends with an extension the reader takes."""
    from ..ingest.reader import read_suffixes

    return query.startswith(PATH_PREFIXES) or Path(query).suffix.lower() in read_suffixes()


def related_for(index: Index, query: str, k: int | None, *, policy=None, explain: bool = False,
                overrides: bool = True, stored: bool = True):
    """(the query article's description, results, which path answered) for an id, URL or file."""
    try:
        info = index.data.get(query)
        return ({"id": info.id, "title": info.title, "url": info.url}, *index.related_answer(
            info.id, k, policy=policy, explain=explain, overrides=overrides, stored=stored))
    except UnknownArticle as unknown:
        path = Path(query).expanduser()
        if "://" in query:
            raise unknown
        if not path.is_file():
            if path.exists() or looks_like_a_file(query):
                raise click.ClickException(f"file not found: {query}" + (
                    " (a folder; give one article file)" if path.is_dir() else "")) from None
            raise unknown
    from ..ingest.reader import read_corpus

    corpus = read_corpus(path)
    for problem in corpus.problems:
        log.warning("%s %s", "warning:" if problem.kept else "skipped", problem)
    main = [a for a in corpus.articles if a.kind != "related"]
    if not main:
        raise InputError(f"{path}: no usable article in the file")
    article = main[0]
    return {"id": article.id, "title": article.title, "url": article.url}, index.related_to_article(
        article, k, policy=policy, explain=explain), "computed"


@click.command()
@click.argument("text")
@click.option("-k", type=click.IntRange(1, MAX_K), default=None, help="How many results (default: the policy's k).")
@policy_option
@click.option("--explain", is_flag=True, help="Why each result: score parts, shared terms, best passage.")
@json_option()
@wide_option
@common_options()
@user_errors
def search(text: str, index_dir: Path, k: int | None, policy_path: Path | None, explain: bool, as_json: bool,
           wide: bool) -> None:
    """Articles closest to free TEXT, by meaning and words (loads the model)."""
    with Index.open(index_dir) as index:
        results = index.search(text, k, policy=load_policy_for(policy_path), explain=explain)
    click.echo(render_related({"text": text}, results, as_json, wide_output(wide)))


@click.command()
@json_option()
@click.option("--verify", is_flag=True, help="Re-hash every index file against its sha256 in the manifest.")
@policy_option
@common_options()
@user_errors
def info(index_dir: Path, as_json: bool, verify: bool, policy_path: Path | None) -> None:
    """What the index holds: count, model, dimension, when it was built, size on disk."""
    with Index.open(index_dir, verify="full" if verify else True) as index:
        facts = index.info()
        facts["ranking"] = index.ranking_in_force(load_policy_for(policy_path))  # which ranking is in force
        if verify:  # Index.open refuses a file that does not match: getting here means every file passed
            entries = index.data.manifest.files.values()
            facts["verified"] = {"check": "sha256", "files": len(entries), "bytes": sum(e.bytes for e in entries)}
    click.echo(render_info(facts, as_json))


@click.command("list")
@click.option("--match", default=None, metavar="TEXT", help="Only articles whose id, title or URL contains TEXT "
              "(any case).")
@click.option("--since", default=None, metavar="DATE", help="Only articles published on or after DATE (YYYY-MM-DD, "
              "YYYY-MM or YYYY).")
@click.option("--kind", type=click.Choice(["news", "blog", "text", "jsonl", "wxr", "feed", "related"]), default=None,
              help="Only articles of this kind (wxr: a WordPress export's post or page; feed: an RSS or Atom item; "
              "related: known only from a curated related: list).")
@click.option("--source", default=None, help="Only articles of this source.")
@click.option("--sort", "order", type=click.Choice(["index", "id", "title", "date"]), default="index",
              show_default=True, help="Order (date: newest first).")
@click.option("--limit", type=click.IntRange(1), default=None, help="At most N articles.")
@json_option("JSON lines: id, title, url, published, source, kind.")
@wide_option
@common_options()
@user_errors
def list_cmd(index_dir: Path, match: str | None, since: str | None, kind: str | None, source: str | None,
             order: str, limit: int | None, as_json: bool, wide: bool) -> None:
    """The indexed articles: ids, titles, dates and URLs, to find what to ask `related` for.

    Reads the index's metadata only (no model, no vectors)."""
    from ..store.catalog import count_articles, list_articles

    found = list_articles(index_dir, match=match, since=since, kind=kind, source=source, order=order, limit=limit)
    text = render_articles(found, as_json, wide_output(wide))
    if text:
        click.echo(text)
    log.info("%s of %s", len(found), plural(count_articles(index_dir), "article"))
