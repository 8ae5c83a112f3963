"""Where the command line writes: results on stdout, messages on stderr, one way to fail.

Shared by ``maillage.cli`` and the sub-apps it mounts (``cli_reports``, ``cli_firms``), which
must not import ``maillage.cli`` itself (it imports them while it loads).
"""

from __future__ import annotations

import typer
from rich.console import Console

from maillage._errors import AmbiguousTerritory

console = Console(stderr=True, soft_wrap=True)
out = Console(soft_wrap=True)


def fail(exc: BaseException) -> None:
    """Print ``exc`` in French on stderr (with the candidates of an ambiguous name), exit 1."""
    console.print(f"[bold red]Erreur[/]: {exc}", highlight=False)
    if isinstance(exc, AmbiguousTerritory) and exc.candidates:
        for c in exc.candidates[:10]:
            console.print(f"  • {c}", highlight=False)
    raise typer.Exit(1)
