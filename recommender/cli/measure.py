"""Commands that measure: evaluate (against curated gold), check (the editors' report), train (a learned
ranking)."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import click

from ..rank.index import Index
from ..rank.policy import MAX_K
from ..common.render import plural
from .options import common_options, is_quiet, load_policy_for, policy_option, user_errors

log = logging.getLogger("recommender")


@click.command()
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="gold.jsonl ({\"id\", \"related\": [ids]} a line). Default: the curated related: lists in the index.")
@click.option("-k", "ks", multiple=True, type=click.IntRange(1, MAX_K), default=(1, 5, 10, 20), show_default=True,
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
@common_options()
@user_errors
def evaluate(index_dir: Path, gold_path: Path | None, ks: tuple[int, ...], baselines: tuple[str, ...],
             hybrid: tuple[float, ...], policy_path: Path | None, one_vector: bool, no_learned: bool,
             sample: int | None, seed: int, as_json: bool, report_dir: Path | None) -> None:
    """Recall@k, precision@k, hit@k, MRR, MAP, nDCG@10 and coverage against hand-curated gold, beside
    lexical and random baselines computed on the same queries.

    Systems: `system` (the final ranking under the policy), `system+overrides` (with the editors' pins and
    blocks, when there are any), the learned ranking under 5-fold cross-validation (each query ranked by a model
    fitted without its own list) under each protocol: `learned, existing articles` (other lists may name the
    query), `learned, new articles` (no list names the test fold's articles), `learned, as published` (with dates:
    only older articles and their lists; with `system` and the lexical baselines cut the same way), `dense` (the
    embedding alone), then the baselines."""
    from ..evaluate.evaluation import evaluate_index
    from ..evaluate.gold import load_gold_jsonl
    from ..evaluate.report import evaluation_json, evaluation_table, write_report

    gold = load_gold_jsonl(gold_path) if gold_path else None
    with Index.open(index_dir) as index:
        evaluation = evaluate_index(index, gold, gold_source=gold_path.name if gold_path else "curated related: lists",
                                    baselines=baselines, ks=tuple(sorted(set(ks))), sample=sample, seed=seed,
                                    hybrid=hybrid, policy=load_policy_for(policy_path), one_vector=one_vector,
                                    learned=not no_learned, progress=not is_quiet())
        if report_dir:
            titles = {info.id: info.title for info in index.data.store.all()}
            path = write_report(evaluation, report_dir, titles)
            log.info("report written to %s", path)
    if as_json:
        for record in evaluation_json(evaluation):
            click.echo(json.dumps(record))
    else:
        click.echo(evaluation_table(evaluation))


@click.command()
@click.option("-k", type=click.IntRange(1, MAX_K), default=None,
              help="A curated link counts as agreed when the system ranks it in its top k (default: the policy's k).")
@click.option("--suggestions", type=click.IntRange(0, 100), default=5, show_default=True,
              help="How many of the system's uncurated suggestions to show per article.")
@click.option("--out", "out_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the Markdown report here instead of stdout.")
@policy_option
@common_options()
@user_errors
def check(index_dir: Path, k: int | None, suggestions: int, out_path: Path | None, policy_path: Path | None) -> None:
    """Editors' check of the curated related: lists: agreed links, links ranked low, and suggestions missing."""
    from ..common.atomic import atomic_write_text
    from ..evaluate.check import check_markdown, editors_check

    with Index.open(index_dir) as index:
        items = editors_check(index, k=k, suggestions=suggestions, policy=load_policy_for(policy_path),
                              progress=not is_quiet())
        titles = {info.id: info.title for info in index.data.store.all()}
    if not items:
        raise click.ClickException(f"{index_dir}: no article in the index has a curated related: list")
    text = check_markdown(items, titles, k)
    if out_path:
        atomic_write_text(out_path, text)
        log.info("editors' check of %s written to %s", plural(len(items), "article"), out_path)
    else:
        click.echo(text)


@click.command()
@click.option("--gold", "gold_path", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="gold.jsonl to learn from. Default: the curated related: lists in the index.")
@click.option("--folds", type=click.IntRange(2, 20), default=5, show_default=True, help="Cross-validation folds.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the fold assignment.")
@click.option("--objective", type=click.Choice(["auto", "pointwise", "listwise"]), default="auto", show_default=True,
              help="How to fit: logistic regression over pairs, a softmax over each query's candidates, or (auto) "
                   "whichever cross-validates better on these lists.")
@policy_option
@click.option("--dry-run", is_flag=True, help="Measure and print, but do not store the model.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@common_options()
@user_errors
def train(index_dir: Path, gold_path: Path | None, folds: int, seed: int, objective: str, policy_path: Path | None,
          dry_run: bool, as_json: bool) -> None:
    """Learn a ranking from the curated related lists (a linear model over the pair signals), report it under
    k-fold cross-validation over queries, and store it with the index."""
    from ..evaluate.gold import load_gold_jsonl as load_gold
    from ..evaluate.protocols import LABELS
    from ..evaluate.training import store_model, train as train_model

    policy = load_policy_for(policy_path)
    with Index.open(index_dir) as index:
        gold = load_gold(gold_path) if gold_path else None
        model, report = train_model(index, policy, folds=folds, seed=seed, gold=gold, progress=not is_quiet(),
                                    objective=objective)
        if not dry_run:
            store_model(index.data.folder, model)
    report.pop("fold_of", None)
    if as_json:
        click.echo(json.dumps(report))
        return
    click.echo(f"learned from {plural(model.trained_on, 'curated list')} "
               f"({plural(report['pairs'], 'candidate pair')}), "
               f"{report['seconds']['total']:.1f} s")
    click.echo("weights (per standard deviation of each signal):")
    for name, weight in sorted(report["weights"].items(), key=lambda kv: -abs(kv[1])):
        click.echo(f"  {name:<16} {weight:+.3f}")
    click.echo(f"{folds}-fold cross-validation over queries (seed {seed}), "
               f"{plural(report['learned']['queries'], 'query', 'queries')}, chosen for "
               f"{LABELS[report['protocol']]} ([ranking] learned_for):")
    rows = [(f"{name} ({'fitted' if name == report['objective'] else 'not kept'})", figures)
            for name, figures in report["objectives"].items()]
    rows += [(name, report[name]) for name in ("default", "tfidf") if name in report]
    for name, figures in rows:
        click.echo(f"  {name:<20} recall@10 {figures['recall@10']:.3f}  mrr {figures['mrr']:.3f}")
    click.echo(f"the {report['objective']} model under each protocol (docs/ranking.md, \"Protocols\"):")
    for name, figures in report["protocols"].items():
        left = figures.get("left_out")
        extra = f"  ({left['undated']} undated and {left['no_gold_left']} without older gold left out)" if left else ""
        click.echo(f"  {LABELS[name]:<20} recall@10 {figures['learned']['recall@10']:.3f}  mrr "
                   f"{figures['learned']['mrr']:.3f}  (default {figures['default']['recall@10']:.3f} / "
                   f"{figures['default']['mrr']:.3f}, {figures['learned']['queries']} queries){extra}")
    state = "stored; used by related, search, the batch and evaluate" if model.beats_default() else \
        "stored, but not used by default (it did not beat the default ranking; [ranking] learned = \"on\" forces it)"
    click.echo("model " + ("not stored (--dry-run)" if dry_run else state))
