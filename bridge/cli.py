"""The ``bridge`` command: demo, validate, serve, worker, journal."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from bridge import config, crms
from bridge.errors import ConfigError


class Host:
    """What ``bridge`` offers the commands a CRM adds (their ``click`` context object)."""

    def runtime(self, config_path: str | None = None) -> Any:
        """The runtime on a config file (default: ``$BRIDGE_CONFIG``)."""
        from bridge.runtime import Runtime

        return Runtime.build(config_path)

    def gate(self, runtime: Any) -> Any:
        """The gate (journal, dedup, queue) on a runtime: for a command that brings events,
        such as records read from a file."""
        from bridge.ingress import Gate

        return Gate(runtime)


@click.group()
@click.pass_context
def cli(ctx: click.Context) -> None:
    """Run a sales department's regulations beside its CRM."""
    ctx.obj = Host()


@cli.command()
@click.option("--once", is_flag=True, help="Play the scenario, print, and exit 0.")
@click.option("--port", default=8080, show_default=True, help="Port of the webhook server.")
@click.option(
    "--crm",
    default=None,
    type=click.Choice(crms.names()),
    help="The CRM whose sandbox the demo plays on (default: the demo tenant's own).",
)
def demo(once: bool, port: int, crm: str | None) -> None:
    """Run the bridge on embedded defaults against a CRM's sandbox."""
    from bridge.demo import run

    sys.exit(run(once=once, port=0 if once else port, crm=crm))


@cli.command()
@click.option("--config", "path", default=None, help="Config file (default: $BRIDGE_CONFIG).")
def validate(path: str | None) -> None:
    """Check the config, mappings and regulation packs; errors name file:line."""
    try:
        settings = config.load(path)
    except ConfigError as exc:
        for problem in exc.problems:
            click.echo(problem, err=True)
        click.echo(f"{len(exc.problems)} problem(s) found", err=True)
        sys.exit(1)
    for name, tenant in settings.tenants.items():
        click.echo(
            f"{name}: {tenant.config.crm}, "
            f"{len(tenant.rules)} rule(s) in {len(tenant.packs)} pack(s)"
        )
    click.echo("configuration is valid")


@cli.command()
@click.option(
    "--journal", "url", default=None, help="SQLAlchemy URL (default: $BRIDGE_JOURNAL_URL)."
)
def migrate(url: str | None) -> None:
    """Create or upgrade the journal's schema (run once, before starting the processes)."""
    from bridge.journal import migrate as run

    revision = run(url)
    click.echo(f"journal schema at revision {revision}")


