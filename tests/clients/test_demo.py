"""``make demo``'s federated run, short: the federated model beats models trained on one client's data alone."""

import pytest

from fma_client import DeveloperClient
from fma_client.demo import plot, run
from tests.clients.support import PASSWORD

pytestmark = pytest.mark.integration

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def test_a_short_federated_run_beats_single_client_models(server, tmp_path):
    developer = DeveloperClient(server.url, username="admin", password=PASSWORD, progress=False)
    lines = []

    result = run(developer, clients=4, rounds=3, epochs=2, seed=1, echo=lines.append)

    assert [row.number for row in result.rounds] == [1, 2, 3]
    assert result.final_accuracy > result.single_client_accuracy, lines
    aggregates = developer.list_aggregates(result.model_id)
    assert [row.id for row in aggregates] == [row.aggregate_id for row in result.rounds]
    scores = developer.list_scores(result.rounds[-1].aggregate_id)
    assert len(scores) == 4, "every client scored the last aggregate"
    assert lines[1].split() == ["round", "aggregate", "global", "accuracy", "mean", "client", "score"]
    path = tmp_path / "accuracy.png"
    plot(result, path, aggregator="fed_avg")
    assert path.read_bytes().startswith(PNG_SIGNATURE)
