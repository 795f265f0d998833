"""Load on a running service: C clients register, push updates and fetch the latest model while it aggregates.

    python bench/load.py --url http://127.0.0.1:8000/ --admin admin:PASSWORD --clients 50 --requests 2000

Creates a model (``avg_values_if_data``, no requirement, aggregation allowed), then C client threads share N
requests: each client registers, then alternately pushes an update and fetches the latest model. It prints
the throughput and p50/p95/p99/max latency per call, waits for the aggregation to settle, and recounts
through the API (as the admin): every accepted update is in exactly one aggregate or still pending, no
aggregate counts an update twice, every aggregate equals the mean of its updates, no update stays RUNNING
past the lease. Every call of the load must succeed: a 429, a 5xx or a dropped connection is a violation too.
``--database`` recounts the same in the database (Django with the server's settings and environment:
``FMA_LOCAL_DATA_DIR`` or ``FMA_LOCAL_DATABASE_URL``). Exits 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import defaultdict
from pathlib import Path

import numpy as np

VALUES = 10
COMPLETE, RUNNING = 2, 1


class Api:
    def __init__(self, url: str, admin: str) -> None:
        self.url = url.rstrip("/") + "/"
        # One password check for the token, then token calls: a Basic password costs a PBKDF2 run per
        # request (about 0.3 s of CPU), which would be measured instead of the service.
        self.admin: str | None = None
        username, _, password = admin.partition(":")
        status, body = self.call("POST", "api-token-auth/", {"username": username, "password": password})
        if status != 200:
            raise SystemExit(f"cannot log in as {username}: {status} {body}")
        self.admin = f"Token {body['token']}"

    def call(self, method: str, path: str, body: object = None, *, client: str | None = None) -> tuple[int, object]:
        headers = {"Content-Type": "application/json"}
        if client:
            headers["CLIENT-UUID"] = client
        elif self.admin:
            headers["Authorization"] = self.admin
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url + path, data=data, headers=headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")
        except OSError as error:
            # A refused, reset or timed-out connection: a failed call, counted as such.
            return 0, str(error)

    def result_values(self, result: object) -> list[float]:
        """An aggregate's weights: lists give the URL of the result route, which answers the JSON."""
        if isinstance(result, str):
            status, result = self.call("GET", result.removeprefix(self.url))
            if status != 200:
                raise RuntimeError(f"cannot read an aggregate's result: {status} {result}")
        return result["values"] if isinstance(result, dict) else result

    def all_pages(self, path: str) -> list[dict]:
        rows, page = [], 1
        while True:
            status, body = self.call("GET", f"{path}&page_size=20&page={page}")
            if status == 404 or not body:
                return rows
            if status != 200:
                raise RuntimeError(f"cannot list {path}: {status} {body}")
            rows.extend(body)
            page += 1


