"""The ``bridge`` command: demo, validate, serve, worker, journal."""

from __future__ import annotations

import functools
import os
import sys
from typing import Any

import click

from bridge import config, crms
from bridge.errors import BridgeError, ConfigError
from bridge.masking import redact


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


class Group(click.Group):
    """The ``bridge`` group: whatever goes wrong, the admin reads a sentence, not a traceback.

    A bad file names its file and line (:class:`ConfigError`), a CRM or mail problem says what
    failed (:class:`BridgeError`); anything else is a bug of the bridge, reported as one line
    (``BRIDGE_DEBUG=1`` shows the traceback).
    """

    def invoke(self, ctx: click.Context) -> Any:
        """Run the command, turning every error into readable lines and an exit code."""
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except ConfigError as exc:
            for problem in exc.problems:
                click.echo(problem, err=True)
            click.echo(f"{len(exc.problems)} problem(s) found", err=True)
        except BridgeError as exc:
            click.echo(f"error: {redact(exc)}", err=True)
        except OSError as exc:
            where = f"{exc.filename}: " if exc.filename else ""
            click.echo(f"error: {where}{exc.strerror or exc}", err=True)
        except Exception as exc:
            if os.environ.get("BRIDGE_DEBUG"):
                raise
            click.echo(
                f"internal error: {type(exc).__name__}: {redact(exc)} - a bug of the bridge, "
                "not of your files; BRIDGE_DEBUG=1 shows where",
                err=True,
            )
            raise click.exceptions.Exit(2) from None
        raise click.exceptions.Exit(1)


@click.group(cls=Group)
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


@cli.command("try")
@click.argument("tenant")
@click.option("--config", "config_path", default=None, help="Config (default: $BRIDGE_CONFIG).")
@click.option(
    "--at", "start", default=None, help="The trial's first moment: '2025-11-14 09:00' (its zone)."
)
@click.option("--port", default=0, show_default=True, help="Port of the page (0: any free one).")
@click.option("-c", "--command", "lines", multiple=True, help="Play this line (repeatable), exit.")
@click.option("--script", type=click.File(encoding="utf-8"), help="Play the file's lines, exit.")
def try_(
    tenant: str,
    config_path: str | None,
    start: str | None,
    port: int,
    lines: tuple[str, ...],
    script: Any,
) -> None:
    """Run a tenant's pack on a sandbox of its CRM and play events by hand (docs/first-pack.md)."""
    from datetime import datetime

    from bridge.trial.console import run

    try:
        moment = datetime.fromisoformat(start) if start else None
    except ValueError:
        hint = f"{start!r}: write it as 2025-11-14 09:00"
        raise click.BadParameter(hint, param_hint="--at") from None
    given = [*lines, *(script.read().splitlines() if script else [])]
    code = run(
        tenant, config_path=config_path, start=moment, port=port, lines=given if given else None
    )
    sys.exit(code)


@cli.command()
@click.option("--config", "path", default=None, help="Config file (default: $BRIDGE_CONFIG).")
@click.option(
    "--strict",
    is_flag=True,
    help="Fail when a secret is not set (on the server, before starting the bridge).",
)
def validate(path: str | None, strict: bool) -> None:
    """Check the config, mappings, regulation packs and templates (errors name file:line), and
    that every secret they name is set (never printing one)."""
    settings = config.load(path)
    for name, tenant in settings.tenants.items():
        click.echo(
            f"{name}: {tenant.config.crm}, "
            f"{len(tenant.rules)} rule(s) in {len(tenant.packs)} pack(s)"
        )
    missing, notes = config.missing_secrets(settings)
    for line in [*missing, *notes]:
        click.echo(line, err=True)
    if not missing:
        click.echo("configuration is valid")
        return
    click.echo(
        f"configuration is valid, but {len(missing)} secret(s) are not set (above): the bridge "
        "cannot run what needs them until they are",
        err=True,
    )
    if strict:
        sys.exit(1)


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
    from bridge.jobs import run_cron
    from bridge.runtime import Runtime

    run_cron(Runtime.build())


@cli.command()
@click.argument("tenant")
@click.argument("rule")
@click.option("--send", is_flag=True, help="Act; without it, only count the clients reached.")
def broadcast(tenant: str, rule: str, send: bool) -> None:
    """Run a broadcast rule once over every record of its kinds, open and closed alike (a
    mailing about a new product to every client or a group of them)."""
    from bridge.broadcast import run
    from bridge.runtime import Runtime

    click.echo(run(Runtime.build(), tenant, rule, send=send).summary())


