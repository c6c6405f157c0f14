"""The ``governance-bot`` command line.

Exit codes (docs/cli.md):
  0  success
  1  a check failed (doctor found problems, audit-log verify found tampering)
  2  usage or configuration error (every problem is listed)
  3  the database schema is outdated: run `governance-bot db upgrade`
  4  finished, but some input was skipped (only with --strict)
  5  notifications could not be delivered: the delivery is misconfigured (e.g. Slack); they stay
     queued and are delivered once it is fixed
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from typer.core import TyperArgument, TyperGroup

from governance_bot import __version__

if TYPE_CHECKING:
    from rich.console import Console
    from rich.progress import Progress, TaskID
    from rich.table import Table as RichTable

    from governance_bot.config import Config
    from governance_bot.items import Item
    from governance_bot.storage.db import Database

# Start-up: nothing heavy is imported at module level. `--help` and the commands that need no
# model, database or rich output import only what they use, inside the command (docs/cli.md,
# bench/startup.py): SQLAlchemy, pydantic-settings, rich and the model libraries each cost a
# noticeable part of a second or more.

EXIT_OK, EXIT_CHECK_FAILED, EXIT_CONFIG, EXIT_SCHEMA, EXIT_SKIPPED = 0, 1, 2, 3, 4
EXIT_NOT_DELIVERED = 5

class _HelpGroup(TyperGroup):
    """Typer's group, with arguments shown in help by their name alone (``FLAG_ID``, not
    ``FLAG_ID <int>``): every option and argument has a metavar a person understands."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        for param in getattr(command, "params", ()):
            if type(param) is TyperArgument and param.metavar:
                param.__class__ = _NamedArgument
        return command


