"""What ``fma`` reads from the developer's files, checked before the service is asked."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from fma_client.cli.session import Row


class CliError(Exception):
    """Input ``fma`` refuses before asking the service (a missing file, a body that is not a mapping)."""


def read_model_file(path: Path) -> Row:
    """A model's body from a ``.json`` or ``.yaml``/``.yml`` file (``-`` reads JSON or YAML from stdin)."""
    try:
        content = typer.get_text_stream("stdin").read() if str(path) == "-" else path.read_text()
    except OSError as error:
        raise CliError(f"Cannot read {path}: {error.strerror}") from None
    if path.suffix.lower() in (".yaml", ".yml") or (str(path) == "-" and not content.lstrip().startswith("{")):
        try:
            # Imported only for a YAML file: JSON works without PyYAML.
            import yaml
        except ImportError:
            raise CliError(f"{path} is YAML, which needs PyYAML: pip install 'fma-client[cli]' (or pyyaml)") from None
        try:
            body = yaml.safe_load(content)
        except yaml.YAMLError as error:
            raise CliError(f"{path} is not valid YAML: {error}".replace("\n", " ")) from None
    else:
        try:
            body = json.loads(content)
        except ValueError as error:
            raise CliError(f"{path} is not valid JSON: {error}") from None
    if not isinstance(body, dict):
        raise CliError(f"{path} must hold a mapping of the model's fields, not {type(body).__name__}")
    if not body.get("name"):
        raise CliError(f"{path} names no model: `name` is missing")
    return body