@cli.command()
@click.option("--limit", default=20, show_default=True)
@click.option("--tenant", default=None)
def journal(limit: int, tenant: str | None) -> None:
    """List recent events with their decisions and actions."""
    from bridge.explanation import format_entry
    from bridge.journal import Journal
    from bridge.masking import redact

    for entry in Journal().recent(limit, tenant):
        # masked again: rows a bridge wrote before it masked its journal hold them unmasked
        click.echo(redact(format_entry(entry)))


@cli.command()
@click.argument("event_id", type=int)
def explain(event_id: int) -> None:
    """Each rule's verdict on a journaled event and why; the actions and their results."""
    from bridge.explanation import explain as describe
    from bridge.journal import Journal
    from bridge.masking import redact

    entry = Journal().entry(event_id)
    if entry is None:
        raise click.UsageError(f"no event #{event_id} in the journal (`bridge journal` lists them)")
    click.echo(redact(describe(entry)))


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
@click.option(
    "--config", "config_path", default=None, help="Config for scenarios naming a `tenant:`."
)
def check(packs: tuple[str, ...], folder: str, config_path: str | None) -> None:
    """Run the scenario files of regulation packs (no CRM, no Redis)."""
    from pathlib import Path

    from bridge.scenarios import run_pack

    paths = [Path(folder) / f"{name}.yaml" for name in packs] or sorted(Path(folder).glob("*.yaml"))
    missing = [p for p in paths if not p.is_file()]
    if missing or not paths:
        known = ", ".join(sorted(p.stem for p in Path(folder).glob("*.yaml"))) or "none"
        what = ", ".join(str(p) for p in missing) or f"no pack in {folder}"
        raise click.UsageError(f"{what}: no such pack; packs in {folder}: {known}")
    settings = functools.cache(lambda: config.load(config_path))  # only if a scenario asks
    failed = total = 0
    for path in paths:
        results = run_pack(path, settings)
        for result in results:
            total += 1
            failed += not result.ok
            click.echo(f"{'ok  ' if result.ok else 'FAIL'} {path.stem}: {result.name}")
            for problem in result.problems:
                click.echo(f"     {problem}")
    click.echo(f"{total - failed} passed, {failed} failed")
    sys.exit(1 if failed or not total else 0)


@cli.command()
@click.argument("name", required=False)
@click.option("--out", default=None, help="Write every schema to this folder (.schemas).")
def schema(name: str | None, out: str | None) -> None:
    """JSON Schemas of the YAML files, for editors (docs/configuration.md, "Editors").

    NAME (pack, scenario, mapping, config, dry-run) prints one; --out writes them all.
    """
    import json
    from pathlib import Path

    from bridge.schemas import SCHEMAS, write

    if out:
        for path in write(Path(out)):
            click.echo(f"wrote {path}")
        return
    if name not in SCHEMAS:
        raise click.UsageError(f"say which schema: {', '.join(SCHEMAS)} (or --out FOLDER)")
    click.echo(json.dumps(SCHEMAS[name](), ensure_ascii=False, indent=2))


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
@click.argument("event_file", required=False, type=click.Path(dir_okay=False))
@click.option("--tenant", default=None, help="The tenant (default: the file's, or the only one).")
@click.option("--kind", default=None, help="The record's kind (deal, lead...).")
@click.option("--id", "record_id", default=None, help="The record's id: read from the CRM.")
@click.option("--type", "event_type", default=None, help="The event type (record.updated...).")
@click.option("--at", default=None, help="When it happens, e.g. 2025-11-14T10:00:00+03:00.")
@click.option("--config", "config_path", default=None, help="Config (default: $BRIDGE_CONFIG).")
def dry_run(
    event_file: str | None,
    tenant: str | None,
    kind: str | None,
    record_id: str | None,
    event_type: str | None,
    at: str | None,
    config_path: str | None,
) -> None:
    """Show the plan for one event without acting (docs/configuration.md, "Dry runs").

    EVENT_FILE (YAML or JSON) describes the event; without ``record:`` in it, or with --id
    alone, the record is read from the CRM.
    """
    from bridge import dryrun

    if event_file is None and record_id is None:
        raise click.UsageError("give an event file, or --id of a record to read from the CRM")
    options = {"tenant": tenant, "kind": kind, "id": record_id, "type": event_type, "at": at}
    click.echo(dryrun.dry_run(dryrun.load(event_file, options), config_path))


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
