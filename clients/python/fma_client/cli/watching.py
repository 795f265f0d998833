"""``fma watch``: a model's newest aggregates and their clients' scores, polled and redrawn in place."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from numbers import Real
from typing import Any

from rich.console import Console, Group
from rich.live import Live

from fma_client.cli import output
from fma_client.cli.session import Row, Session

COLUMNS: list[tuple[str, output.Cell]] = [
    ("aggregate", "id"),
    ("created", output.moment("created_on")),
    ("parent", "parent"),
    ("validation score", "validation_score"),
    ("scores", "scores"),
    (
        "mean of the clients' results",
        lambda row: "  ".join(f"{name}={value:.4g}" for name, value in row["means"].items()),
    ),
]


def mean_results(scores: list[Row]) -> dict[str, float]:
    """The mean of each numeric entry of the clients' ``validation_results`` (others, such as text, are left out)."""
    values: dict[str, list[float]] = defaultdict(list)
    for score in scores:
        results = score["validation_results"]
        for name, value in results.items() if isinstance(results, dict) else ():
            if isinstance(value, Real) and not isinstance(value, bool):
                values[name].append(float(value))
    return {name: sum(numbers) / len(numbers) for name, numbers in sorted(values.items())}


def snapshot(session: Session, model_id: int, count: int) -> dict[str, Any]:
    """The model and its ``count`` newest aggregates (newest first), each with its scores' count and means."""
    model = session.get_model(model_id)
    aggregates = []
    for aggregate in session.newest_aggregates(model_id, count):
        scores = session.list_scores(aggregate["id"])
        aggregates.append({**aggregate, "scores": len(scores), "means": mean_results(scores)})
    return {"model": model, "aggregates": aggregates}


def render(state: dict[str, Any]) -> Group:
    model = state["model"]
    aggregation = "on" if model.get("allow_aggregation") else "paused"
    title = (
        f"Model {model['id']} {model.get('name', '')!r}: aggregation {aggregation}, "
        f"clients: {len(model.get('clients') or [])}, at {datetime.now(UTC):%H:%M:%S} UTC"
    )
    if not state["aggregates"]:
        return Group(title, "No aggregate yet.")
    return Group(output.table(state["aggregates"], COLUMNS, title=title))


def watch(session: Session, model_id: int, *, interval: float, count: int) -> None:
    """Show the table every ``interval`` seconds until interrupted (Ctrl-C ends it without a traceback).

    On a terminal the table is redrawn in place; piped or redirected, where redrawing means nothing, each poll
    appends its table.
    """
    console = Console()
    try:
        if not console.is_terminal:
            while True:
                console.print(render(snapshot(session, model_id, count)))
                time.sleep(interval)
        with Live(render(snapshot(session, model_id, count)), console=console, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                live.update(render(snapshot(session, model_id, count)), refresh=True)
    except KeyboardInterrupt:
        return
