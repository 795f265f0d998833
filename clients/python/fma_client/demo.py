"""Federated learning you can watch: K clients learn scikit-learn's digits together through the FMA service.

Each simulated client holds a non-IID share of the training digits (a Dirichlet split of the classes:
most clients see a few digits only), trains a NumPy multinomial logistic regression from the global
weights for a few epochs, and sends its weights with ``fma_client`` (``num_examples`` = its share). The
service aggregates them (``fed_avg`` by default) once every client has sent; each client scores the new
aggregate on its own data and sends that as its validation result. The demo prints, per round, the
aggregate's id, its accuracy on held-out digits and the clients' mean score, and plots the curve next to
the mean accuracy of models trained on one client's data alone.

    python -m fma_client.demo --url http://127.0.0.1:8000/ --password <admin password>
    python -m fma_client.demo --start-server api_service/local_server.py
    make demo     # the service of `make run` when it answers on PORT, else one started for the demo

Needs scikit-learn (its digits ship with it: nothing is downloaded) and matplotlib (``pip install
fma-client[demo]``).
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fma_client import DeveloperClient, WebClient

CLASSES = 10
FEATURES = 64
# How long a round may wait for its aggregate before the demo gives up (the service aggregates in milliseconds),
# and how often it looks: a local service answers a read in milliseconds too.
ROUND_TIMEOUT = 60.0
ROUND_POLL = 0.05


@dataclass
class Split:
    """Held-out digits for the global accuracy, and each client's training share."""

    test_x: np.ndarray
    test_y: np.ndarray
    clients: list[tuple[np.ndarray, np.ndarray]]


@dataclass
class Round:
    number: int
    aggregate_id: int
    accuracy: float
    mean_client_score: float


@dataclass
class DemoResult:
    model_id: int
    rounds: list[Round] = field(default_factory=list)
    single_client_accuracy: float = 0.0

    @property
    def final_accuracy(self) -> float:
        return self.rounds[-1].accuracy


def load_split(*, clients: int, alpha: float, seed: int) -> Split:
    """scikit-learn's digits: a quarter held out, the rest shared among ``clients`` by a Dirichlet(alpha) of classes."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.data / 16.0
    train_x, test_x, train_y, test_y = train_test_split(
        x, digits.target, test_size=0.25, stratify=digits.target, random_state=seed
    )
    rng = np.random.default_rng(seed)
    shares: list[list[int]] = [[] for _ in range(clients)]
    for label in range(CLASSES):
        indices = rng.permutation(np.flatnonzero(train_y == label))
        proportions = rng.dirichlet(np.full(clients, alpha))
        cuts = (np.cumsum(proportions)[:-1] * len(indices)).astype(int)
        for share, part in zip(shares, np.split(indices, cuts), strict=True):
            share.extend(part.tolist())
    return Split(test_x, test_y, [(train_x[share], train_y[share]) for share in shares])


def predict(weights: list[np.ndarray], x: np.ndarray) -> np.ndarray:
    return np.argmax(x @ weights[0] + weights[1], axis=1)


def accuracy(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(predict(weights, x) == y)) if len(y) else 0.0


def train(weights: list[np.ndarray], x: np.ndarray, y: np.ndarray, *, epochs: int, rng: np.random.Generator):
    """Mini-batch gradient descent on the cross-entropy of a softmax regression, from ``weights``."""
    w, b = (layer.astype(np.float64).copy() for layer in weights)
    onehot = np.eye(CLASSES)[y]
    for _ in range(epochs):
        for batch in np.array_split(rng.permutation(len(y)), max(1, len(y) // 32)):
            logits = x[batch] @ w + b
            probabilities = np.exp(logits - logits.max(axis=1, keepdims=True))
            probabilities /= probabilities.sum(axis=1, keepdims=True)
            error = (probabilities - onehot[batch]) / len(batch)
            w -= 0.5 * (x[batch].T @ error + 1e-4 * w)
            b -= 0.5 * error.sum(axis=0)
    return [w, b]


def zeros() -> list[np.ndarray]:
    return [np.zeros((FEATURES, CLASSES)), np.zeros(CLASSES)]


def single_client_accuracy(split: Split, *, epochs: int, rounds: int, seed: int) -> float:
    """Mean held-out accuracy of models each trained on one client's data alone, as long as the federation."""
    rng = np.random.default_rng(seed)
    scores = [
        accuracy(train(zeros(), x, y, epochs=epochs * rounds, rng=rng), split.test_x, split.test_y)
        for x, y in split.clients
    ]
    return float(np.mean(scores))