class _NamedArgument(TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None


app = typer.Typer(
    name="governance-bot",
    cls=_HelpGroup,
    help="Keeps official social media and staff-learner channels safe: scan, flag, route, record.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # plain help: option values shown as FILE, N, TEXT (each option's metavar), flags as flags;
    # and no rich import just to print help
    rich_markup_mode=None,
)
def _group(help: str) -> typer.Typer:
    return typer.Typer(cls=_HelpGroup, help=help, no_args_is_help=True)


db_app = _group("Database schema.")
registers_app = _group("Who is who: staff, learners, accounts.")
connectors_app = _group("Connectors to platforms and channels.")
flags_app = _group("Flags raised so far.")
auditlog_app = _group("The tamper-evident audit log.")
report_app = _group("Reports for governors.")
keys_app = _group("Encryption keys for data at rest.")
slack_app = _group("The Slack app: check that messages arrive.")
app.add_typer(db_app, name="db")
app.add_typer(registers_app, name="registers")
app.add_typer(connectors_app, name="connectors")
app.add_typer(flags_app, name="flags")
app.add_typer(auditlog_app, name="audit-log")
app.add_typer(report_app, name="report")
app.add_typer(keys_app, name="keys")
app.add_typer(slack_app, name="slack")

class _LazyConsole:
    """A rich Console made on first use (importing rich costs start-up time)."""

    def __init__(self, stderr: bool) -> None:
        self._stderr = stderr
        self._console: Console | None = None

    def get(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(stderr=self._stderr, highlight=False)
        return self._console

    def __getattr__(self, name: str) -> Any:
        return getattr(self.get(), name)


out: Any = _LazyConsole(stderr=False)
err: Any = _LazyConsole(stderr=True)


def Table(*columns: str) -> RichTable:  # rich.table.Table, imported on use
    from rich.table import Table as RichTable

    return RichTable(*columns)


ConfigOpt = Annotated[
    Path,
    typer.Option("--config", "-c", envvar="GOVERNANCE_BOT_CONFIG", metavar="FILE",
                 help="The config file (TOML). Env: GOVERNANCE_BOT_CONFIG."),
]


def _setup_logging(config: Config | None, verbose: bool = False) -> None:
    from rich.logging import RichHandler

    level = "DEBUG" if verbose else (config.logging.level if config else "INFO")
    root = logging.getLogger()
    for h in list(root.handlers):
        root.removeHandler(h)
    handler = RichHandler(console=err.get(), show_path=False, rich_tracebacks=False)
    handler.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("httpx", "httpcore", "alembic", "apscheduler", "urllib3", "transformers"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLevelName(level)))


def _load(path: Path) -> Config:
    from governance_bot.config import ConfigError, load_config
    from governance_bot.storage import crypto

    try:
        config = load_config(path)
        crypto.configure(config.security.keys())
    except ConfigError as exc:
        # no markup: the messages quote "[section]" names and user text
        err.print(str(exc), style="red", markup=False, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except crypto.KeyError_ as exc:
        err.print(f"{path}: security.encryption_keys: {exc}", style="red", markup=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    _setup_logging(config)
    return config


def _unreachable(config: Config, exc: Exception) -> typer.Exit:
    """The database cannot be reached: say where and why, exit 2 (no traceback)."""
    from sqlalchemy.engine import make_url

    where = make_url(config.database_url).render_as_string(hide_password=True)
    why = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
    err.print(f"cannot reach the database {where}: {why}. Fix: check [database] url (or "
              "GOVERNANCE_BOT_DATABASE__URL) and that the database server is running and "
              "accepts connections from this machine.", style="red", markup=False,
              soft_wrap=True)
    return typer.Exit(EXIT_CONFIG)


def _key_problem(exc: Exception) -> typer.Exit:
    """The database and the configured encryption keys do not fit: say so, exit 2."""
    err.print(f"{exc}.", style="red", markup=False, soft_wrap=True)
    return typer.Exit(EXIT_CONFIG)


@contextmanager
def _storage_errors(config: Config) -> Iterator[None]:
    """A database whose schema is out of date, that cannot be reached, or that is opened without
    its key: one message naming the fix and its exit code, never a traceback."""
    from sqlalchemy.exc import OperationalError

    from governance_bot.storage.crypto import KeyError_
    from governance_bot.storage.db import SchemaOutdated

    try:
        yield
    except SchemaOutdated as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_SCHEMA) from None
    except OperationalError as exc:
        raise _unreachable(config, exc) from None
    except KeyError_ as exc:
        raise _key_problem(exc) from None


@contextmanager
def _database(config: Config, *, create_if_empty: bool = False, anchor: bool = True
              ) -> Iterator[Database]:
    """The configured database, checked: an outdated schema exits 3, keys that do not fit (or
    none, for a database holding encrypted data) exit 2 before anything is read or written."""
    from governance_bot.storage.db import Database

    db = Database(config.database_url)
    try:
        with _storage_errors(config):
            db.ensure_schema(create_if_empty=create_if_empty)
        yield db
        if anchor:  # events this command wrote, anchored outside the database
            from governance_bot.audit_anchor import anchor as write_anchor

            write_anchor(config, db)
    finally:
        db.dispose()


@contextmanager
def _runtime(config: Config, with_connectors: bool = True) -> Iterator[object]:
    from governance_bot.registers import RegisterError
    from governance_bot.runtime import Runtime
    from rules.base import DetectorUnavailable

    try:
        with _storage_errors(config):
            runtime = Runtime.from_config(config, with_connectors=with_connectors)
    except DetectorUnavailable as exc:
        err.print(f"[red]a detector cannot start: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    except RegisterError as exc:
        err.print("[red]the registers named in the config have problems:[/red]")
        for p in exc.problems:
            err.print(f"  - {p}", soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    try:
        yield runtime
    finally:
        runtime.close()


def _progress() -> Progress:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    return Progress(TextColumn("[progress.description]{task.description}"), BarColumn(),
                    MofNCompleteColumn(), TimeRemainingColumn(), console=err,
                    disable=not err.is_terminal)


def _version(value: bool) -> None:
    if value:
        out.print(f"governance-bot {__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """governance-bot: online-safety monitoring for schools, colleges and training providers."""


# --- init / doctor ----------------------------------------------------------------------------
@app.command()
def init(
    dir: Annotated[Path, typer.Option("--dir", metavar="DIR",
                                      help="Folder to write the starter config into.")],
    force: Annotated[bool, typer.Option(help="Overwrite existing files.")] = False,
) -> None:
    """Write a commented starter config (config.toml) and a registers template."""
    from governance_bot.starter import write_starter

    try:
        written = write_starter(dir, force=force)
    except FileExistsError as exc:
        err.print(f"[red]{exc} exists; use --force to overwrite.[/red]")
        raise typer.Exit(EXIT_CONFIG) from None
    for path in written:
        out.print(f"wrote {path}")
    out.print(f"next: edit {dir / 'config.toml'}, then `governance-bot doctor --config "
              f"{dir / 'config.toml'}`")


@app.command()
def doctor(
    config_path: ConfigOpt = Path("config.toml"),
    deep: Annotated[bool, typer.Option("--deep", help="Also load every model and run it once "
                                       "(seconds; without it, models are checked from their "
                                       "files and recorded checks).")] = False,
) -> None:
    """Check config, database, registers, connector credentials and models; say what to fix."""
    from governance_bot.config import ConfigError, load_config
    from governance_bot.doctor import run_doctor

    try:
        config = load_config(config_path)
    except ConfigError as exc:
        out.print("[red]✗ configuration[/red]")
        for p in exc.problems:
            out.print(f"    {p}", soft_wrap=True)
        raise typer.Exit(EXIT_CHECK_FAILED) from None
    _setup_logging(config)
    checks = run_doctor(config, deep=deep)
    failed = 0
    for check in checks:
        mark = "[green]✓[/green]" if check.ok else ("[yellow]![/yellow]" if check.warning
                                                     else "[red]✗[/red]")
        out.print(f"{mark} ", end="")
        out.print(f"{check.name}: {check.message}", soft_wrap=True, markup=False)
        if check.fix and not check.ok:
            out.print(f"    fix: {check.fix}", soft_wrap=True, markup=False)
        failed += 0 if (check.ok or check.warning) else 1
    raise typer.Exit(EXIT_CHECK_FAILED if failed else EXIT_OK)


# --- models -----------------------------------------------------------------------------------
models_app = _group("Model files: fetched once, then read offline.")
app.add_typer(models_app, name="models")


@models_app.command("fetch")
def models_fetch(
    config_path: ConfigOpt = Path("config.toml"),
    source: Annotated[Path | None, typer.Option(
        "--from", metavar="DIR", help="A folder filled by `models fetch` on another machine (or a "
        "bundle from `python -m rules.toxicity_export prepare`): copy from it, download nothing."
    )] = None,
    force: Annotated[bool, typer.Option("--force", help="Download, export and check again even "
                                        "if the files are there.")] = False,
    offline: Annotated[bool, typer.Option("--offline", help="Prepare only what needs no download "
                                          "(the models that ship in packages).")] = False,
) -> None:
    """Put the models the configured rules use into the model store, once: Detoxify's weights
    (downloaded: run where there is internet, or use --from), the ONNX exports, and each
    export's parity check against its reference model, recorded beside it. The service then
    starts from these files alone, offline. Exit 1 if a model is not usable."""
    from governance_bot.config import Config
    from governance_bot.model_fetch import fetch_models

    if config_path.exists() or config_path != Path("config.toml"):
        config = _load(config_path)
    else:  # no config yet: the default models
        config = Config()
        _setup_logging(config)
    if source is not None and not source.is_dir():
        err.print(f"[red]--from {source}: no such folder[/red]")
        raise typer.Exit(EXIT_CONFIG)
    ok = fetch_models(config, source, force,
                      lambda line: out.print(line, markup=False, soft_wrap=True), offline=offline)
    if not ok:
        raise typer.Exit(EXIT_CHECK_FAILED)


# --- db ---------------------------------------------------------------------------------------
@db_app.command("upgrade")
def db_upgrade(config_path: ConfigOpt = Path("config.toml")) -> None:
    """Create or migrate the database schema to this version."""
    from governance_bot.storage.db import Database

    config = _load(config_path)
    db = Database(config.database_url)
    try:
        with _storage_errors(config):
            before, after = db.upgrade()
            db.check_encryption()
    finally:
        db.dispose()
    out.print(f"database schema: {before or 'empty'} -> {after}")


# --- registers --------------------------------------------------------------------------------
@registers_app.command("import")
def registers_import(
    config_path: ConfigOpt = Path("config.toml"),
    learners: Annotated[Path | None, typer.Option(metavar="FILE", help="learners CSV")] = None,
    staff: Annotated[Path | None, typer.Option(metavar="FILE", help="staff CSV")] = None,
    accounts: Annotated[Path | None, typer.Option(metavar="FILE", help="accounts CSV")] = None,
    toml: Annotated[Path | None, typer.Option("--toml", metavar="FILE",
                                              help="registers TOML")] = None,
    actor: Annotated[str, typer.Option(metavar="NAME",
                                       help="Who is importing (for the audit log).")] = "cli",
) -> None:
    """Import registers (idempotent: re-importing updates, never duplicates; changes are logged).

    With no files given, imports the files named in the config's [registers] section."""
    from governance_bot.registers import RegisterError
    from governance_bot.runtime import import_register_files

    config = _load(config_path)
    if not any([learners, staff, accounts, toml]):
        r = config.registers
        toml = config.resolve_path(r.file) if r.file else None
        learners = config.resolve_path(r.learners) if r.learners else None
        staff = config.resolve_path(r.staff) if r.staff else None
        accounts = config.resolve_path(r.accounts) if r.accounts else None
        if not any([learners, staff, accounts, toml]):
            err.print("[red]no register files given and none in the config's [registers].[/red]")
            raise typer.Exit(EXIT_CONFIG)
    with _database(config, create_if_empty=True) as db:
        try:
            summary = import_register_files(db, toml=toml, learners=learners, staff=staff,
                                            accounts=accounts, actor=actor)
        except RegisterError as exc:
            err.print(f"{len(exc.problems)} problem(s) in the register files; nothing imported:",
                      style="red", markup=False)
            for p in exc.problems:
                err.print(f"  - {p}", soft_wrap=True, markup=False)
            raise typer.Exit(EXIT_CONFIG) from None
    out.print(f"registers imported: {summary.line()}")


# --- connectors -------------------------------------------------------------------------------
@connectors_app.command("list")
def connectors_list() -> None:
    """Print the known connector names."""
    from connectors.registry import available, load

    table = Table("connector", "source", "description")
    for name, source in available().items():
        try:
            description = load(name).description
        except Exception as exc:  # a plugin that cannot be imported
            description = f"[red]cannot be loaded: {exc}[/red]"
        table.add_row(name, source, description)
    out.print(table)


@connectors_app.command("subscribe")
def connectors_subscribe(
    names: Annotated[list[str] | None, typer.Argument(
        metavar="NAME", show_default=False,
        help="Connector names (default: every connector that takes subscriptions).")] = None,
    config_path: ConfigOpt = Path("config.toml"),
    remove: Annotated[bool, typer.Option(
        "--remove", help="Delete the subscriptions instead (e.g. before retiring a connector).")
    ] = False,
) -> None:
    """Create or renew the webhook subscriptions (Microsoft Teams change notifications) now.

    `governance-bot run` does this itself at start and before they expire; use this to check the
    set-up while the service is running at [service] public_url. Exit 1 if any failed."""
    from governance_bot.runtime import Runtime
    from governance_bot.subscriptions import managers_for

    config = _load(config_path)
    with _runtime(config) as rt:
        assert isinstance(rt, Runtime)
        if not config.service.public_url:
            err.print("[red]set [service] public_url to the https:// address the service is "
                      "reachable at from the internet; subscriptions point there[/red]",
                      soft_wrap=True)
            raise typer.Exit(EXIT_CONFIG)
        managers = managers_for(rt.db, rt.connectors, config.service.public_url)
        unknown = [n for n in names or [] if n not in managers]
        if unknown:
            err.print(f"[red]not a connector that takes subscriptions (or subscribe = false): "
                      f"{', '.join(unknown)}[/red]")
            raise typer.Exit(EXIT_CONFIG)
        failed = False
        table = Table("connector", "resource", "subscription", "expires")
        for name, manager in managers.items():
            if names and name not in names:
                continue
            report = manager.remove_all() if remove else manager.sync(renew_all=True)
            for resource, entry in sorted(manager.load().items()):
                table.add_row(name, resource, str(entry.get("id")), str(entry.get("expires")))
            for resource in report.removed:
                out.print(f"{name}: removed the subscription for {resource}")
            for problem in report.problems:
                failed = True
                err.print(problem, markup=False, soft_wrap=True)
        if not remove:
            out.print(table)
    if failed:
        raise typer.Exit(EXIT_CHECK_FAILED)


# --- scan / ingest / classify -----------------------------------------------------------------
def _print_report(report: object, title: str) -> None:
    from governance_bot.pipeline import ScanReport

    assert isinstance(report, ScanReport)
    out.print(
        f"{title}: {report.items} items ({report.new} new, {report.edited} edited, "
        f"{report.unchanged} unchanged, {report.deleted} deleted); "
        f"{report.flags_created} new flags, {report.flags_updated} updated"
    )
    if report.problems:
        err.print(f"[yellow]{len(report.problems)} record(s) skipped:[/yellow]")
        for p in report.problems[:50]:
            err.print(f"  - {p}", soft_wrap=True, markup=False)
        if len(report.problems) > 50:
            err.print(f"  ... and {len(report.problems) - 50} more")


def _warn_unavailable(runtime: object) -> None:
    from governance_bot.runtime import Runtime

    assert isinstance(runtime, Runtime)
    for rule_id, why in runtime.engine.unavailable.items():
        err.print(f"[red]detection rule {rule_id} is OFF:[/red] ", end="")
        err.print(why, markup=False, soft_wrap=True)


def _slack_ready_or_exit(runtime: object, serving: bool = False) -> None:
    """With Slack as the sink: is it usable? If not, one line (what, and the fix) and exit 5;
    the notifications stay queued (nothing is attempted, so nothing is lost or sent twice)."""
    from governance_bot.runtime import Runtime

    assert isinstance(runtime, Runtime)
    if runtime.config.delivery.sink != "slack":
        return
    from governance_bot.slack.setup import SlackNotReady, SlackUnreachable, preflight

    try:
        preflight(runtime.config, serving=serving)
    except SlackUnreachable as exc:  # an outage, not a misconfiguration: the outbox retries
        err.print(f"{exc} The notifications are retried with backoff; none is lost.",
                  markup=False, soft_wrap=True, style="yellow")
    except SlackNotReady as exc:
        from sqlalchemy import func, select

        from governance_bot.storage import models as m

        with runtime.db.session() as session:
            queued = session.execute(select(func.count(m.OutboxMessage.id)).where(
                m.OutboxMessage.delivered_at.is_(None))).scalar_one()
        err.print(f"{exc} {queued} notification(s) stay queued and are delivered once this "
                  "is fixed.", markup=False, soft_wrap=True, style="red")
        raise typer.Exit(EXIT_NOT_DELIVERED) from None


def _deliver(runtime: object) -> None:
    from governance_bot.runtime import Runtime

    assert isinstance(runtime, Runtime)
    _slack_ready_or_exit(runtime)
    delivered, failed = runtime.sender().drain()
    out.print(f"delivered {delivered} notification(s)" +
              (f"; {failed} failed and will be retried" if failed else ""))


@app.command()
def scan(
    config_path: ConfigOpt = Path("config.toml"),
    once: Annotated[bool, typer.Option("--once", help="Poll every connector once, then exit.")
                    ] = True,
    strict: Annotated[bool, typer.Option(help="Exit 4 if any record was skipped.")] = False,
) -> None:
    """Poll every configured connector once, detect, deliver, exit."""
    from connectors.base import ConnectorError
    from governance_bot.pipeline import ScanReport
    from governance_bot.runtime import Runtime

    config = _load(config_path)
    total = ScanReport()
    with _runtime(config) as rt:
        assert isinstance(rt, Runtime)
        if not rt.connectors:
            err.print("[yellow]no connectors are configured: add [[connectors]] to the config."
                      "[/yellow]")
        with _progress() as progress:
            for connector in rt.connectors:
                task = progress.add_task(f"{connector.name}", total=None)
                def advance(n: int, t: TaskID = task) -> None:
                    progress.advance(t, n)

                try:
                    report = rt.pipeline.scan(connector, progress=advance)
                except ConnectorError as exc:
                    # one failing account never stops the others
                    rt.pipeline.save_cursor(connector.name, None, str(exc))
                    total.problems.append(f"{connector.name}: {exc}")
                    continue
                progress.update(task, total=report.items, completed=report.items)
                total.merge(report)
        _print_report(total, "scan")
        _warn_unavailable(rt)
        _deliver(rt)
    if strict and total.problems:
        raise typer.Exit(EXIT_SKIPPED)


def _read_items_or_exit(path: Path) -> None:
    if not path.exists():
        err.print(f"[red]{path}: no such file[/red]")
        raise typer.Exit(EXIT_CONFIG)


@app.command()
def ingest(
    file: Annotated[Path, typer.Argument(metavar="FILE",
                                         help="A .jsonl file (or folder) of normalised items.",
                                          show_default=False)],
    config_path: ConfigOpt = Path("config.toml"),
    strict: Annotated[bool, typer.Option(help="Exit 4 if any line was skipped.")] = False,
) -> None:
    """Run the given items through the full pipeline: archive, detect, flag, deliver."""
    from connectors.jsonl import LineProblem, count_lines, read_items
    from governance_bot.pipeline import ScanReport
    from governance_bot.runtime import Runtime

    _read_items_or_exit(file)
    config = _load(config_path)
    report = ScanReport()
    with _runtime(config, with_connectors=False) as rt:
        assert isinstance(rt, Runtime)
        with _progress() as progress:
            task = progress.add_task(f"ingest {file.name}", total=count_lines(file))

            def good_lines() -> Iterator[Item]:
                for _path, _line, parsed in read_items(file):
                    if isinstance(parsed, LineProblem):
                        report.problems.append(str(parsed))
                        progress.advance(task)
                    else:
                        yield parsed

            rt.pipeline.process_many(good_lines(), report,
                                     progress=lambda n: progress.advance(task, n))
        _print_report(report, "ingest")
        _warn_unavailable(rt)
        _deliver(rt)
    if strict and report.problems:
        raise typer.Exit(EXIT_SKIPPED)


@app.command()
def classify(
    input: Annotated[Path, typer.Option("--input", "-i", metavar="FILE",
                                           help="Normalised items (.jsonl).")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                            help="Where to write findings (.jsonl).")],
    config_path: ConfigOpt = Path("config.toml"),
) -> None:
    """Detection only (no database, no delivery): one output line per item,
    {"item_id", "findings": [...]}."""
    from connectors.jsonl import LineProblem, count_lines, read_items
    from governance_bot.classify import Classifier

    _read_items_or_exit(input)
    config = _load(config_path)
    classifier = Classifier.from_config(config)
    problems: list[str] = []
    items = flagged = failed = 0
    with output.open("w", encoding="utf-8") as fh, _progress() as progress:
        task = progress.add_task(f"classify {input.name}", total=count_lines(input))

        def good_lines() -> Iterator[Item]:
            for _path, _line, parsed in read_items(input):
                if isinstance(parsed, LineProblem):
                    problems.append(str(parsed))
                    progress.advance(task)
                else:
                    yield parsed

        # in batches, as ingest detects: the models see many items at once
        for item, result in classifier.classify_many(good_lines()):
            progress.advance(task)
            items += 1
            line: dict[str, Any] = {"item_id": item.id, "item_key": item.key}
            if isinstance(result, Exception):
                failed += 1
                line["error"] = f"detection failed: {type(result).__name__}: {result}"
                problems.append(f"item {item.key}: {line['error']}")
            else:
                flagged += bool(result)
                line["findings"] = [f.to_dict() for f in result]
            fh.write(json.dumps(line, ensure_ascii=False) + "\n")
    out.print(f"classified {items} items: {flagged} with findings"
              + (f", {failed} failed" if failed else "") + f" -> {output}")
    for rule_id, why in classifier.engine.unavailable.items():
        err.print(f"[red]detection rule {rule_id} is OFF:[/red] ", end="")
        err.print(why, markup=False, soft_wrap=True)
    for p in problems:
        err.print(f"[yellow]skipped[/yellow] {p}", soft_wrap=True, markup=True)


@app.command("eval")
def eval_(
    input: Annotated[Path, typer.Option("--input", "-i", metavar="FILE",
                                        help="Labelled records (.jsonl): "
                                        '{"text", "labels": [...]} or items with "labels".')],
    config_path: ConfigOpt = Path("config.toml"),
    rules: Annotated[list[str] | None, typer.Option(
        "--rule", metavar="RULE",
        help="Run only this rule (repeat for several), e.g. --rule safeguarding.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="The report as JSON.")] = False,
) -> None:
    """Precision, recall, F1 and false-alarm rate per category and safeguarding family (and the
    confusion) of the configured rules on labelled examples, such as the shared development
    sets (../shared/datasets/safeguarding-dev/*.jsonl)."""
    from governance_bot.evaluation import run_eval
    from rules.base import DetectorUnavailable

    _read_items_or_exit(input)
    config = _load(config_path)
    try:
        report = run_eval(config, input, rules=rules, as_json=as_json)
    except DetectorUnavailable as exc:
        err.print(f"[red]a detector cannot start: {exc}[/red]", soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    out.print(report, markup=False, highlight=False)


# --- flags ------------------------------------------------------------------------------------
FLAG_STATUSES = ("open", "acknowledged", "actioned", "dismissed", "escalated", "closed")
ROUTES = ("dsl", "account_managers", "digest", "record_only", "case_manager", "case_digest")


def _day(value: str | None, option: str) -> date | None:
    if value is None:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        err.print(f"[red]{option} {value!r}: use a date like 2026-11-20[/red]")
        raise typer.Exit(EXIT_CONFIG) from None


def _wide() -> Console:
    """Where the output is not a terminal (a file, a pipe), tables are never cut to 80
    columns: each line is as long as its content."""
    from rich.console import Console

    return out.get() if out.is_terminal else Console(highlight=False, width=100_000)


AsOpt = Annotated[str | None, typer.Option(
    "--as", metavar="STAFF_ID",
    help="Show exactly what this member of staff may see (need to know); without it, the "
    "operator's view: cases (safeguarding, concerns about staff) only as such.")]


def _looker(config: Config, registers: Any, staff_id: str | None) -> Any:
    """The member of staff named by ``--as`` (None: the operator), or a clear error."""
    from governance_bot.console.access import need_to_know

    if staff_id is None:
        return None
    person = need_to_know(config, registers).staff(staff_id)
    if person is None or not person.active:
        err.print(f"[red]--as {staff_id!r}: no active member of staff with that id in the staff "
                  "register (see `governance-bot registers show`)[/red]")
        raise typer.Exit(EXIT_CONFIG)
    return person


@flags_app.command("list")
def flags_list(
    config_path: ConfigOpt = Path("config.toml"),
    status: Annotated[str | None, typer.Option(
        metavar="STATUS", help=f"One of: {', '.join(FLAG_STATUSES)}.")] = None,
    severity: Annotated[int | None, typer.Option(metavar="1-5", min=1, max=5,
                                                 help="Only this severity.")] = None,
    min_severity: Annotated[int | None, typer.Option(
        "--min-severity", metavar="1-5", min=1, max=5, help="Only this severity or higher."
    )] = None,
    route: Annotated[str | None, typer.Option(metavar="ROUTE",
                                              help=f"One of: {', '.join(ROUTES)}.")] = None,
    account: Annotated[str | None, typer.Option(
        metavar="ACCOUNT", help="Only this account (its account_id).")] = None,
    since: Annotated[str | None, typer.Option("--from", metavar="YYYY-MM-DD",
                                              help="Flagged on or after this day.")] = None,
    until: Annotated[str | None, typer.Option("--to", metavar="YYYY-MM-DD",
                                              help="Flagged on or before this day.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per line.")] = False,
    limit: Annotated[int, typer.Option(metavar="N", help="At most this many, newest first.")] = 200,
    as_staff: AsOpt = None,
    by: Annotated[str | None, typer.Option("--by", metavar="NAME",
                                           help="Who is looking, with --as (for the audit "
                                           "log; default: the login name).")] = None,
) -> None:
    """List flags, newest first, as need to know lets the reader see them (docs/routing.md,
    "The command line"): `--as STAFF_ID` lists exactly the flags that member of staff may see,
    each as they see it (their findings' severity, category and rules); without it, the
    operator's view lists every flag, but a case (safeguarding, a concern about staff) only as
    such: for whom, its state, never its severity, category or rules."""
    from datetime import UTC, datetime, time

    from sqlalchemy import select
    from sqlalchemy.exc import OperationalError

    from governance_bot.console.access import need_to_know
    from governance_bot.console.visible import FlagLens
    from governance_bot.labels import category_name
    from governance_bot.register_store import load_registers
    from governance_bot.registers import RegisterIndex
    from governance_bot.storage import auditlog
    from governance_bot.storage import models as m

    if status is not None and status not in FLAG_STATUSES:
        err.print(f"[red]--status {status!r}: use one of {', '.join(FLAG_STATUSES)}[/red]")
        raise typer.Exit(EXIT_CONFIG)
    if route is not None and route not in ROUTES:
        err.print(f"[red]--route {route!r}: use one of {', '.join(ROUTES)}[/red]")
        raise typer.Exit(EXIT_CONFIG)
    first, last = _day(since, "--from"), _day(until, "--to")
    config = _load(config_path)

    def wanted(seen: Any) -> bool:
        """The filters on what the reader sees (a case's severity is not theirs to filter)."""
        if route and seen.route != route:
            return False
        if severity is None and min_severity is None:
            return True
        if seen.severity is None:
            return False
        return (severity is None or seen.severity == severity) and (
            min_severity is None or seen.severity >= min_severity)

    rows: list[tuple[Any, Any, Any]] = []
    left_out = 0
    try:
        with _database(config) as db, db.session() as session:
            registers = RegisterIndex(load_registers(session))
            looker = _looker(config, registers, as_staff)
            lens = FlagLens(need_to_know(config, registers))
            query = select(m.Flag, m.ItemRecord).join(m.ItemRecord,
                                                      m.ItemRecord.id == m.Flag.item_id)
            if status:
                query = query.where(m.Flag.status == status)
            if account:
                query = query.where(m.Flag.account == account)
            if first:
                query = query.where(m.Flag.created_at >= datetime.combine(first, time.min, UTC))
            if last:
                query = query.where(m.Flag.created_at <= datetime.combine(last, time.max, UTC))
            query = query.order_by(m.Flag.id.desc())
            # newest first, a batch at a time, until `limit` flags the reader may see match
            offset = 0
            while len(rows) < limit:
                batch = session.execute(query.limit(500).offset(offset)).all()
                if not batch:
                    break
                offset += len(batch)
                seen_of = lens.shown(session, [flag.id for flag, _ in batch], looker)
                for flag, record in batch:
                    seen = seen_of.get(flag.id)
                    if seen is None:
                        continue
                    if not wanted(seen):
                        left_out += seen.restricted
                        continue
                    rows.append((flag, record, seen))
                    if len(rows) >= limit:
                        break
            if looker is not None:
                auditlog.append(session, by or _actor_default(), "cli.flags_list",
                                f"staff:{looker.staff_id}",
                                {"as": looker.staff_id, "flags": [f.id for f, _, _ in rows][:100]})
    except OperationalError as exc:
        raise _unreachable(config, exc) from None
    if as_json:
        for flag, record, seen in rows:
            print(json.dumps({
                "flag_id": flag.id, "status": flag.status, "severity": seen.severity,
                "category": seen.category, "route": seen.route, "account": flag.account,
                "item": record.key, "rules": list(seen.rules), "restricted": seen.restricted,
                "note": seen.note, "created_at": flag.created_at.isoformat(),
                "posted_at": flag.item_created_at.isoformat(),
            }))
    else:
        table = Table("#", "sev", "concern", "route", "status", "account", "item", "flagged",
                      "rules")
        for flag, record, seen in rows:
            table.add_row(str(flag.id), "-" if seen.restricted else str(seen.severity),
                          "a case (restricted)" if seen.restricted
                          else category_name(seen.category), seen.route, flag.status,
                          flag.account, record.kind, f"{flag.created_at:%Y-%m-%d %H:%M}",
                          ", ".join(seen.rules))
        console = _wide()
        console.print(table)
        console.print(f"{len(rows)} flag(s)" + (
            f" as {looker.name} ({looker.staff_id}) may see them" if looker is not None else ""))
        if any(seen.restricted for _, _, seen in rows):
            console.print("A case is shown only as such: its content is for its audience "
                          "(`--as STAFF_ID` shows what that member of staff may see).")
    if left_out:
        err.print(f"{left_out} case(s) not listed: a case's severity is for its audience "
                  "(use --as STAFF_ID)", markup=False)


@flags_app.command("show")
def flags_show(
    flag_id: Annotated[int, typer.Argument(metavar="FLAG_ID",
                                           help="The flag (see `flags list`).")],
    config_path: ConfigOpt = Path("config.toml"),
    as_json: Annotated[bool, typer.Option("--json", help="The whole case as JSON.")] = False,
    by: Annotated[str | None, typer.Option("--by", metavar="NAME",
                                           help="Who is looking (for the audit log; default: "
                                           "the login name).")] = None,
    as_staff: AsOpt = None,
) -> None:
    """What the console's case page shows: the item, its thread, versions, findings, who was
    told, decisions, notes, the learner's register details and chronology, the audit trail,
    cut to what need to know lets the reader see (docs/routing.md, "The command line"):
    `--as STAFF_ID` shows exactly that member of staff's view; without it, the operator's: a
    flag of content only as its account's managers see it (masked), a case only as such (for
    whom, its state, who was told). The look is audited."""
    from sqlalchemy.exc import OperationalError

    from governance_bot.console.access import (
        case_access,
        need_to_know,
        operator_access,
        viewer_for,
    )
    from governance_bot.console.cases import load_case, restricted_case
    from governance_bot.register_store import load_registers
    from governance_bot.registers import RegisterIndex
    from governance_bot.storage import auditlog

    config = _load(config_path)
    summary = None
    try:
        with _database(config) as db, db.session() as session:
            registers = RegisterIndex(load_registers(session))
            looker = _looker(config, registers, as_staff)
            if looker is not None:
                viewer = viewer_for(registers, config, looker.staff_id)
                access: Any = (lambda f, fs, it: case_access(viewer, f, fs, it)) \
                    if viewer is not None else (lambda f, fs, it: None)
            else:
                nt = need_to_know(config, registers)
                access = lambda f, fs, it: operator_access(nt, f, fs, it)  # noqa: E731
            case = load_case(session, flag_id, config=config, registers=registers,
                             access=access)
            if case is None and looker is None:
                summary = restricted_case(session, flag_id, need_to_know(config, registers))
            if case is not None or summary is not None:
                auditlog.append(session, by or _actor_default(), "cli.flags_show",
                                f"flag:{flag_id}", {"json": as_json, "as": as_staff})
    except OperationalError as exc:
        raise _unreachable(config, exc) from None
    if summary is not None:
        if as_json:
            print(json.dumps(summary, indent=2, ensure_ascii=False))
        else:
            _wide().print("\n".join(f"{k}: {v}" for k, v in summary.items() if v is not None),
                          markup=False, highlight=False, soft_wrap=True)
        return
    if case is None:
        whose = f" that {as_staff} may see" if as_staff else ""
        err.print(f"[red]there is no flag {flag_id}{whose} (see `governance-bot flags list"
                  f"{' --as ' + as_staff if as_staff else ''}`)[/red]")
        raise typer.Exit(EXIT_CONFIG)
    if as_json:
        print(json.dumps(case.as_dict(), indent=2, ensure_ascii=False))
        return
    from governance_bot.console.export import case_text

    _wide().print(case_text(case, config), markup=False, highlight=False, soft_wrap=True)


# --- slack ------------------------------------------------------------------------------------
@slack_app.command("test")
def slack_test(
    to: Annotated[str, typer.Option("--to", metavar="dsl|managers",
                                    help="dsl (the DSL and deputies) or managers "
                                    "(an account's designated managers)")],
    account: Annotated[str | None, typer.Argument(
        metavar="ACCOUNT", show_default=False, help="the account (with --to managers)")] = None,
    config_path: ConfigOpt = Path("config.toml"),
) -> None:
    """Send a clearly marked test message to the DSL team or to an account's managers."""
    from sqlalchemy.exc import OperationalError

    from governance_bot.register_store import load_registers
    from governance_bot.registers import RegisterIndex
    from governance_bot.slack.setup import SlackNotReady, send_test
    from governance_bot.storage.db import Database, SchemaOutdated

    if to not in ("dsl", "managers"):
        err.print("--to: give dsl or managers")
        raise typer.Exit(EXIT_CONFIG)
    if to == "managers" and not account:
        err.print("--to managers needs the account, e.g. "
                  "`governance-bot slack test --to managers my-facebook-page`")
        raise typer.Exit(EXIT_CONFIG)
    config = _load(config_path)
    db = Database(config.database_url)
    try:
        db.ensure_schema(create_if_empty=False)
        with db.session() as session:
            registers = RegisterIndex(load_registers(session))
    except SchemaOutdated as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(EXIT_SCHEMA) from None
    except OperationalError as exc:
        raise _unreachable(config, exc) from None
    finally:
        db.dispose()
    try:
        where = send_test(config, registers, to, account)
    except SlackNotReady as exc:
        err.print(str(exc), markup=False, soft_wrap=True, style="red")
        raise typer.Exit(EXIT_NOT_DELIVERED) from None
    out.print(f"test message sent to {where}", markup=False)


# --- audit log --------------------------------------------------------------------------------
@auditlog_app.command("verify")
def auditlog_verify(
    config_path: ConfigOpt = Path("config.toml"),
    anchors: Annotated[list[Path] | None, typer.Option(
        "--anchors", metavar="FILE", help="Anchor file(s) to check against (default: "
        "[audit_log] anchor_file; give a copy kept elsewhere, e.g. from a backup or the syslog "
        "server).")] = None,
) -> None:
    """Check the audit log: every link and seal of the chain, the head against the anchors
    written outside the database, and that every flag, decision and notification has its audit
    events. Says what it found; exit 1 if anything is wrong."""
    from governance_bot.audit_anchor import anchor_path
    from governance_bot.storage import auditlog

    config = _load(config_path)
    files = anchors or [p for p in [anchor_path(config)] if p is not None]
    with _database(config, anchor=False) as db, db.session() as session:
        report = auditlog.CheckReport(auditlog.verify(session))
        for path in files:
            auditlog.check_anchors(session, auditlog.read_anchor_file(path), str(path), report)
        auditlog.cross_check(session, report)
    chain = report.chain
    seal = (f"sealed with key {auditlog.signing_key()[0]}"  # type: ignore[index]
            if chain.keyed and not chain.unkeyed else
            f"{chain.keyed} sealed with a key, {chain.unkeyed} with plain hashes"
            if chain.keyed else "plain hashes (no key configured)")
    if chain.ok:
        out.print(f"chain: intact, {chain.checked} event(s), {seal}", markup=False)
    else:
        out.print(f"chain: BROKEN at event {chain.broken_seq}: {chain.problem}", style="red",
                  markup=False)
    for note in chain.notes:
        out.print(f"  note: {note}", markup=False)
    if not files:
        out.print("anchors: none configured ([audit_log] anchor_file): a cut or emptied log "
                  "can only show in the cross-check", style="yellow", markup=False)
    elif not report.anchor_problems:
        out.print(f"anchors: {report.anchors_checked} checked in "
                  f"{', '.join(str(p) for p in files)}: the log reaches every anchored event",
                  markup=False)
    for problem in report.anchor_problems:
        out.print(f"anchors: {problem}", style="red", markup=False)
    for note in report.anchor_notes[:5]:
        out.print(f"  note: {note}", markup=False)
    counts = report.cross_counts
    if not report.cross_problems:
        out.print(f"cross-check: every flag ({counts['flags']}), decision "
                  f"({counts['decisions']}) and notification ({counts['notifications']}) has "
                  "its audit events", markup=False)
    for problem in report.cross_problems:
        out.print(f"cross-check: {problem}", style="red", markup=False)
    if report.ok:
        out.print(f"audit log intact: {chain.checked} event(s) verified")
        return
    out.print("audit log NOT intact: see above", style="red", markup=False)
    raise typer.Exit(EXIT_CHECK_FAILED)


@auditlog_app.command("anchor")
def auditlog_anchor(config_path: ConfigOpt = Path("config.toml")) -> None:
    """Write the log's head outside the database now ([audit_log]: the anchor file, syslog,
    Slack). The service does this every [audit_log] anchor_minutes; run it from cron where only
    commands run."""
    from governance_bot.audit_anchor import anchor

    config = _load(config_path)
    with _database(config) as db:
        record = anchor(config, db)
    out.print(f"anchored at event {record['seq']}" if record else
              "nothing new to anchor (the head has not moved since the last anchor)")


# --- audit and reports -----------------------------------------------------------------------
@app.command()
def audit(
    config_path: ConfigOpt = Path("config.toml"),
    out_dir: Annotated[Path | None, typer.Option("--out", metavar="DIR",
                                                 help="Folder for the HTML and CSV "
                                                 "report (default: [audit] report_dir)")] = None,
) -> None:
    """Run the dual-access and settings audit now and write its report."""
    from sqlalchemy import select

    from governance_bot.access_audit.cycle import AccessAudit
    from governance_bot.reports import access_audit_report
    from governance_bot.runtime import Runtime
    from governance_bot.storage.audit_models import AccessFinding

    config = _load(config_path)
    with _runtime(config) as rt:
        assert isinstance(rt, Runtime)
        audit_ = AccessAudit(config, rt.db, rt.registers, connectors=rt.connectors)
        run_id = audit_.run_now()
        folder = out_dir or config.resolve_path(config.audit.report_dir)
        html, csv_path = access_audit_report(config, rt.db, run_id, folder)
        with rt.db.session() as session:
            findings = list(session.execute(select(AccessFinding).where(
                AccessFinding.run_id == run_id).order_by(AccessFinding.severity.desc())).scalars())
    if findings:
        table = Table("sev", "account", "check", "finding", "remedy")
        for f in findings:
            table.add_row(str(f.severity), f.account_id, f.check, f.message, f.remedy)
        out.print(table)
    if not audit_.asks_managers:
        out.print("Slack is not set up, so the managers could not be asked to confirm their "
                  "access this week: check with them by hand (docs/slack.md sets Slack up).",
                  soft_wrap=True)
    out.print(f"{len(findings)} finding(s); report: {html} and {csv_path}")


@report_app.command("governors")
def report_governors(
    start: Annotated[str, typer.Option("--from", metavar="YYYY-MM-DD", help="First day.")],
    end: Annotated[str, typer.Option("--to", metavar="YYYY-MM-DD", help="Last day.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                            help="The HTML file to write.")],
    config_path: ConfigOpt = Path("config.toml"),
) -> None:
    """The termly/annual report for governors: flags by category and month, time to acknowledge,
    removals and reasons, audit findings over time, changes to rules and registers."""
    from datetime import date

    from governance_bot.reports import governors_report
    from governance_bot.storage.db import Database

    config = _load(config_path)
    try:
        first, last = date.fromisoformat(start), date.fromisoformat(end)
    except ValueError as exc:
        err.print(f"[red]--from/--to: {exc} (use YYYY-MM-DD)[/red]")
        raise typer.Exit(EXIT_CONFIG) from None
    db = Database(config.database_url)
    try:
        with _storage_errors(config):
            db.ensure_schema(create_if_empty=False)
            path = governors_report(config, db, first, last, output)
    finally:
        db.dispose()
    out.print(f"wrote {path}")


# --- keys ------------------------------------------------------------------------------------
@keys_app.command("generate")
def keys_generate() -> None:
    """Print a new encryption key (keep it in the environment, never in the config file)."""
    from governance_bot.storage.crypto import generate_key

    print(generate_key())


@keys_app.command("rotate")
def keys_rotate(config_path: ConfigOpt = Path("config.toml")) -> None:
    """Re-encrypt every encrypted column with the first configured key (and encrypt anything
    stored before encryption was switched on)."""
    from governance_bot.storage.db import Database

    config = _load(config_path)
    if not config.security.keys():
        err.print("[red]no encryption keys configured: set GOVERNANCE_BOT_SECURITY__ENCRYPTION_KEYS"
                  " (see docs/security.md)[/red]")
        raise typer.Exit(EXIT_CONFIG)
    db = Database(config.database_url)
    try:
        # an empty or outdated schema is refused with what to run (not reported as a database
        # that cannot be reached), and some configured key must read what is there
        with _storage_errors(config):
            db.ensure_schema(create_if_empty=False)
            _rotate_keys(config, db)
    finally:
        db.dispose()


def _rotate_keys(config: Config, db: Database) -> None:
    from governance_bot.audit_anchor import anchor_path, anchor_reseal
    from governance_bot.media import store_from_config
    from governance_bot.storage import auditlog
    from governance_bot.storage.rotation import rotate_all

    counts = rotate_all(db)
    store = store_from_config(config)
    if store is not None:  # the media store's pictures are encrypted with the same keys
        counts["media files"] = store.rotate()
    out.print("re-encrypted: " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    # the audit log's seals rotate with the keys: checked with the old (the chain and the
    # anchors: re-sealing a log the anchors show was cut or rewritten would hide it), sealed
    # with the new, and the new head anchored before the re-sealing commits (a re-sealed log
    # with no anchor saying so would look rewritten to every later check)
    path = anchor_path(config)
    try:
        with db.session() as session:
            if path is not None:
                report = auditlog.CheckReport(auditlog.verify(session))
                auditlog.check_anchors(session, auditlog.read_anchor_file(path), str(path),
                                       report)
                if report.anchor_problems:
                    raise ValueError("the anchors do not match it ("
                                     + "; ".join(report.anchor_problems) + ")")
            sealed = auditlog.reseal(session)
            try:
                anchor_reseal(config, session)
            except OSError as exc:
                raise ValueError(f"its new head could not be written to {path} "
                                 f"({exc.strerror or exc}); let this user append to it, or "
                                 "set [audit_log] anchor_file") from None
    except ValueError as exc:
        err.print(f"the audit log was NOT re-sealed: {exc}. Keep the old key configured "
                  "and see `governance-bot audit-log verify`.", style="red", markup=False,
                  soft_wrap=True)
        raise typer.Exit(EXIT_CHECK_FAILED) from None
    out.print(f"audit log: {sealed} event(s) sealed with the new key (anchored)")


# --- data protection: legal holds, retention, subject access and erasure (docs/data-protection.md)
legal_hold_app = _group("Legal holds: flags (and their threads) that must be kept.")
retention_app = _group("Retention of archived content.")
learner_app = _group("One learner's data: subject-access export, erasure (UK GDPR).")
app.add_typer(legal_hold_app, name="legal-hold")
app.add_typer(retention_app, name="retention")
app.add_typer(learner_app, name="learner")


def _actor_default() -> str:
    import getpass

    try:
        return getpass.getuser()
    except Exception:  # no user name in a container
        return "cli"


ByOpt = Annotated[str | None, typer.Option("--by", metavar="NAME",
                                           help="Who is doing this (for the audit log; "
                                           "default: the login name).")]


@contextmanager
def _dp_db(config: Config) -> Iterator[object]:

    from governance_bot.data_protection import DataProtectionError
    from governance_bot.storage.db import Database

    db = Database(config.database_url)
    try:
        with _storage_errors(config):
            db.ensure_schema(create_if_empty=False)
            yield db
    except DataProtectionError as exc:
        err.print(f"[red]{exc}[/red]", markup=True, soft_wrap=True)
        raise typer.Exit(EXIT_CONFIG) from None
    finally:
        db.dispose()


@legal_hold_app.command("set")
def legal_hold_set(
    flag_id: Annotated[int, typer.Argument(metavar="FLAG_ID", help="The flag (see `flags list`).")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why it must be kept.")],
    config_path: ConfigOpt = Path("config.toml"),
    by: ByOpt = None,
) -> None:
    """Place a legal hold on a flag: its item and thread are kept whatever retention or erasure
    would do."""
    from governance_bot.data_protection import place_hold
    from governance_bot.storage.db import Database

    config = _load(config_path)
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        with db.session() as session:
            place_hold(session, flag_id, reason, by or _actor_default())
    out.print(f"legal hold placed on flag {flag_id}")


@legal_hold_app.command("release")
def legal_hold_release(
    flag_id: Annotated[int, typer.Argument(metavar="FLAG_ID", help="The flag.")],
    reason: Annotated[str, typer.Option("--reason", metavar="TEXT", help="Why it may now go.")],
    config_path: ConfigOpt = Path("config.toml"),
    by: ByOpt = None,
) -> None:
    """Release the legal hold on a flag (retention applies to it again)."""
    from governance_bot.data_protection import release_hold
    from governance_bot.storage.db import Database

    config = _load(config_path)
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        with db.session() as session:
            n = release_hold(session, flag_id, reason, by or _actor_default())
    out.print(f"legal hold released on flag {flag_id} ({n} hold(s))")


@legal_hold_app.command("list")
def legal_hold_list(config_path: ConfigOpt = Path("config.toml")) -> None:
    """List the flags under a legal hold, with who placed each hold and why."""
    from governance_bot.data_protection import active_holds
    from governance_bot.storage.db import Database

    config = _load(config_path)
    table = Table("flag", "category", "sev", "placed", "by", "reason")
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        with db.session() as session:
            rows = active_holds(session)
            for flag, holds in rows:
                if not holds:
                    table.add_row(str(flag.id), flag.category, str(flag.severity), "", "",
                                  "(no reason recorded)")
                for hold in holds:
                    table.add_row(str(flag.id), flag.category, str(flag.severity),
                                  hold.placed_at.isoformat(timespec="minutes"), hold.placed_by,
                                  hold.reason)
    out.print(table)
    out.print(f"{len(rows)} flag(s) under a legal hold")


@retention_app.command("apply")
def retention_apply(
    config_path: ConfigOpt = Path("config.toml"),
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only say what would be removed.")
                       ] = False,
    by: ByOpt = None,
) -> None:
    """Remove the content of items past their retention period ([retention] in the config),
    keeping a tombstone, the content hashes and the audit trail. Held items are never touched."""
    from governance_bot.data_protection import apply_retention
    from governance_bot.storage.db import Database

    config = _load(config_path)
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        from governance_bot.media import store_from_config

        report = apply_retention(db, config.retention, by or _actor_default(), dry_run=dry_run,
                                 media=store_from_config(config))
    out.print(report.line())


@learner_app.command("export")
def learner_export(
    learner_id: Annotated[str, typer.Argument(metavar="LEARNER_ID",
                                                   help="The learner_id in the register.")],
    output: Annotated[Path, typer.Option("--output", "-o", metavar="FILE",
                                            help="The JSON file to write.")],
    config_path: ConfigOpt = Path("config.toml"),
    by: ByOpt = None,
) -> None:
    """Subject-access export: the learner's register record, every archived item that names
    them or that they wrote or received, the flags about them and the decisions taken."""
    from governance_bot.data_protection import export_learner, write_export
    from governance_bot.storage.db import Database

    config = _load(config_path)
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        data = export_learner(db, config, learner_id, by or _actor_default())
    write_export(data, output)
    out.print(f"wrote {output}: {len(data['items'])} item(s), {len(data['flags'])} flag(s) "
              "(review it before release: see its \"note\")")


@learner_app.command("erase")
def learner_erase(
    learner_id: Annotated[str, typer.Argument(metavar="LEARNER_ID",
                                                   help="The learner_id in the register.")],
    confirm: Annotated[bool, typer.Option("--confirm", help="Required: erasure cannot be "
                                          "undone.")] = False,
    config_path: ConfigOpt = Path("config.toml"),
    by: ByOpt = None,
) -> None:
    """Erase one learner: their register record and their personal data in archived items
    (text replaced by a note; hashes and the audit trail kept). Items under a legal hold are
    retained and listed with the reason."""
    from governance_bot.data_protection import erase_learner
    from governance_bot.storage.db import Database

    if not confirm:
        err.print("[red]erasure cannot be undone: run `governance-bot learner export` first if "
                  "a copy is needed, then repeat with --confirm[/red]")
        raise typer.Exit(EXIT_CONFIG)
    config = _load(config_path)
    with _dp_db(config) as db:
        assert isinstance(db, Database)
        report = erase_learner(db, config, learner_id, by or _actor_default())
    out.print(f"learner {learner_id}: register record "
              f"{'removed' if report.register_record_removed else 'not found'}; "
              f"{len(report.items_redacted)} item(s) ({report.versions_redacted} version(s)) "
              f"redacted; {report.informed_redacted} contact record(s) redacted; "
              f"{report.media_removed} stored picture(s) deleted")
    if report.retained:
        out.print(f"{len(report.retained)} item(s) retained under a legal hold (UK GDPR Art. "
                  "17(3): legal claims / obligations):")
        for key, reasons in report.retained:
            out.print(f"  - {key}: {'; '.join(reasons)}", soft_wrap=True, markup=False)
    for path in report.still_in_register_files:
        err.print(f"[yellow]{path} still lists {learner_id}: remove them there too, or the next "
                  "start or `registers import` adds them back[/yellow]", soft_wrap=True)


# --- run --------------------------------------------------------------------------------------
@app.command()
def run(config_path: ConfigOpt = Path("config.toml")) -> None:
    """The service: polls each connector at its interval, drains the outbox, serves webhooks.
    Stops cleanly on SIGTERM or Ctrl-C."""
    from governance_bot.service import Service

    config = _load(config_path)
    with _runtime(config) as rt:
        _slack_ready_or_exit(rt, serving=True)
        Service(rt).run_forever()  # type: ignore[arg-type]


def entrypoint() -> None:  # pragma: no cover
    sys.exit(app())
