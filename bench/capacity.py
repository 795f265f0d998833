"""What one update and one aggregation cost the service: requests, database queries, stored bytes, AWS calls.

    python bench/capacity.py --parameters 100000 --clients 10 [--json rows.json]

Drives the real Lambda handlers in this process: ``service_initialization.handler`` with API Gateway (HTTP
API) events, and ``aggregator_initialization.handler`` with the API's direct invoke, on the local settings
with a fresh database and media folder in a temporary directory (SQLite; ``FMA_LOCAL_DATABASE_URL`` names a
PostgreSQL database instead, which must be empty). Aggregation is wired as in AWS: the ``lambda`` trigger and
the ``eventbridge-scheduler`` scheduler, against moto's Lambda and EventBridge Scheduler (in-process,
``mock_aws``), so the AWS calls of each step are counted too. Model data stays in the local storage: the
bytes are the stored files' sizes, the same bytes S3 would hold.

Measured per step, for C clients each sending one update of P float64 values as JSON:

- ``queries`` / ``writes``: SQL statements (``CaptureQueriesContext``), writes being INSERT, UPDATE, DELETE;
- ``stored``: bytes added to the storage (S3 PutObject bytes); ``read``: bytes of the weights files the step
  reads (S3 GetObject bytes: an aggregation reads every update it takes and the model's current weights);
- ``request`` / ``response``: HTTP body bytes through API Gateway;
- ``aws``: the AWS calls, by service and operation;
- ``seconds``: wall time on this machine, local disk and in-process moto: a lower bound for Lambda, where
  S3 and the database are a network hop away.

Prints a Markdown table (docs/capacity.md turns it into the load one deployment carries); ``--json`` writes
the rows. The temporary directory is removed at the end. The counts do not depend on the machine; the
seconds do.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

REPOSITORY = Path(__file__).resolve().parents[1]
GROUP = "fma-capacity"
AGGREGATOR_ARN = "arn:aws:lambda:us-east-1:123456789012:function:fma-capacity-aggregator"
HOST = "127.0.0.1"
WRITES = ("INSERT", "UPDATE", "DELETE")


class Meter:
    """Counts what happens inside ``measure``: SQL statements, stored bytes and AWS calls."""

    def __init__(self, media_root: Path) -> None:
        self.media_root = media_root
        self.aws: Counter[str] = Counter()

    def aws_call(self, model: Any, **_: Any) -> None:
        # botocore's "before-call" event: one per API call, retries not counted.
        self.aws[f"{model.service_model.service_name}.{model.name}"] += 1

    def stored_bytes(self) -> int:
        return sum(path.stat().st_size for path in self.media_root.rglob("*") if path.is_file())

    def measure(self, step: str, action: Any, *, requests: int, read: int = 0) -> tuple[dict[str, Any], Any]:
        from django.db import connection
        from django.test.utils import CaptureQueriesContext

        self.aws.clear()
        before = self.stored_bytes()
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            result, request_bytes, response_bytes = action()
            seconds = time.perf_counter() - started
        statements = [query["sql"].lstrip().split(None, 1)[0].upper() for query in queries.captured_queries]
        row = {
            "step": step,
            "requests": requests,
            "queries": len(statements),
            "writes": sum(statement in WRITES for statement in statements),
            "stored": self.stored_bytes() - before,
            "read": read,
            "request": request_bytes,
            "response": response_bytes,
            "aws": dict(sorted(self.aws.items())),
            "seconds": round(seconds, 3),
        }
        return row, result


def call(
    handler: Any,
    method: str,
    path: str,
    body: Any = None,
    headers: dict[str, str] | None = None,
    *,
    source_ip: str = "198.51.100.1",
) -> Any:
    """One request through API Gateway to the API function: (status, JSON answer), request and response bytes."""
    from fma_django_connectors.gateway.gateway_events import GatewayRequest, http_api_event, response_parts

    data = None if body is None else json.dumps(body).encode()
    pairs = [("Host", HOST), ("X-Forwarded-Proto", "https"), *(headers or {}).items()]
    if data is not None:
        pairs.append(("Content-Type", "application/json"))
    pairs.append(("X-Forwarded-For", source_ip))
    request = GatewayRequest(method=method, path=path, headers=tuple(pairs), body=data, source_ip=source_ip)
    event = http_api_event(request)
    status, _, answer = response_parts(handler(event, None))
    return (status, json.loads(answer) if answer else None), len(data or b""), len(answer)


def expect(status: int, answer: Any, wanted: int, what: str) -> Any:
    if status != wanted:
        raise SystemExit(f"{what}: expected {wanted}, got {status}: {answer}")
    return answer


def run(parameters: int, clients: int) -> list[dict[str, Any]]:
    """The rows; the caller has set the environment and imported an entry module (which sets Django up)."""
    import boto3
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.core.files.storage import default_storage
    from django.core.management import call_command
    from rest_framework.authtoken.models import Token

    import aggregator_initialization
    import service_initialization
    from fma_django_connectors.models import ModelAggregate, ModelUpdate

    call_command("migrate", interactive=False, verbosity=0)
    settings.FMA_AGGREGATION_TRIGGER = "lambda"
    settings.AGGREGATOR_LAMBDA_ARN = AGGREGATOR_ARN
    settings.FMA_SCHEDULER = "eventbridge-scheduler"
    settings.FMA_SCHEDULE_GROUP = GROUP
    settings.FMA_SCHEDULE_ROLE_ARN = "arn:aws:iam::123456789012:role/fma-capacity-scheduler"
    settings.FMA_SCHEDULE_EXPRESSION = "rate(1 minute)"
    boto3.client("scheduler").create_schedule_group(Name=GROUP)
    meter = Meter(Path(settings.MEDIA_ROOT))
    boto3.DEFAULT_SESSION.events.register("before-call", meter.aws_call)

    developer = get_user_model().objects.create_user("capacity", password="not-used-by-the-bench")
    owner = {"Authorization": f"Token {Token.objects.create(user=developer).key}"}
    api = service_initialization.handler
    rows = []

    row, (status, model) = meter.measure(
        "create a model (owner)",
        lambda: call(
            api,
            "POST",
            "/api/v1/models/",
            {"name": "capacity", "aggregator": "avg_values_if_data", "allow_aggregation": True},
            owner,
        ),
        requests=1,
    )
    model_id = expect(status, model, 201, "create a model")["id"]
    rows.append(row)

    uuids = []
    for index in range(clients):
        row, (status, registered) = meter.measure(
            "register a client",
            # Each client from an address of its own, as in the field: registrations are limited per address.
            lambda index=index: call(
                api,
                "POST",
                f"/api/v1/models/{model_id}/register_client/",
                source_ip=f"10.{index // 250}.{index % 250}.1",
            ),
            requests=1,
        )
        uuids.append(expect(status, registered, 200, "register a client")["uuid"])
        if index == 0:
            rows.append(row)

    values = [float(index % 1000) / 7 for index in range(parameters)]
    for index, uuid in enumerate(uuids):
        row, (status, update) = meter.measure(
            f"one update, {parameters:,} float64 as JSON",
            lambda uuid=uuid: call(
                api,
                "POST",
                "/api/v1/model_updates/",
                {"federated_model": model_id, "data": values, "base_aggregate": None},
                {"CLIENT-UUID": uuid},
            ),
            requests=1,
        )
        expect(status, update, 201, "send an update")
        # The first update finds the schedule idle and stores the first file of the folder: the last is typical.
        if index == len(uuids) - 1:
            rows.append(row)

    update_bytes = sum(default_storage.size(update.data.name) for update in ModelUpdate.objects.all())
    row, aggregate_id = meter.measure(
        f"one aggregation of {clients} updates (aggregator, direct invoke)",
        lambda: (aggregator_initialization.handler({"model_id": model_id}, None), 0, 0),
        requests=0,
        read=update_bytes,
    )
    if aggregate_id is None:
        raise SystemExit("the aggregation took nothing")
    rows.append(row)

    aggregate_bytes = default_storage.size(ModelAggregate.objects.get(pk=aggregate_id).result.name)
    row, (status, latest) = meter.measure(
        "a client fetches the latest model as JSON",
        lambda: call(api, "GET", f"/api/v1/models/{model_id}/get_latest_model/", None, {"CLIENT-UUID": uuids[0]}),
        requests=1,
        read=aggregate_bytes,
    )
    expect(status, latest, 200, "fetch the latest model")
    rows.append(row)
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    header = [
        "step",
        "requests",
        "queries",
        "writes",
        "stored bytes",
        "read bytes",
        "request bytes",
        "response bytes",
        "s",
    ]
    lines = ["| " + " | ".join([*header, "AWS calls"]) + " |", "|:---|" + "---:|" * len(header[1:]) + ":---|"]
    for row in rows:
        aws = ", ".join(f"{name} x {count}" for name, count in row["aws"].items()) or "none"
        lines.append(
            f"| {row['step']} | {row['requests']} | {row['queries']} | {row['writes']} | {row['stored']:,} | "
            f"{row['read']:,} | {row['request']:,} | {row['response']:,} | {row['seconds']:.3f} | {aws} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parameters", type=int, default=100_000, help="float64 values per update (default 100,000)")
    parser.add_argument("--clients", type=int, default=10, help="clients, one update each (default 10)")
    parser.add_argument("--json", type=Path, help="also write the rows to this file")
    arguments = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="fma-capacity-") as scratch:
        os.environ.update(
            {
                "DJANGO_SETTINGS_MODULE": "federated_learning_project.settings_local",
                "FMA_LOCAL_DATA_DIR": scratch,
                # moto signs nothing real; nothing leaves the process.
                "AWS_ACCESS_KEY_ID": "testing",
                "AWS_SECRET_ACCESS_KEY": "testing",
                "AWS_REGION": "us-east-1",
                "AWS_DEFAULT_REGION": "us-east-1",
            }
        )
        os.environ.pop("AWS_ENDPOINT_URL", None)
        sys.path[:0] = [str(REPOSITORY / "api_service"), str(REPOSITORY)]
        import boto3
        from moto import mock_aws

        import service_initialization  # noqa: F401  (its cold start sets Django up, as in Lambda)

        boto3.setup_default_session()
        # moto's Lambda accepts an asynchronous invoke without running anything (no Docker needed).
        with mock_aws(config={"lambda": {"use_docker": False}}):
            rows = run(arguments.parameters, arguments.clients)

    print(markdown(rows))
    if arguments.json:
        arguments.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
