"""Options and error handling shared by every `recommender` command.

`-q/--quiet`, `-v/--verbose` and `--index` are accepted before the command (`recommender -q --index DIR
related ID`) and after it (`recommender related ID -q --index DIR`). For the index folder, the command's own
`--index` wins, then the one given before the command, then $RECOMMENDER_INDEX, then ./recommender-index.
"""

from __future__ import annotations

import functools
import logging
import sys
from pathlib import Path

import click
from click.core import ParameterSource

from ..embed.embedder import BACKENDS
from ..rank.indexdata import DEFAULT_INDEX_DIR, INDEX_ENV
from ..rank.results import UnknownArticle
from ..common.progress import configure_logging


def user_errors(func):
    """Turn library errors into one-line `click.ClickException`s (exit code 1)."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        from ..batch.nightly import BatchError
        from ..common.errors import InputError
        from ..embed.embedder import ModelError
        from ..store.lock import LockedError
        from ..store.manifest import IndexProblem

        try:
            return func(*args, **kwargs)
        except (UnknownArticle, IndexProblem, ModelError, LockedError, BatchError, InputError, FileNotFoundError) \
                as exc:  # not any ValueError: a bug (a NumPy shape mismatch, say) shows its traceback
            message = str(exc) if isinstance(exc, OSError) or not exc.args else str(exc.args[0])
            raise click.ClickException(message) from None

    return wrapper


# --- -q / -v ------------------------------------------------------------------------------------------------

def _quiet(ctx: click.Context, param, value: bool) -> None:
    if value:
        configure_logging(quiet=True)
        ctx.meta["quiet"] = True  # meta is shared by the group's context and the command's


def _verbose(ctx: click.Context, param, value: bool) -> None:
    if value and not ctx.meta.get("quiet"):
        configure_logging(verbose=True)
        ctx.meta["verbose"] = True


def quiet_option(func):
    return click.option("-q", "--quiet", is_flag=True, expose_value=False, callback=_quiet, is_eager=True,
                        help="No progress bars or log lines, only results and errors.")(func)


def verbose_option(func):
    return click.option("-v", "--verbose", is_flag=True, expose_value=False, callback=_verbose, is_eager=True,
                        help="Debug log lines on stderr.")(func)


def is_quiet() -> bool:
    ctx = click.get_current_context(silent=True)
    return bool(ctx is not None and ctx.meta.get("quiet"))


# --- --index ------------------------------------------------------------------------------------------------

def _group_index(ctx: click.Context, param, value: Path | None) -> None:
    if value is not None:
        ctx.meta["index_dir"] = value


def group_index_option(func):
    """--index before the command: the default of every command's --index."""
    return click.option("--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
                        expose_value=False, callback=_group_index, is_eager=True,
                        help=f"Index folder for the command (default: ${INDEX_ENV}, else ./{DEFAULT_INDEX_DIR}).")(func)


def _command_index(ctx: click.Context, param, value: Path | None) -> Path:
    if ctx.get_parameter_source(param.name) == ParameterSource.COMMANDLINE:
        return value
    if ctx.meta.get("index_dir") is not None:  # given before the command
        return ctx.meta["index_dir"]
    if value is None:
        ctx.meta["index_by_default"] = True
    return value if value is not None else Path(DEFAULT_INDEX_DIR)  # $RECOMMENDER_INDEX, else the default


def say_if_new_default_index(index_dir: Path) -> None:
    """A command about to create an index in the default folder (no --index, no $RECOMMENDER_INDEX) says so: a
    new shell without the variable would otherwise build a second index silently."""
    from ..store.manifest import MANIFEST_NAME

    ctx = click.get_current_context(silent=True)
    if ctx is not None and ctx.meta.get("index_by_default") and not (index_dir / MANIFEST_NAME).exists():
        logging.getLogger("recommender").warning(
            "no --index and no $%s: creating a new index in ./%s (set $%s or give --index DIR to use another)",
            INDEX_ENV, index_dir, INDEX_ENV)


def index_option(func):
    return click.option(
        "--index", "index_dir", type=click.Path(file_okay=False, path_type=Path), envvar=INDEX_ENV, default=None,
        show_envvar=True, callback=_command_index, help=f"Index folder.  [default: {DEFAULT_INDEX_DIR}]",
    )(func)


def common_options(index: bool = True):
    """-q, -v and (for a command that touches an index) --index, on a command."""

    def decorate(func):
        func = verbose_option(quiet_option(func))
        return index_option(func) if index else func

    return decorate


# --- other shared options -----------------------------------------------------------------------------------

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


def wide_option(func):
    return click.option("--wide", is_flag=True,
                        help="Never cut table cells (the default when the output is not a terminal).")(func)


def wide_output(wide: bool) -> bool:
    """Tables keep every cell whole with --wide, and whenever stdout is a pipe or a file."""
    return wide or not sys.stdout.isatty()


def json_option(help_text: str = "JSON output."):
    return click.option("--json", "as_json", is_flag=True, help=help_text)


def load_policy_for(path: Path | None):
    from ..rank.policy import load_policy

    return load_policy(path)
