"""Commands for the people who curate links: pin, block, unpin, unblock, overrides, and serve (the HTTP API and the
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
    @click.option("--note", default=None, help="Why (kept with the override; one line, at most 1000 characters).")
    @policy_option
    @common_options()
    @user_errors
    def command(article: str, target: str, index_dir: Path, note: str | None, policy_path: Path | None) -> None:
        from ..rank.overrides import EVERY, Overrides, pin_refusal

        with Index.open(index_dir) as index, Overrides.open(index_dir) as store:
            # removing: an id no longer in the index still names what the store holds
            stored = store.ids() if action in ("unpin", "unblock") else set()
            article_id = article if article == EVERY else resolve(index, article, stored)
            target_id = resolve(index, target, stored)
            if action in ("unpin", "unblock"):
                if not getattr(store, action)(article_id, target_id):
                    raise click.ClickException(store.nothing_removed(action, article_id, target_id))
                click.echo(json.dumps({"removed": {"article": article_id, "target": target_id}}))
                return
            if action == "pin":  # a pin that could never show is refused, not stored as if it were active
                refusal = pin_refusal(store, index, load_policy_for(policy_path), article_id, target_id)
                if refusal:
                    raise click.ClickException(refusal)
            item = getattr(store, action)(article_id, target_id, note)
            click.echo(json.dumps(item.to_dict()))

    command.__doc__ = summary
    return click.command(action)(command)


def resolve(index: Index, ref: str, stored: set[str]) -> str:
    """The id of the article `ref` names; one of the `stored` ids is kept as it is, even if not in the index."""
    from ..rank.results import UnknownArticle

    try:
        return index.data.get(ref).id
    except UnknownArticle:
        if ref in stored:
            return ref
        raise


pin = override_command(
    "pin", "Pin TARGET as a link of ARTICLE (ARTICLE '*' for every article): pinned links come first, in the "
           "order pinned, in `related` and in the batch. A pin that could never show (TARGET unpublished under "
           "the policy, or blocked) is refused.")
block = override_command(
    "block", "Block TARGET from the links of ARTICLE (ARTICLE '*' for every article): it never appears.")
unpin = override_command("unpin", "Remove the pin of TARGET on ARTICLE.")
unblock = override_command("unblock", "Remove the block of TARGET on ARTICLE.")


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
    the batch rank; follows new index versions. /widget.js shows a page's links on any site whose origin the
    policy's [serve] cors_origins names."""
    from ..serve.app import serve as run

    run(index_dir, host=host, port=port, editor=editor, token=token, policy=load_policy_for(policy_path),
        workers=workers)
