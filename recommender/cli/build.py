"""Commands that build: index, batch (the nightly job), and policy (the settings both read)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ..rank.policy import DIRECTIONS, MAX_K
from .options import common_options, is_quiet, json_option, load_policy_for, model_options, policy_option, \
    say_if_new_default_index, user_errors


@click.command("index")
@click.argument("corpus", type=click.Path(exists=True, path_type=Path))
@model_options
@click.option("--batch-size", type=click.IntRange(1, 4096), default=32, show_default=True)
@common_options()
@user_errors
def index_cmd(corpus: Path, index_dir: Path, model: str | None, backend: str, batch_size: int) -> None:
    """Build (or rebuild) the index from CORPUS: a folder, an article file, or a JSONL file.

    Vectors of unchanged articles are reused from the index's cache, so a rebuild only embeds what changed.
    """
    from ..batch.build import build_index

    say_if_new_default_index(index_dir)
    report = build_index(corpus, index_dir, model=model, backend=backend, batch_size=batch_size,
                         progress=not is_quiet())
    click.echo(json.dumps({
        "index": str(index_dir), "articles": report.count, "embedded": report.vectors.embedded,
        "reused": report.vectors.reused, **report.changes.to_dict(), "skipped": sum(not p.kept for p in report.problems),
        "warnings": sum(p.kept for p in report.problems), "ignored": report.ignored,
        "seconds": {k: round(v, 2) for k, v in report.seconds.items()},
    }))


@click.command()
@click.argument("corpus", type=click.Path(exists=True, path_type=Path))
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True,
              help="Folder for related.jsonl, related.json, related_by_path.json and related.sqlite (keep it out "
                   "of a Hugo data/ folder: Hugo refuses the SQLite and JSONL files there; see --site-data).")
@click.option("--site-data", "site_data", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Also write the links keyed by URL path to this file, e.g. a Hugo data/related.json "
                   "(.Site.Data.related) or a Jekyll _data/related.json (site.data.related).")
@policy_option
@click.option("-k", type=click.IntRange(1, MAX_K), default=None, help="Links per article (overrides the policy).")
@click.option("--min-score", type=click.FloatRange(0), default=None,
              help="Fewer links rather than weak ones: drop links scoring below this, on the scale `related` "
                   "prints (z-scores, 0 = a typical unrelated article; overrides the policy).")
@click.option("--exclude-same-source", is_flag=True, default=None,
              help="Never link two articles of the same source (overrides the policy).")
@click.option("--direction", type=click.Choice(DIRECTIONS), default=None,
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
@click.option("--allow-shrink", is_flag=True,
              help="Remove more than the policy's [batch] max_shrink share of the index (refused otherwise).")
@json_option("Print the run record as JSON.")
@common_options()
@user_errors
def batch(corpus: Path, index_dir: Path, out_dir: Path, site_data: Path | None, policy_path: Path | None,
          k: int | None, min_score: float | None, exclude_same_source: bool | None, direction: str | None,
          max_age_days: float | None, gold_path: Path | None, model: str | None, backend: str,
          engine: str, ray_address: str | None, allow_shrink: bool, as_json: bool) -> None:
    """The nightly job: update the index from CORPUS (embedding only new or changed articles), compute the
    related links of every article under the policy and the editors' overrides, and write them atomically
    into --out (and --site-data). Safe to rerun and to kill."""
    from ..batch.nightly import run_batch
    from ..batch.runrecord import render_run

    links = {"k": k, "min_score": min_score, "direction": direction, "max_age_days": max_age_days,
             "same_source": "exclude" if exclude_same_source else None}
    say_if_new_default_index(index_dir)
    # the policy file is read by the batch, so a policy it refuses is recorded like any failed run
    record = run_batch(corpus, index_dir, out_dir, policy_path, links=links, site_data=site_data, model=model,
                       backend=backend, gold_path=gold_path, progress=not is_quiet(), engine=engine,
                       ray_address=ray_address, allow_shrink=allow_shrink)
    click.echo(json.dumps(record.to_dict()) if as_json else render_run(record))


@click.command()
@policy_option
@common_options(index=False)
@user_errors
def policy(policy_path: Path | None) -> None:
    """Print the effective link policy as TOML (the file given, or ./recommender.toml, or the defaults)."""
    from ..rank.policy import policy_to_toml

    from ..rank.default_model import describe_shipped

    loaded = load_policy_for(policy_path)
    click.echo(f"# {loaded.source}\n" + policy_to_toml(loaded) + describe_shipped(loaded))
