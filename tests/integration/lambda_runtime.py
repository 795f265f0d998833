"""A stand-in for the Lambda runtime: one warm container running a handler over events it is fed.

Started as ``python lambda_runtime.py <module>`` (e.g. ``service_initialization``) with the function's
environment; ``python -I lambda_runtime.py --code-root <folder> <module>`` runs a built artifact instead,
with only that folder on the path (and nothing of this repository). Each line on stdin is one JSON
event; each answer is one line on stdout starting with ``RESULT `` (the handler's return value) or
``ERROR `` (the exception's type and message), so that anything else the process prints cannot be
mistaken for an answer.
"""

from __future__ import annotations

import json
import sys
from importlib import import_module
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[2]


def main() -> None:
    arguments = sys.argv[1:]
    if arguments[0] == "--code-root":
        sys.path[:0] = [arguments[1]]
        arguments = arguments[2:]
    else:
        # As in the Lambda package: the entry modules at the top, the repository's packages importable.
        sys.path[:0] = [str(REPOSITORY / "api_service"), str(REPOSITORY)]
    handler = import_module(arguments[0]).handler  # the cold start
    print("READY", flush=True)
    for line in sys.stdin:
        try:
            result = handler(json.loads(line), None)
        except Exception as exc:
            print("ERROR", json.dumps(f"{type(exc).__name__}: {exc}"), flush=True)
        else:
            print("RESULT", json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