def run_clients(
    api: Api, model_id: int, clients: int, requests: int
) -> tuple[dict[str, list[float]], dict[int, list[float]], list[str], float]:
    """Latencies per call, the accepted updates by id, the failed calls and the elapsed seconds."""
    latencies: dict[str, list[float]] = defaultdict(list)
    accepted: dict[int, list[float]] = {}
    errors: list[str] = []
    budget = iter(range(requests))
    lock = threading.Lock()

    def timed(kind: str, *args, **kwargs):
        start = time.perf_counter()
        status, body = api.call(*args, **kwargs)
        with lock:
            latencies[kind].append(time.perf_counter() - start)
        return status, body

    def client_loop(seed: int) -> None:
        rng = np.random.default_rng(seed)
        with lock:
            if next(budget, None) is None:
                return
        status, body = timed("register", "POST", f"api/v1/models/{model_id}/register_client/")
        if status != 200:
            errors.append(f"register: {status} {body}")
            return
        uuid = body["uuid"]
        push = True
        while True:
            with lock:
                if next(budget, None) is None:
                    return
            if push:
                values = rng.uniform(-1, 1, VALUES).round(6).tolist()
                status, body = timed(
                    "push", "POST", "api/v1/model_updates/", {"federated_model": model_id, "data": values}, client=uuid
                )
                if status == 201:
                    with lock:
                        accepted[body["id"]] = values
                else:
                    errors.append(f"push: {status} {body}")
            else:
                status, body = timed("latest", "GET", f"api/v1/models/{model_id}/get_latest_model/", client=uuid)
                if status != 200:
                    errors.append(f"latest: {status} {body}")
            push = not push

    start = time.perf_counter()
    threads = [threading.Thread(target=client_loop, args=(seed,)) for seed in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    return latencies, accepted, errors, elapsed


def report(latencies: dict[str, list[float]], elapsed: float) -> None:
    total = sum(len(values) for values in latencies.values())
    print(f"{total} requests in {elapsed:.1f} s: {total / elapsed:.0f} requests/s")
    print(f"{'call':<10}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for kind, values in sorted(latencies.items()):
        cuts = statistics.quantiles(values, n=100) if len(values) > 1 else values * 99
        print(
            f"{kind:<10}{len(values):>7}{cuts[49] * 1e3:>9.0f}{cuts[94] * 1e3:>9.0f}{cuts[98] * 1e3:>9.0f}"
            f"{max(values) * 1e3:>9.0f}"
        )


def recount_api(api: Api, model_id: int, accepted: dict[int, list[float]], settle: float) -> list[str]:
    deadline = time.monotonic() + settle
    while True:
        updates = {row["id"]: row for row in api.all_pages(f"api/v1/model_updates/?federated_model={model_id}")}
        if all(row["status"] in (COMPLETE, 4) for row in updates.values()) or time.monotonic() > deadline:
            break
        time.sleep(1)
    violations = [f"accepted update {pk} is missing" for pk in accepted if pk not in updates]
    members: dict[int, list[int]] = defaultdict(list)
    for pk, row in updates.items():
        if row["status"] == COMPLETE:
            members[row["applied_aggregate"]].append(pk)
        elif row["status"] == RUNNING:
            violations.append(f"update {pk} still RUNNING after {settle:.0f} s")
        elif row["status"] != 0:
            violations.append(f"update {pk} has status {row['status']} ({row.get('status_reason')})")
    aggregates = api.all_pages(f"api/v1/model_aggregates/?federated_model={model_id}")
    if sum(len(pks) for pks in members.values()) != len(set().union(*members.values()) if members else set()):
        violations.append("an update is counted by two aggregates")
    for aggregate in aggregates:
        pks = members.get(aggregate["id"], [])
        if not pks:
            violations.append(f"aggregate {aggregate['id']} has no updates")
            continue
        expected = np.mean([accepted[pk] for pk in pks], axis=0)
        if not np.allclose(api.result_values(aggregate["result"]), expected, rtol=1e-9, atol=1e-12):
            violations.append(f"aggregate {aggregate['id']} is not the mean of its {len(pks)} updates")
    print(f"recount (API): {len(updates)} updates, {len(aggregates)} aggregates, {len(violations)} violations")
    return violations


def recount_database(model_id: int, lease_seconds: float) -> list[str]:
    sys.path[:0] = [str(Path(__file__).resolve().parents[1] / "api_service")]
    import os

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "federated_learning_project.settings_local")
    import django

    django.setup()
    from datetime import UTC, datetime, timedelta

    from django.db.models import Count

    from fma_django_connectors.models import ModelAggregate, ModelUpdate

    updates = ModelUpdate.objects.filter(federated_model_id=model_id)
    stale = updates.filter(status=RUNNING, claimed_at__lt=datetime.now(UTC) - timedelta(seconds=lease_seconds)).count()
    counted = ModelAggregate.objects.filter(federated_model_id=model_id).annotate(n=Count("applied_updates"))
    violations = [f"{stale} update(s) RUNNING past the lease"] if stale else []
    violations += [f"aggregate {a.pk} counts no update" for a in counted if a.n == 0]
    complete_without = updates.filter(status=COMPLETE, applied_aggregate__isnull=True).count()
    if complete_without:
        violations.append(f"{complete_without} COMPLETE update(s) in no aggregate")
    print(f"recount (database): {updates.count()} updates, {counted.count()} aggregates, {len(violations)} violations")
    return violations


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--admin", required=True, metavar="USER:PASS")
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--settle", type=float, default=120.0, help="seconds to wait for aggregation to finish")
    parser.add_argument("--lease", type=float, default=60.0, help="the service's claim_lease_seconds")
    parser.add_argument("--database", action="store_true", help="recount in the database as well")
    args = parser.parse_args(argv)
    api = Api(args.url, args.admin)
    body = {"name": "load", "aggregator": "avg_values_if_data", "allow_aggregation": True}
    status, model = api.call("POST", "api/v1/models/", body)
    if status != 201:
        print(f"cannot create the model: {status} {model}", file=sys.stderr)
        return 2
    latencies, accepted, errors, elapsed = run_clients(api, model["id"], args.clients, args.requests)
    report(latencies, elapsed)
    # Every call of the load is valid: a refusal, a 5xx or a dropped connection is the service failing it.
    violations = [f"{len(errors)} call(s) failed, e.g. {error}" for error in errors[:1]]
    violations += recount_api(api, model["id"], accepted, args.settle)
    if args.database:
        violations += recount_database(model["id"], args.lease)
    if not accepted:
        violations.append("no update was accepted")
    for violation in violations:
        print("VIOLATION:", violation)
    return 1 if violations else 0


if __name__ == "__main__":
    sys.exit(main())