def run(
    developer: DeveloperClient,
    *,
    clients: int = 5,
    rounds: int = 10,
    epochs: int = 2,
    aggregator: str = "fed_avg",
    alpha: float = 0.3,
    seed: int = 0,
    echo=print,
) -> DemoResult:
    """Create a model, run ``rounds`` rounds with ``clients`` simulated clients, return what happened."""
    split = load_split(clients=clients, alpha=alpha, seed=seed)
    model = developer.create_model(
        f"digits demo {secrets.token_hex(3)}",
        aggregator,
        initial_model=zeros(),
        requirement="all_clients",
        allow_aggregation=True,
    )
    result = DemoResult(model_id=model.id)
    web_clients = [WebClient(model.id, url=developer.url, progress=False) for _ in split.clients]
    for web_client in web_clients:
        web_client.register()
    rng = np.random.default_rng(seed)
    echo(f"model {model.id} ({aggregator}), {clients} clients holding {[len(y) for _, y in split.clients]} digits")
    echo(f"{'round':>5}  {'aggregate':>9}  {'global accuracy':>15}  {'mean client score':>17}")
    # Each client starts from the model's weights and then continues from each aggregate it is told of.
    currents = [web_client.check_for_latest_model()["values"] for web_client in web_clients]
    base = None
    for number in range(1, rounds + 1):
        for web_client, current, (x, y) in zip(web_clients, currents, split.clients, strict=True):
            local = train(current, x, y, epochs=epochs, rng=rng)
            web_client.send_update(local, base_aggregate=base, num_examples=len(y))
        scores = []
        for index, (web_client, (x, y)) in enumerate(zip(web_clients, split.clients, strict=True)):
            aggregate = web_client.wait_for_aggregate(timeout=ROUND_TIMEOUT, poll=ROUND_POLL)
            currents[index] = aggregate["result"]
            score = accuracy(aggregate["result"], x, y)
            web_client.send_val_results({"accuracy": score}, aggregate["id"])
            scores.append(score)
        base = aggregate["id"]
        row = Round(number, base, accuracy(aggregate["result"], split.test_x, split.test_y), float(np.mean(scores)))
        result.rounds.append(row)
        echo(f"{row.number:>5}  {row.aggregate_id:>9}  {row.accuracy:>15.3f}  {row.mean_client_score:>17.3f}")
    result.single_client_accuracy = single_client_accuracy(split, epochs=epochs, rounds=rounds, seed=seed)
    echo(f"one client's data alone: mean held-out accuracy {result.single_client_accuracy:.3f}")
    return result


def plot(result: DemoResult, path: Path, *, aggregator: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    numbers = [row.number for row in result.rounds]
    figure, axes = plt.subplots(figsize=(7, 4.2), dpi=120)
    axes.plot(numbers, [row.accuracy for row in result.rounds], "o-", label="global model, held-out digits")
    axes.plot(numbers, [row.mean_client_score for row in result.rounds], "s--", label="mean client score (own data)")
    axes.axhline(result.single_client_accuracy, color="grey", linestyle=":", label="one client's data alone (mean)")
    axes.set(xlabel="round", ylabel="accuracy", ylim=(0, 1.02), xticks=numbers)
    axes.set_title(f"Federated {aggregator} on scikit-learn digits (model {result.model_id})")
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right")
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


@contextmanager
def local_service(script: Path) -> Iterator[tuple[str, str]]:
    """``api_service/local_server.py`` on a free port with a fresh data folder: its URL and admin password."""
    password = secrets.token_urlsafe(12)
    with tempfile.TemporaryDirectory(prefix="fma-demo-") as data_dir:
        env = {**os.environ, "FMA_LOCAL_DATA_DIR": data_dir, "FMA_ADMIN_PASSWORD": password, "PYTHONUNBUFFERED": "1"}
        env["FMA_AGGREGATION_TRIGGER"] = "local"
        process = subprocess.Popen(
            [sys.executable, str(script), "--port", "0"],
            env=env,
            stdout=subprocess.PIPE,
            stderr=open(Path(data_dir) / "server.log", "w"),  # noqa: SIM115  (closed with the process)
            text=True,
        )
        try:
            url = _banner_url(process)
            yield url, password
        finally:
            process.terminate()
            process.wait(timeout=30)


def _banner_url(process: subprocess.Popen) -> str:
    found: list[str] = []

    def read() -> None:
        for line in process.stdout:
            if match := re.search(r"API +(http://\S+/)api/v1/", line):
                found.append(match[1])
                return

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(ROUND_TIMEOUT)
    if not found:
        raise RuntimeError("the local service did not start (see its log in the data folder)")
    return found[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", help="a running service; used when it answers")
    parser.add_argument(
        "--start-server", type=Path, help="api_service/local_server.py, started when --url does not answer"
    )
    parser.add_argument("--username", default="admin")
    parser.add_argument("--password", default=os.environ.get("FMA_ADMIN_PASSWORD"))
    parser.add_argument(
        "--password-file", type=Path, help="file holding the password (make run's .local/admin_password)"
    )
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--epochs", type=int, default=2, help="local epochs per round")
    parser.add_argument("--aggregator", default="fed_avg", help="any registered aggregator (default: %(default)s)")
    parser.add_argument("--alpha", type=float, default=0.3, help="Dirichlet concentration: smaller is less IID")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--plot", type=Path, default=Path("demo-accuracy.png"))
    args = parser.parse_args(argv)
    if args.url is None and args.start_server is None:
        parser.error("give --url of a running service or --start-server PATH (or both)")

    def go(url: str, password: str) -> None:
        developer = DeveloperClient(url, username=args.username, password=password, progress=False)
        options = {"clients": args.clients, "rounds": args.rounds, "epochs": args.epochs, "alpha": args.alpha}
        result = run(developer, aggregator=args.aggregator, seed=args.seed, **options)
        args.plot.parent.mkdir(parents=True, exist_ok=True)
        plot(result, args.plot, aggregator=args.aggregator)
        print(f"plot: {args.plot.resolve()}")

    if args.url is not None and _answers(args.url):
        password = args.password
        if not password and args.password_file is not None and args.password_file.exists():
            password = args.password_file.read_text().strip()
        if not password:
            parser.error(
                f"{args.url} answers: give its admin password (--password, FMA_ADMIN_PASSWORD, --password-file)"
            )
        print(f"using the service at {args.url}")
        go(args.url, password)
    elif args.start_server is not None:
        with local_service(args.start_server) as (url, password):
            print(f"started the local service at {url}")
            go(url, password)
    else:
        parser.error(f"nothing answers at {args.url}")
    return 0


def _answers(url: str) -> bool:
    import requests

    try:
        requests.get(url.rstrip("/") + "/api/v1/", timeout=2)
    except requests.RequestException:
        return False
    return True


if __name__ == "__main__":
    sys.exit(main())
