"""Commands for the people who curate links: pin, block, unpin, overrides, and serve (the HTTP API and the
editors' page)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..rank.index import Index
from ..common.render import plural
from .options import common_options, json_option, load_policy_for, policy_option, user_errors

log = logging.getLogger("recommender")


def override_command(action: str, summary: str) -> click.Command:
    @click.argument("article")
    @click.argument("target")
    @click.option("--note", default=None, help="Why (kept with the override).")
    @common_options()
    @user_errors
    def command(article: str, target: str, index_dir: Path, note: str | None) -> None:
        from ..rank.overrides import EVERY, Overrides

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
    return click.command(action)(command)


pin = override_command(
    "pin", "Pin TARGET as a link of ARTICLE (ARTICLE '*' for every article): pinned links come first, in the "
           "order pinned, in `related` and in the batch.")
block = override_command(
    "block", "Block TARGET from the links of ARTICLE (ARTICLE '*' for every article): it never appears.")
unpin = override_command("unpin", "Remove a pin or a block of TARGET on ARTICLE.")


@click.command("overrides")
@json_option("JSON lines.")
@common_options()
@user_errors
def overrides_cmd(index_dir: Path, as_json: bool) -> None:
    """List the editors' pins and blocks stored with the index."""
    from ..store.manifest import read_manifest
    from ..rank.overrides import Overrides

    read_manifest(index_dir)  # a folder that is not an index is an error, not "no overrides"
    with Overrides.open(index_dir) as store:
        items = store.all()
    for item in items:
        click.echo(json.dumps(item.to_dict()) if as_json else
                   f"{item.action:5}  {item.article}  ->  {item.target}" + (f"  ({item.note})" if item.note else ""))
    # a remark, not a result: on stderr, so that stdout stays one override a line (empty when there are none)
    if items:
        log.info("%s in %s", plural(len(items), "override"), index_dir)
    else:
        log.info("no overrides in %s: no pins, no blocks (add one with `recommender pin` or `recommender block`)",
                 index_dir)


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind (loopback unless told).")
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--editor", is_flag=True, help="Serve the editors' page at / (pin, reorder, block links).")
@click.option("--token", default=None, help="Token editors' writes need (default: $RECOMMENDER_TOKEN; none: read-only).")
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Server processes on the port, each following the index on its own (about one per core).")
@policy_option
@common_options()
@user_errors
def serve(index_dir: Path, host: str, port: int, editor: bool, token: str | None, workers: int,
          policy_path: Path | None) -> None:
    """HTTP JSON API over the index (/related, /search, /info, /health) under the link policy, as `related` and
    the batch rank; follows new index versions."""
    from ..serve.app import serve as run

    run(index_dir, host=host, port=port, editor=editor, token=token, policy=load_policy_for(policy_path),
        workers=workers)
