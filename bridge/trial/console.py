"""``bridge try`` in a terminal: play lines given on the command line, or typed one by one."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import click

from bridge.trial.commands import play, show
from bridge.trial.page import blueprint
from bridge.trial.session import Trial

QUIT = ("quit", "exit", "q")


def run(
    tenant: str,
    *,
    config_path: str | None,
    start: datetime | None,
    port: int,
    lines: Iterable[str] | None,
) -> int:
    """Start a trial and play ``lines`` (then exit), or read lines until ``quit``.

    Returns:
        The exit code: 1 when a given line was a mistake, else 0.
    """
    trial = Trial(tenant, config_path=config_path, start=start, port=port, pages=(blueprint,))
    try:
        _intro(trial)
        if lines is not None:
            return _play_all(trial, lines)
        _console(trial)
        return 0
    finally:
        trial.close()


def _intro(trial: Trial) -> None:
    click.echo(
        f"{trial.name} on a {trial.crm.title} sandbox seeded from its mapping; "
        f"the page: {trial.url}\njournal and outbox: {trial.workdir}"
    )
    for line in show(trial)[-len(trial.stand.contacts) - 1 :]:
        click.echo(line)
    click.echo(f"now: {trial.local():%A %d %B %Y %H:%M}; `help` lists the commands")


def _play_all(trial: Trial, lines: Iterable[str]) -> int:
    failed = False
    for line in lines:
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        click.echo(f"> {line}")
        out = play(trial, line)
        failed = failed or any(o.startswith("error:") for o in out)
        for text in out:
            click.echo(text)
    return 1 if failed else 0


def _console(trial: Trial) -> None:
    while True:
        try:
            line = input("try> ")
            if line.strip().lower() in QUIT:
                return
            out = play(trial, line)
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C
            click.echo()
            return
        for text in out:
            click.echo(text)
