"""The ``fma`` commands (typer): each reads its input, calls ``Session`` and prints through ``output``."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import typer

from fma_client.cli import credentials, output, watching
from fma_client.cli.inputs import CliError, read_model_file
from fma_client.cli.session import Session, log_in
from fma_client.errors import APIError, FMAClientError, ServiceUnreachable, Unauthorized
from fma_client.transport import DEFAULT_URL

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(
    help="Model developers' command line of the FMA API service.",
    no_args_is_help=True,
    # Errors of the service are one line each (below); anything else is a bug and keeps its traceback.
    pretty_exceptions_enable=False,
)
models_app = typer.Typer(help="List, create and show federated models.", no_args_is_help=True)
tokens_app = typer.Typer(help="Enrollment tokens of `invite` models: list, create, revoke.", no_args_is_help=True)
app.add_typer(models_app, name="models")
app.add_typer(tokens_app, name="tokens")

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON (for programs) instead of a table.")]


class WeightFormat(StrEnum):
    safetensors = "safetensors"
    npz = "npz"
    json = "json"


def _problems(problems: Any) -> str:
    return " ".join(map(str, problems)) if isinstance(problems, list) else str(problems)


def _api_message(error: APIError) -> str:
    message = error.message
    if isinstance(message, dict):  # field errors: {"field": ["problem", ...], ...}
        message = "; ".join(
            # DRF names errors of the whole body ``non_field_errors``: those read better without a name.
            _problems(problems) if name == "non_field_errors" else f"{name}: {_problems(problems)}"
            for name, problems in message.items()
        )
    elif isinstance(message, list):
        message = _problems(message)
    return f"{message} (HTTP {error.status_code})"


def one_line_errors(command: Callable[P, R]) -> Callable[P, R]:
    """Turn what the service or the input refused into ``Error: ...`` on stderr and exit code 1, no traceback."""

    @functools.wraps(command)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return command(*args, **kwargs)
        except credentials.NotLoggedIn as error:
            output.error(str(error))
        except Unauthorized as error:
            output.error(f"The service refused the stored login: {_api_message(error)}. Run `fma login` again.")
        except APIError as error:
            output.error(_api_message(error))
        except ServiceUnreachable as error:
            output.error(f"No answer from the service: {error}")
        except (FMAClientError, CliError) as error:
            output.error(str(error))
        raise typer.Exit(1)

    return run


def _session() -> Session:
    return Session(credentials.load())


@app.command()
@one_line_errors
def login(
    *,
    url: Annotated[str, typer.Option(help="The service's root URL.", prompt="Service URL")] = DEFAULT_URL,
    username: Annotated[str, typer.Option(prompt=True)],
    password: Annotated[str, typer.Option(prompt=True, hide_input=True)],
) -> None:
    """Log in with a username and password; the token is stored for the other commands (readable by you only)."""
    try:
        stored = log_in(url, username, password)
    except APIError as error:
        output.error(f"Login failed: {_api_message(error)}")
        raise typer.Exit(1) from None
    path = credentials.save(stored)
    typer.echo(f"Logged in to {stored.url} as {stored.username}; token stored in {path}.")


@app.command()
def logout() -> None:
    """Forget the stored token."""
    path = credentials.remove()
    typer.echo(f"Logged out; {path} removed." if path else "Not logged in.")


MODEL_COLUMNS: list[tuple[str, output.Cell]] = [
    ("id", "id"),
    ("name", "name"),
    ("aggregator", "aggregator"),
    ("requirement", "requirement"),
    ("aggregating", "allow_aggregation"),
    ("registration", "registration"),
    ("clients", lambda row: len(row.get("clients") or [])),
    ("created", output.moment("created_on")),
]


@models_app.command("list")
@one_line_errors
def models_list(as_json: JsonOption = False) -> None:
    """The models you develop."""
    rows = _session().list_models()
    output.emit_json(rows) if as_json else output.show(output.table(rows, MODEL_COLUMNS))


@models_app.command("create")
@one_line_errors
def models_create(
    file: Annotated[
        Path, typer.Option("--file", "-f", help="The model's fields: a .json or .yaml file, or - for stdin.")
    ],
    as_json: JsonOption = False,
) -> None:
    """Create a model from a file of its fields (name, aggregator, requirement, initial_model, ...)."""
    model = _session().create_model(read_model_file(file))
    output.emit_json(model) if as_json else output.show(output.fields(model, title=f"Created model {model['id']}"))


@models_app.command("show")
@one_line_errors
def models_show(model_id: Annotated[int, typer.Argument(metavar="ID")], as_json: JsonOption = False) -> None:
    """One model's fields."""
    model = _session().get_model(model_id)
    if as_json:
        output.emit_json(model)
        return
    # Every client's uuid would fill the screen: the table counts them, --json lists them.
    counted = {**model, "clients": f"{len(model.get('clients') or [])} (--json lists them)"}
    output.show(output.fields(counted, title=f"Model {model_id}"))