@cli.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8080, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve webhooks (development server; use gunicorn 'webhooks:create_app()' in production)."""
    from bridge.app import create_app

    create_app().run(host=host, port=port, threaded=True)


@cli.command()
@click.option("--burst", is_flag=True, help="Exit when the queue is empty.")
@click.option(
    "--threads", default=2, show_default=True, help="Tenants drained at once by this process."
)
def worker(burst: bool, threads: int) -> None:
    """Process queued events and SLA timers, and run sweeps, checks and reconciliation."""
    from bridge.runtime import Runtime
    from bridge.worker import run_worker

    run_worker(Runtime.build(), burst=burst, threads=threads)


@cli.command()
def cron() -> None:
    """Run the sweeps on their schedule (rq's cron scheduler; workers run the jobs)."""
    from bridge.jobs import cron as make_cron
    from bridge.runtime import Runtime

    make_cron(Runtime.build()).start()


@cli.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--tenant", default=None)
def journal(limit: int, tenant: str | None) -> None:
    """List recent events with their decisions and actions."""
    from bridge.journal import Journal

    for entry in Journal().recent(limit, tenant):
        click.echo(format_entry(entry))


@cli.command()
@click.option("--tenant", default=None, help="Only this tenant's.")
@click.option("--limit", default=50, show_default=True)
def failed(tenant: str | None, limit: int) -> None:
    """List failed events with the CRM's error (dead letters first say how often they ran)."""
    from bridge.journal import Journal
    from bridge.masking import redact

    rows = Journal().failed(tenant, limit)
    for row in rows:
        what = f"{row.kind} {row.record_id}" if row.record_id else (row.subject or "-")
        click.echo(
            f"#{row.id} {row.received_at:%Y-%m-%d %H:%M:%S} {row.tenant} {row.source} {what}: "
            f"{redact(row.reason)}"
        )
    click.echo(
        f"{len(rows)} failed event(s)" + ("; `bridge replay ID` runs one again" if rows else "")
    )


@cli.command()
@click.argument("event_ids", nargs=-1, type=int)
@click.option("--tenant", default=None, help="Every dead letter of this tenant.")
@click.pass_obj
def replay(host: Host, event_ids: tuple[int, ...], tenant: str | None) -> None:
    """Run failed events again: what they did stays done, what failed or never ran runs."""
    if not event_ids and not tenant:
        raise click.UsageError("name event ids, or --tenant for all of a tenant's dead letters")
    rt = host.runtime()
    count = rt.resume(tenant) if tenant else 0
    count += rt.replay(list(event_ids)) if event_ids else 0
    click.echo(f"{count} event(s) put back in the queue; a worker runs them")


@cli.command()
@click.argument("packs", nargs=-1)
@click.option("--dir", "folder", default="config/regulations", show_default=True)
def check(packs: tuple[str, ...], folder: str) -> None:
    """Run the scenario files of regulation packs (no CRM, no Redis)."""
    from pathlib import Path

    from bridge.scenarios import run_pack

    paths = [Path(folder) / f"{name}.yaml" for name in packs] or sorted(Path(folder).glob("*.yaml"))
    failed = total = 0
    for path in paths:
        try:
            results = run_pack(path)
        except ConfigError as exc:
            click.echo("\n".join(exc.problems), err=True)
            sys.exit(1)
        for result in results:
            total += 1
            failed += not result.ok
            click.echo(f"{'ok  ' if result.ok else 'FAIL'} {path.stem}: {result.name}")
            for problem in result.problems:
                click.echo(f"     {problem}")
    click.echo(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed or not total else 0)


@cli.command("coverage")
@click.option("--dir", "folder", default="config/regulations", show_default=True)
@click.option("--write", "target", default=None, help="Write the table to this file.")
def coverage_cmd(folder: str, target: str | None) -> None:
    """Print (or write) the table: regulation id -> pack rule -> scenario files."""
    from pathlib import Path

    from bridge.coverage import markdown

    text = markdown(Path(folder))
    if target:
        Path(target).write_text(text, encoding="utf-8")
    else:
        click.echo(text, nl=False)


@cli.command("dry-run")
@click.argument("event_file", type=click.File())
def dry_run(event_file: Any) -> None:
    """Show the plan for one event without acting (reads the CRM when no record is given)."""
    from bridge.dryrun import dry_run as run

    click.echo(run(json.load(event_file)))


@cli.command()
@click.argument("pack")
@click.option("--tenant", required=True, help="The tenant whose CRM history is read.")
@click.option("--since", required=True, help="The first day replayed, e.g. 2025-01-01.")
@click.option("--config", "path", default=None, help="Config file (default: $BRIDGE_CONFIG).")
def backtest(pack: str, tenant: str, since: str, path: str | None) -> None:
    """Replay PACK (a file, or a pack of the tenant) over the CRM's history; writes nothing."""
    from bridge.backtest import print_run

    try:
        print_run(Host().runtime(path), tenant, pack, since, click.echo)
    except (ConfigError, NotImplementedError) as exc:
        problems = exc.problems if isinstance(exc, ConfigError) else [str(exc)]
        click.echo("\n".join(problems), err=True)
        sys.exit(1)


@cli.command("admin-password")
@click.password_option(help="The password (asked twice when not given).")
def admin_password(password: str) -> None:
    """Print the hash of a password for admin.users.<login>.password_hash."""
    from werkzeug.security import generate_password_hash

    click.echo(generate_password_hash(password))


def format_entry(entry: dict) -> str:
    """One journal entry as readable lines."""
    e = entry["event"]
    what = f"{e.kind} {e.record_id}" if e.record_id else (e.subject or "-")
    lines = [
        f"#{e.id} {e.received_at:%Y-%m-%d %H:%M:%S} {e.tenant} {e.source or e.crm} {what}: "
        f"{e.status}{' - ' + e.reason if e.reason else ''}"
    ]
    lines += [f"    rule {d.rule}: {d.verdict} ({d.detail})" for d in entry["decisions"]]
    lines += [
        f"    action {a.kind} [{a.status}] {a.summary} {a.result or ''}" for a in entry["actions"]
    ]
    return "\n".join(lines)


for _crm in crms.every():
    for _command in _crm.cli_commands():
        cli.add_command(_command)


def main(argv: list[str] | None = None) -> None:
    """Console entry point: an error the bridge raises on purpose is a message, not a traceback."""
    from bridge.errors import BridgeError

    try:
        cli.main(args=argv, prog_name="bridge", standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.Abort:
        click.echo("Aborted!", err=True)
        sys.exit(1)
    except BridgeError as exc:
        click.echo(f"bridge: {exc}", err=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
