"""smartcronctl train, model and bench-ai: the AI core's commands (SPEC 6, 9).

Thin over smartcron.ai.train (pandas, scikit-learn: imported only by `train` and
`bench-ai`) and smartcron.ai.model (what the daemon loads). bench-ai and `run_bench`,
the library behind it, live in smartcron.cli.benchai; the command is registered here.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

import click

from smartcron.cli.benchai import bench_ai_cmd
from smartcron.cli.common import CONTEXT, load_config, print_json, user_errors, with_config
from smartcron.cli.progress import progress_bar

__all__ = ["bench_ai_cmd", "model_cmd", "train_cmd"]

# the steps train.train names: reading, fitting, refitting, exporting (then "wrote")
TRAIN_STEPS = 4


@click.command("train", context_settings=CONTEXT)
@with_config
@click.option(
    "--history", "history", metavar="DB", help="History database (default: the daemon's)."
)
@click.option(
    "--history-url",
    "history_url",
    metavar="URL",
    help="A fleet's PostgreSQL history (no password in it): train on every host's runs.",
)
@click.option("--out", "out", metavar="DIR", help="Model directory (default: the daemon's).")
@click.option("--seed", default=0, show_default=True, help="random_state of the forests.")
@click.option("--tz", "tz", default="UTC", show_default=True, help="Zone of the hour features.")
@click.option("--json", "as_json", is_flag=True, help="Print the model card as JSON.")
@user_errors
def train_cmd(
    config_file: str | None,
    user_mode: bool | None,
    history: str | None,
    history_url: str | None,
    out: str | None,
    seed: int,
    tz: str,
    as_json: bool,
) -> None:
    """Train the success and runtime models from the history; write model.onnx, model.pkl
    and model.json. Refuses (exit 1) when the history is too thin. Each holdout metric
    is explained in a line of its own; a progress bar goes to stderr on a terminal.

    \b
    Examples:
      smartcronctl train
      smartcronctl train --history /tmp/sim.db --out /tmp/model
      smartcronctl train --history-url postgresql://cron@db/history --out /srv/models
    """
    if history is not None and history_url is not None:
        raise click.UsageError("give at most one of --history and --history-url")
    if history_url is not None:
        _train_fleet(config_file, user_mode, history_url, out, seed, tz, as_json)
        return
    if history is None or out is None:
        config = load_config(config_file, user_mode)
        history = history or str(config.history_db)
        out = out or str(config.models_dir)
    _train(history, out, seed, tz, as_json)


def _train(history: str, out: str, seed: int, tz: str, as_json: bool) -> None:
    from zoneinfo import ZoneInfo

    from smartcron.ai import train

    with progress_bar("training", TRAIN_STEPS) as bar:
        result = train.train(history, out, seed=seed, tz=ZoneInfo(tz), progress=bar.step)
    if as_json:
        print_json(result.card)
        return
    _show_card(result.card, str(result.out))


def _train_fleet(
    config_file: str | None,
    user_mode: bool | None,
    url: str,
    out: str | None,
    seed: int,
    tz: str,
    as_json: bool,
) -> None:
    """train on a fleet's history (docs/ai.md, one model for a fleet): its runs copied
    into a temporary SQLite history (smartcron.store.pgexport), pooled across hosts."""
    import tempfile

    from smartcron.errors import SmartcronError
    from smartcron.store.pgurl import redact, url_problem

    if problem := url_problem(url):
        raise SmartcronError(f"--history-url: {problem}")
    config = load_config(config_file, user_mode)
    out = out or str(config.models_dir)
    from smartcron.store.pgexport import fleet_to_sqlite

    with tempfile.TemporaryDirectory(prefix="smartcron-fleet-") as tmp:
        copy = Path(tmp) / "history.db"
        hosts = fleet_to_sqlite(url, copy, config.history_password_file)
        if not as_json:
            each = ", ".join(f"{host} {n}" for host, n in sorted(hosts.items())) or "none"
            click.echo(f"fleet history {redact(url)}: runs by host: {each}")
        try:
            _train(str(copy), out, seed, tz, as_json)
        except SmartcronError as err:  # it names the temporary copy: name the fleet's
            raise SmartcronError(str(err).replace(str(copy), redact(url))) from None


def _show_card(card: dict[str, Any], where: str) -> None:
    t, m = card["training"], card["metrics"]["holdout"]
    click.echo(f"model {where}: trained {card['created']}")
    click.echo(f"  data: {t['rows']} runs ({t['failures']} failures), {t['from']} to {t['to']}")
    from smartcron.ai.estimators import JOB_MIN_EACH, JOB_MIN_ROWS

    own = card.get("job_models")
    if isinstance(own, list):  # cards before the jobs' own forests have no such list
        need = f"each needs {JOB_MIN_ROWS} runs, {JOB_MIN_EACH} of each outcome"
        names = ", ".join(map(str, own)) if own else f"none ({need})"
        click.echo(f"  jobs with a forest of their own: {names}; the others share one")
    share = card.get("load_share")
    if isinstance(share, int | float):  # cards before it count the other runs' load whole
        click.echo(f"  load share: {share:.2f} of a run's cores shows in this machine's load")
    click.echo(f"  holdout (the last {t['holdout_rows']} runs, unseen while fitting):")
    for line in metric_lines(m):
        click.echo(f"    {line}")


# one plain-English line under each holdout metric: what it measures, what is good
EXPLAIN = {
    "pr_auc": "how well it ranks failing runs above succeeding ones: 1 is perfect,"
    " the baseline (the share of failures) is a random guess",
    "brier": "mean squared error of the predicted chance of success: lower is better,"
    " 0 is perfect, 0.25 is a coin toss",
    "runtime": "mean absolute error of the predicted runtime; underestimated: the share"
    " of runs that took longer than predicted (a deferral may then overrun its window)",
}


def metric_lines(m: dict[str, Any]) -> list[str]:
    """The holdout metrics, each followed by its plain-English explanation."""
    return [
        f"PR-AUC(failure) {m['pr_auc_failure']} (baseline {m['pr_auc_baseline']})",
        f"  {EXPLAIN['pr_auc']}",
        f"Brier {m['brier']}",
        f"  {EXPLAIN['brier']}",
        f"runtime MAE {m['runtime_mae_s']} s, underestimated {m['runtime_underestimated']:.0%}",
        f"  {EXPLAIN['runtime']}",
    ]


@click.command("model", context_settings=CONTEXT)
@with_config
@click.option("--dir", "directory", metavar="DIR", help="Model directory (default: the daemon's).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@user_errors
def model_cmd(
    config_file: str | None, user_mode: bool | None, directory: str | None, as_json: bool
) -> None:
    """Show the model card and whether the daemon would accept the model (and why not).
    Exits 1 when the daemon would refuse it.

    \b
    Examples:
      smartcronctl model --dir models
      smartcronctl model --user --json
    """
    from smartcron.ai.model import CARD_NAME, ModelUnavailable, load_model

    where = directory or str(load_config(config_file, user_mode).models_dir)
    loaded = load_model(where, owner_uid=os.geteuid())
    accepted = not isinstance(loaded, ModelUnavailable)
    reason = None if accepted else loaded.reason  # type: ignore[union-attr]
    try:
        card = json.loads((Path(where) / CARD_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        card = None
    if as_json:
        print_json({"dir": where, "accepted": accepted, "reason": reason, "card": card})
        return
    if isinstance(card, dict) and "training" in card:
        try:
            _show_card(card, where)
        except (KeyError, TypeError):
            click.echo(f"model {where}: card unreadable")
    click.echo("accepted by the daemon" if accepted else f"refused: {reason}")
    if not accepted:
        sys.exit(1)
