"""``maillage cooperations …``: the command line of the register of cooperations.

A thin layer: each command opens the register (``Settings().registry_url``, or ``--db``),
calls one library function inside one transaction and prints the result as a table, JSON or
CSV. Errors of the register become a one-line message and exit code 1; nothing is written
when a command fails. Writes need ``--user``/``--password`` (or the environment variables
MAILLAGE_USER / MAILLAGE_PASSWORD) of an editor or admin.

Commands: list, show, add, edit, end, delete, import, export, history, undo, bodies, network,
users add, users token.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated

import typer
from sqlalchemy.orm import Session

from maillage._errors import MaillageError

app = typer.Typer(help="Register of inter-territorial cooperations.", no_args_is_help=True)
users_app = typer.Typer(help="Users of the register.", no_args_is_help=True)
app.add_typer(users_app, name="users")

DbOpt = Annotated[str | None, typer.Option("--db", help="SQLAlchemy URL (default: settings).")]
UserOpt = Annotated[str | None, typer.Option("--user", envvar="MAILLAGE_USER", help="User name.")]
PasswordOpt = Annotated[
    str | None,
    typer.Option("--password", envvar="MAILLAGE_PASSWORD", help="Password.", show_default=False),
]
FormatOpt = Annotated[str, typer.Option("--format", "-f", help="table, json or csv.")]
NoCheckOpt = Annotated[
    bool, typer.Option("--no-reference-check", help="Do not check territories (offline use).")
]


def _fail(message: str) -> None:
    typer.echo(f"Error: {message}", err=True)
    raise typer.Exit(1)


@contextmanager
def _session(db: str | None) -> Iterator[Session]:
    """One transaction on the register; register errors become CLI errors."""
    from maillage.cooperations.db import open_registry, session_factory

    try:
        engine = open_registry(db)
        with session_factory(engine)() as session, session.begin():
            yield session
    except MaillageError as exc:
        _fail(str(exc))


def _login(session: Session, user: str | None, password: str | None):
    from maillage.cooperations.auth import authenticate

    return authenticate(session, user, password)


def _exists(no_check: bool):
    return None if no_check else _default_exists()


def _default_exists():
    from maillage.cooperations.crud import _DEFAULT

    return _DEFAULT


def _print_records(records, fmt: str) -> None:
    from maillage.cooperations.io import to_csv

    if fmt == "json":
        typer.echo(json.dumps([r.to_dict(include_version=True) for r in records],
                              ensure_ascii=False, indent=2))  # fmt: skip
    elif fmt == "csv":
        sys.stdout.write(to_csv(records))
    elif fmt == "table":
        rows = [(r.slug, r.instrument, r.status, r.start or "", r.end or "",
                 ",".join(r.themes), str(len(r.parties)), r.name) for r in records]  # fmt: skip
        _print_table(
            ["slug", "instrument", "status", "start", "end", "themes", "parties", "name"], rows
        )
    else:
        _fail(f"unknown format {fmt!r}: use table, json or csv")


def _print_table(header: list[str], rows: list[tuple]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(*header)
    for row in rows:
        table.add_row(*[str(c) for c in row])
    Console(width=200).print(table)


def _print_frame(df, fmt: str) -> None:
    if fmt == "json":
        typer.echo(df.to_json(orient="records", force_ascii=False, indent=2))
    elif fmt == "csv":
        buffer = io.StringIO()
        df.to_csv(buffer, index=False)
        sys.stdout.write(buffer.getvalue())
    else:
        _print_table(list(df.columns), [tuple(r) for r in df.itertuples(index=False)])


# ---------------------------------------------------------------------------------------------
# reading


@app.command("list")
def list_(
    party: Annotated[
        str | None, typer.Option(help="Only cooperations with this party ref.")
    ] = None,
    theme: Annotated[str | None, typer.Option(help="Only this theme (slug).")] = None,
    status: Annotated[str | None, typer.Option(help="planned, active or ended.")] = None,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
) -> None:
    """List the cooperations of the register."""
    from maillage.cooperations import crud

    with _session(db) as session:
        records = crud.list_cooperations(session, party=party, theme=theme, status=status)
    _print_records(records, fmt)


@app.command()
def show(slug: str, fmt: FormatOpt = "json", db: DbOpt = None) -> None:
    """Show one cooperation (with its version)."""
    from maillage.cooperations import crud

    with _session(db) as session:
        record = crud.get(session, slug)
    _print_records([record], fmt)


# ---------------------------------------------------------------------------------------------
# writing


def _parse_party(text: str) -> dict:
    """``REF[=ROLE][@JOINED[..LEFT]]`` → party dict (``REF`` may be ``"name as written"``)."""
    dates = None
    if "@" in text:
        text, dates = text.split("@", 1)
    ref, _, role = text.partition("=")
    party: dict = {"role": role or "member"}
    if ":" in ref:
        party["ref"] = ref.strip()
    else:
        party["ref"] = None
        party["name"] = ref.strip()
    if dates:
        joined, _, left = dates.partition("..")
        party["joined"] = joined or None
        party["left"] = left or None
    return party


@app.command()
def add(
    slug: str,
    name: Annotated[str, typer.Option(help="Name of the cooperation.")],
    instrument: Annotated[str, typer.Option(help="Instrument (slug or French label).")],
    party: Annotated[list[str], typer.Option(help="REF[=ROLE][@JOINED[..LEFT]], repeatable.")],
    theme: Annotated[list[str] | None, typer.Option(help="Theme, repeatable.")] = None,
    status: Annotated[str, typer.Option(help="planned, active or ended.")] = "active",
    start: Annotated[str | None, typer.Option(help="YYYY[-MM[-DD]].")] = None,
    end: Annotated[str | None, typer.Option(help="YYYY[-MM[-DD]].")] = None,
    governance: Annotated[str | None, typer.Option()] = None,
    funding: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    action: Annotated[list[str] | None, typer.Option(help="Action, repeatable.")] = None,
    source: Annotated[str | None, typer.Option(help="Source document.")] = None,
    page: Annotated[str | None, typer.Option(help="Page of the source.")] = None,
    quote: Annotated[str | None, typer.Option(help="Quotation from the source.")] = None,
    url: Annotated[str | None, typer.Option(help="Link to the source.")] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    no_reference_check: NoCheckOpt = False,
    db: DbOpt = None,
) -> None:
    """Add a cooperation."""
    from maillage.cooperations import crud

    data = {
        "slug": slug, "name": name, "instrument": instrument, "status": status, "start": start,
        "end": end, "themes": theme or [], "parties": [_parse_party(p) for p in party],
        "governance": governance, "funding": funding, "description": description,
        "actions": action or [],
        "sources": [],
    }  # fmt: skip
    if source:
        data["sources"] = [{"document": source, "page": page, "quote": quote, "url": url}]
    with _session(db) as session:
        who = _login(session, user, password)
        record = crud.create(session, data, user=who, exists=_exists(no_reference_check))
    typer.echo(f"added {record.slug} (version {record.version})")


@app.command()
def edit(
    slug: str,
    name: Annotated[str | None, typer.Option()] = None,
    new_slug: Annotated[str | None, typer.Option("--slug", help="Rename.")] = None,
    instrument: Annotated[str | None, typer.Option()] = None,
    status: Annotated[str | None, typer.Option()] = None,
    start: Annotated[str | None, typer.Option()] = None,
    end: Annotated[str | None, typer.Option()] = None,
    party: Annotated[list[str] | None, typer.Option(help="Replaces all parties.")] = None,
    theme: Annotated[list[str] | None, typer.Option(help="Replaces all themes.")] = None,
    governance: Annotated[str | None, typer.Option()] = None,
    funding: Annotated[str | None, typer.Option()] = None,
    description: Annotated[str | None, typer.Option()] = None,
    expected_version: Annotated[
        int | None, typer.Option(help="Refuse if the record is no longer at this version.")
    ] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    no_reference_check: NoCheckOpt = False,
    db: DbOpt = None,
) -> None:
    """Change fields of a cooperation (only the options given)."""
    from maillage.cooperations import crud

    changes = {
        k: v
        for k, v in {
            "name": name, "slug": new_slug, "instrument": instrument, "status": status,
            "start": start, "end": end, "governance": governance, "funding": funding,
            "description": description,
        }.items()
        if v is not None
    }  # fmt: skip
    if party:
        changes["parties"] = [_parse_party(p) for p in party]
    if theme:
        changes["themes"] = theme
    if not changes:
        _fail("nothing to change: give at least one option")
    with _session(db) as session:
        who = _login(session, user, password)
        record = crud.update(
            session, slug, changes, user=who, expected_version=expected_version,
            exists=_exists(no_reference_check),
        )  # fmt: skip
    typer.echo(f"updated {record.slug} (version {record.version})")


@app.command()
def end(
    slug: str,
    date: Annotated[str, typer.Option("--date", help="End date YYYY[-MM[-DD]].")],
    expected_version: Annotated[int | None, typer.Option()] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    no_reference_check: NoCheckOpt = False,
    db: DbOpt = None,
) -> None:
    """Mark a cooperation as ended."""
    from maillage.cooperations import crud

    with _session(db) as session:
        who = _login(session, user, password)
        record = crud.end(
            session, slug, end_date=date, user=who, expected_version=expected_version,
            exists=_exists(no_reference_check),
        )  # fmt: skip
    typer.echo(f"ended {record.slug} on {record.end} (version {record.version})")


@app.command()
def delete(
    slug: str,
    expected_version: Annotated[int | None, typer.Option()] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    db: DbOpt = None,
) -> None:
    """Delete a cooperation (kept in the history; undoable)."""
    from maillage.cooperations import crud

    with _session(db) as session:
        who = _login(session, user, password)
        crud.delete(session, slug, user=who, expected_version=expected_version)
    typer.echo(f"deleted {slug}")


@app.command("import")
def import_(
    path: Path,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="json, jsonl or csv.")] = None,
    replace: Annotated[bool, typer.Option(help="Update records whose slug exists.")] = False,
    user: UserOpt = None,
    password: PasswordOpt = None,
    no_reference_check: NoCheckOpt = False,
    db: DbOpt = None,
) -> None:
    """Import cooperations from a JSON or CSV file (all or nothing)."""
    from maillage.cooperations.io import import_records

    with _session(db) as session:
        who = _login(session, user, password)
        report = import_records(
            session, path, user=who, fmt=fmt, replace=replace, exists=_exists(no_reference_check)
        )
    typer.echo(
        f"imported {path}: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.unchanged)} unchanged"
    )


@app.command()
def export(
    path: Annotated[Path | None, typer.Argument(help="Output file (default: stdout).")] = None,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="json or csv.")] = None,
    db: DbOpt = None,
) -> None:
    """Export every cooperation as JSON or CSV."""
    from maillage.cooperations import crud
    from maillage.cooperations.io import export_records, to_csv, to_json

    with _session(db) as session:
        records = crud.list_cooperations(session)
    if path is None:
        sys.stdout.write(to_csv(records) if fmt == "csv" else to_json(records))
    else:
        export_records(records, path, fmt)
        typer.echo(f"exported {len(records)} cooperations to {path}")


@app.command()
def history(
    slug: Annotated[str | None, typer.Argument()] = None, fmt: FormatOpt = "table", db: DbOpt = None
) -> None:
    """Show the history of changes (of one cooperation if SLUG is given)."""
    from maillage.cooperations import crud

    with _session(db) as session:
        changes = crud.history(session, slug)
    if fmt == "json":
        typer.echo(json.dumps([c.to_dict() for c in changes], ensure_ascii=False, indent=2))
    elif fmt == "csv":
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["id", "at", "user", "action", "slug", "undoes"])
        for c in changes:
            writer.writerow([c.id, c.at.isoformat(), c.user, c.action, c.slug, c.undoes or ""])
    else:
        rows = [(c.id, c.at.strftime("%Y-%m-%d %H:%M:%S"), c.user, c.action, c.slug,
                 c.undoes or "") for c in changes]  # fmt: skip
        _print_table(["id", "at", "user", "action", "slug", "undoes"], rows)


@app.command()
def undo(
    change_id: int, user: UserOpt = None, password: PasswordOpt = None, db: DbOpt = None
) -> None:
    """Undo one change of the history."""
    from maillage.cooperations import crud

    with _session(db) as session:
        who = _login(session, user, password)
        change = crud.undo(session, change_id, user=who)
    typer.echo(f"undid change #{change_id} on {change.slug} (new change #{change.id})")


@app.command()
def seed(
    refresh: Annotated[bool, typer.Option(help="Overwrite edited seed records.")] = False,
    user: UserOpt = None,
    password: PasswordOpt = None,
    db: DbOpt = None,
) -> None:
    """Load the cooperations of the mission document (idempotent; needs an admin)."""
    from maillage.cooperations.auth import require_role
    from maillage.cooperations.seed import load_seed

    with _session(db) as session:
        require_role(_login(session, user, password), "admin")
        report = load_seed(session, refresh=refresh)
    typer.echo(
        f"seed: {len(report.created)} created, {len(report.updated)} updated, "
        f"{len(report.kept)} kept; {len(report.unresolved_parties)} with unresolved parties"
    )


@app.command()
def bodies(
    territory: str,
    include_inside: Annotated[bool, typer.Option(help="Also parties inside it.")] = False,
    fmt: FormatOpt = "table",
    db: DbOpt = None,
) -> None:
    """Every cooperation a territory takes part in, directly or through its EPCI/perimeters."""
    from maillage.cooperations import crud
    from maillage.cooperations._reference import default_index
    from maillage.cooperations.network import bodies_of

    with _session(db) as session:
        records = crud.list_cooperations(session)
    df = bodies_of(territory, records, default_index(), include_inside=include_inside)
    df["themes"] = df["themes"].map(",".join)
    _print_frame(df, fmt)


@app.command()
def network(
    path: Path,
    fmt: Annotated[str | None, typer.Option("--format", "-f", help="graphml or csv.")] = None,
    db: DbOpt = None,
) -> None:
    """Write the network of territories linked by cooperations (GraphML or CSV edges)."""
    from maillage.cooperations import crud
    from maillage.cooperations.network import export_network

    with _session(db) as session:
        records = crud.list_cooperations(session)
    try:
        export_network(records, path, fmt)
    except ValueError as exc:
        _fail(str(exc))
    typer.echo(f"wrote {path}")


# ---------------------------------------------------------------------------------------------
# users


@users_app.command("add")
def users_add(
    name: str,
    role: Annotated[str, typer.Option(help="reader, editor or admin.")] = "reader",
    new_password: Annotated[
        str | None,
        typer.Option("--new-password", envvar="MAILLAGE_NEW_PASSWORD", help="Its password."),
    ] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    db: DbOpt = None,
) -> None:
    """Add a user (an admin's credentials are needed, except for the very first user)."""
    from maillage.cooperations.auth import add_user, count_users

    if new_password is None and password is not None and user is None:
        new_password = password  # bootstrap: `users add NAME --role admin --password …`
    if new_password is None:
        new_password = typer.prompt(
            f"password for {name}", hide_input=True, confirmation_prompt=True
        )
    with _session(db) as session:
        by = None if count_users(session) == 0 else _login(session, user, password)
        created = add_user(session, name, new_password, role, by=by)
    typer.echo(f"added user {created.name} ({created.role})")


@users_app.command("token")
def users_token(
    label: Annotated[str | None, typer.Option(help="What the token is for.")] = None,
    user: UserOpt = None,
    password: PasswordOpt = None,
    db: DbOpt = None,
) -> None:
    """Create an API token for the logged-in user (printed once)."""
    from maillage.cooperations.auth import create_token

    with _session(db) as session:
        token = create_token(session, _login(session, user, password), label)
    typer.echo(token)
