"""The `recommender` command line: a thin layer over the library. Results go to stdout, logs and progress
to stderr. Exit codes: 0 success, 1 a user error (one line on stderr), 2 bad usage.

The commands live in this package by what they do: query.py (related, search, info, list), build.py (index,
batch, policy), measure.py (evaluate, check, train) and editors.py (pin, block, unpin, unblock, overrides,
serve); options.py holds what they share (-q, -v, --index, --policy, --wide, the one-line errors). Importing it
loads no model and imports neither torch nor FAISS.
"""

from __future__ import annotations

import sys

import click

from ..common.progress import configure_logging
from . import build, editors, measure, query
from .options import group_index_option, is_quiet, quiet_option, verbose_option


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="recommender")
@quiet_option
@verbose_option
@group_index_option
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Related-articles links for a news or blog site: ingest, embed, index, query, evaluate.

    -q, -v and --index may also follow the command: `recommender related ID -q --index DIR`."""
    if not is_quiet() and not ctx.meta.get("verbose"):
        configure_logging()


COMMANDS = (
    query.related, query.search, query.info, query.list_cmd,
    build.index_cmd, build.batch, build.policy,
    measure.evaluate, measure.check, measure.train,
    editors.pin, editors.block, editors.unpin, editors.unblock, editors.overrides_cmd, editors.serve,
)
for _command in COMMANDS:
    cli.add_command(_command)


def main() -> None:
    cli(prog_name="recommender")


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
