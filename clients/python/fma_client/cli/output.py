"""What ``fma`` prints: tables for people (rich), JSON for programs (``--json``), one-line errors on stderr."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

import typer
from rich.console import Console, RenderableType
from rich.table import Table

Cell = str | Callable[[dict[str, Any]], Any]


def emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=str))


def text(value: Any) -> str:
    """A cell: empty for None, ``yes``/``no`` for booleans, JSON for lists and mappings."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list | dict):
        return json.dumps(value, default=str)
    return str(value)


def moment(key: str) -> Callable[[dict[str, Any]], str]:
    """A cell of the row's time ``key`` to the second (ISO 8601 text as the service answers, or a datetime)."""

    def cell(row: dict[str, Any]) -> str:
        value = row.get(key)
        if not value:
            return ""
        when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
        return f"{when:%Y-%m-%d %H:%M:%S} {when.tzname() or ''}".rstrip()

    return cell


def table(rows: Sequence[dict[str, Any]], columns: Sequence[tuple[str, Cell]], *, title: str | None = None) -> Table:
    """A table of ``rows``: each column a header and the row's key, or a function of the row."""
    shown = Table(title=title, title_justify="left")
    for header, _ in columns:
        shown.add_column(header, overflow="fold")
    for row in rows:
        shown.add_row(*(text(cell(row) if callable(cell) else row.get(cell)) for _, cell in columns))
    return shown


def fields(row: dict[str, Any], *, title: str | None = None) -> Table:
    """One row as a two-column table of its fields."""
    return table(
        [{"field": name, "value": value} for name, value in row.items()],
        [("field", "field"), ("value", "value")],
        title=title,
    )


def show(renderable: RenderableType) -> None:
    Console().print(renderable)


def error(message: str) -> None:
    """``Error: message`` on one line of stderr (a multi-line body, such as a proxy's HTML page, joined up)."""
    typer.echo(f"Error: {' '.join(message.split())}", err=True)