@app.command()
@one_line_errors
def watch(
    model_id: Annotated[int, typer.Argument(metavar="MODEL_ID")],
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between polls.")] = 5.0,
    last: Annotated[int, typer.Option(min=1, max=20, help="How many of the newest aggregates to show.")] = 10,
    once: Annotated[bool, typer.Option("--once", help="Print the table once and exit (for scripts).")] = False,
    as_json: JsonOption = False,
) -> None:
    """A live table of a model's newest aggregates and their clients' scores (Ctrl-C stops it)."""
    session = _session()
    if once or as_json:
        state = watching.snapshot(session, model_id, last)
        output.emit_json(state) if as_json else output.show(watching.render(state))
        return
    watching.watch(session, model_id, interval=interval, count=last)


@app.command()
@one_line_errors
def publish(
    aggregate_id: Annotated[int, typer.Argument(metavar="AGGREGATE_ID")],
    version: Annotated[str | None, typer.Option(help="The artifact's version (default: the next minor one).")] = None,
    as_json: JsonOption = False,
) -> None:
    """Publish an aggregate as its model's current artifact."""
    artifact = _session().publish(aggregate_id, version)
    if as_json:
        output.emit_json(artifact)
    else:
        typer.echo(
            f"Published aggregate {aggregate_id} as version {artifact['version']} "
            f"(artifact {artifact['id']}) of model {artifact['federated_model']}."
        )


@app.command()
@one_line_errors
def download(
    aggregate_id: Annotated[int, typer.Argument(metavar="AGGREGATE_ID")],
    output_file: Annotated[Path, typer.Option("--output", "-o", help="The file to write.", dir_okay=False)],
    weight_format: Annotated[
        WeightFormat, typer.Option("--format", help="The weights' format.")
    ] = WeightFormat.safetensors,
) -> None:
    """Download an aggregate's weights to a file (safetensors, npz or the JSON weights document)."""
    if not output_file.resolve().parent.is_dir():
        raise CliError(f"No folder {output_file.resolve().parent} to write {output_file.name} in")
    size = _session().download(aggregate_id, weight_format.value, output_file)
    typer.echo(f"Wrote aggregate {aggregate_id} ({weight_format.value}, {size} bytes) to {output_file}.")


# ISO 8601 as typer's defaults read it, and with a UTC offset (``+00:00``); without one a time is local.
EXPIRY_FORMATS = ["%Y-%m-%d", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M:%S", "%Y-%m-%dT%H:%M:%S%z"]
TOKEN_COLUMNS: list[tuple[str, output.Cell]] = [
    ("id", "id"),
    ("model", "federated_model"),
    ("uses", "uses"),
    ("used", "used"),
    ("expires", output.moment("expires_at")),
    ("created", output.moment("created_on")),
]


@tokens_app.command("list")
@one_line_errors
def tokens_list(
    model: Annotated[int | None, typer.Option(help="Only this model's tokens.")] = None, as_json: JsonOption = False
) -> None:
    """Enrollment tokens of your models, newest first (their secret is shown only when created)."""
    rows = _session().list_tokens(model)
    output.emit_json(rows) if as_json else output.show(output.table(rows, TOKEN_COLUMNS))


@tokens_app.command("create")
@one_line_errors
def tokens_create(
    model_id: Annotated[int, typer.Argument(metavar="MODEL_ID")],
    uses: Annotated[int, typer.Option(min=1, help="How many clients may register with it.")] = 1,
    expires_at: Annotated[
        datetime | None,
        typer.Option(formats=EXPIRY_FORMATS, help="When it stops working (default: the service's, 7 days)."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """A new enrollment token of an `invite` model; its secret is shown now and never again."""
    row: dict[str, Any] = _session().create_token(model_id, uses, expires_at)
    if as_json:
        output.emit_json(row)
        return
    output.show(output.table([row], TOKEN_COLUMNS))
    typer.echo(f"Token (shown only now; hand it to the clients): {row['token']}")


@tokens_app.command("revoke")
@one_line_errors
def tokens_revoke(token_id: Annotated[int, typer.Argument(metavar="TOKEN_ID")]) -> None:
    """Delete an enrollment token: no client registers with it any more (those it registered stay)."""
    _session().revoke_token(token_id)
    typer.echo(f"Revoked enrollment token {token_id}.")


def main() -> None:
    """The ``fma`` console script."""
    app(prog_name="fma")
