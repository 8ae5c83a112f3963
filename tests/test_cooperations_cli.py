"""``maillage cooperations …`` end to end on a SQLite register (Typer's CliRunner)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from maillage.cli_cooperations import app

runner = CliRunner()


@pytest.fixture
def db(tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'reg.sqlite'}"
    monkeypatch.setenv("MAILLAGE_REGISTRY_URL", url)  # read through Settings().registry_url
    monkeypatch.delenv("MAILLAGE_USER", raising=False)
    monkeypatch.delenv("MAILLAGE_PASSWORD", raising=False)
    return url


def run(*args, env=None):
    return runner.invoke(app, list(args), env=env)


ADMIN = ["--user", "root", "--password", "root-password"]


def test_session(db, tmp_path):
    # bootstrap: the first user needs no credentials
    out = run("users", "add", "root", "--role", "admin", "--new-password", "root-password")
    assert out.exit_code == 0, out.output
    # afterwards an admin is needed
    out = run("users", "add", "eve", "--role", "editor", "--new-password", "eve-password")
    assert out.exit_code == 1 and "credentials needed" in out.output
    out = run("users", "add", "ed", "--role", "editor", "--new-password", "ed-password", *ADMIN)
    assert out.exit_code == 0, out.output
    ed = {"MAILLAGE_USER": "ed", "MAILLAGE_PASSWORD": "ed-password"}

    out = run(
        "add", "brest-quimper", "--name", "Entente Brest – Quimper", "--instrument", "entente",
        "--party", "epci:242900314=lead@2012", "--party", "epci:200068120",
        "--party", "l'État=associate", "--theme", "Attractivité", "--start", "2012", env=ed,
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "version 1" in out.output

    out = run("show", "brest-quimper")
    shown = json.loads(out.output)[0]
    assert shown["themes"] == ["attractivite"]
    assert shown["parties"][0] == {"ref": "epci:242900314", "role": "lead", "joined": "2012",
                                   "left": None, "name": None, "note": None}  # fmt: skip
    assert shown["parties"][2]["ref"] is None and shown["parties"][2]["name"] == "l'État"

    # refused changes say why and change nothing
    out = run("edit", "brest-quimper", "--theme", "astrologie", env=ed)
    assert out.exit_code == 1 and "theme 'astrologie' is unknown" in out.output
    out = run("edit", "brest-quimper", "--name", "X", "--user", "ed", "--password", "wrong")
    assert out.exit_code == 1 and "wrong user name or password" in out.output
    out = run("edit", "brest-quimper", "--name", "X", "--expected-version", "7", env=ed)
    assert out.exit_code == 1 and "version 1, not 7" in out.output
    out = run("add", "x", "--name", "X", "--instrument", "entente", "--party", "epci:999999999",
              env=ed)  # fmt: skip
    assert out.exit_code == 1 and "no such territory" in out.output

    out = run("edit", "brest-quimper", "--theme", "attractivite", "--theme", "mobilité",
              "--expected-version", "1", env=ed)  # fmt: skip
    assert out.exit_code == 0 and "version 2" in out.output
    out = run("end", "brest-quimper", "--date", "2024-06", env=ed)
    assert out.exit_code == 0, out.output

    out = run("list", "--format", "csv")
    assert out.output.splitlines()[0].startswith("slug,name,instrument")
    assert "brest-quimper" in out.output and ",ended," in out.output

    out = run("history", "brest-quimper", "--format", "json")
    changes = json.loads(out.output)
    assert [c["action"] for c in changes] == ["create", "update", "end"]
    out = run("undo", str(changes[-1]["id"]), env=ed)
    assert out.exit_code == 0, out.output
    assert json.loads(run("show", "brest-quimper").output)[0]["status"] == "active"

    # export, delete, import back: same record
    exported = tmp_path / "out.json"
    assert run("export", str(exported)).exit_code == 0
    before = json.loads(exported.read_text(encoding="utf-8"))
    assert run("delete", "brest-quimper", env=ed).exit_code == 0
    assert json.loads(run("list", "--format", "json").output) == []
    out = run("import", str(exported), env=ed)
    assert out.exit_code == 0 and "1 created" in out.output, out.output
    again = tmp_path / "again.json"
    run("export", str(again))
    assert json.loads(again.read_text(encoding="utf-8")) == before

    # readers may not write
    run("users", "add", "rita", "--role", "reader", "--new-password", "rita-password", *ADMIN)
    out = run("delete", "brest-quimper", "--user", "rita", "--password", "rita-password")
    assert out.exit_code == 1 and "needs editor" in out.output

    # the whole picture of a commune: Brest (29019) through Brest Métropole
    out = run("bodies", "com:29019", "--format", "json")
    bodies = json.loads(out.output)
    assert [(b["slug"], b["via"], b["relation"]) for b in bodies] == [
        ("brest-quimper", "epci:242900314", "through")
    ]
    net = tmp_path / "net.graphml"
    assert run("network", str(net)).exit_code == 0 and net.exists()
