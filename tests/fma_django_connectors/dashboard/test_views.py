"""The dashboard's pages through Django's test client: login, permissions, counts, chart, lineage and actions."""

import html
import re

import pytest
from django.test import Client as BrowserClient
from django.urls import reverse

from fma_django_connectors import services
from fma_django_connectors.models import (
    Client,
    ClientAggregateScore,
    FederatedModel,
    ModelAggregate,
    ModelArtifact,
    ModelUpdate,
)
from tests.fma_django_connectors.conftest import PASSWORD, make_aggregate, make_model

pytestmark = pytest.mark.usefixtures("media_root")

Status = ModelUpdate.Status


def browser(user) -> BrowserClient:
    session = BrowserClient(enforce_csrf_checks=True)
    session.force_login(user)
    return session


def csrf_post(session: BrowserClient, url: str, data=None):
    """POST a form as a browser does: with the CSRF token from the cookie the pages set."""
    session.get(reverse("dashboard:model-list"))
    token = session.cookies["csrftoken"].value
    return session.post(url, {"csrfmiddlewaretoken": token, **(data or {})}, follow=True)


def detail_url(model) -> str:
    return reverse("dashboard:model-detail", args=[model.pk])


def page_text(response) -> str:
    return html.unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", response.content.decode())))


def row_cells(response, attribute: str, value) -> list[str]:
    """The text of each cell of the table row marked ``data-<attribute>="<value>"``."""
    row = re.search(rf'<tr data-{attribute}="{value}">(.*?)</tr>', response.content.decode(), re.S)[1]
    texts = (re.sub(r"<[^>]+>", " ", cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S))
    return [" ".join(text.split()) for text in texts]


@pytest.fixture
def scored_model(developer):
    """Three clients scoring four aggregates (each built on the one before) with accuracy and loss."""
    model = make_model(developer, name="scored", initial_model=[[0.0, 0.0]])
    clients = [services.client_register(model=model) for _ in range(3)]
    parent = None
    for round_number in range(4):
        parent = make_aggregate(model, [[float(round_number), 0.0]], parent=parent)
        for offset, client in enumerate(clients):
            ModelUpdate.objects.create(
                federated_model=model, client=client, data="updates/x", status=Status.COMPLETE, applied_aggregate=parent
            )
            services.score_create(
                aggregate=parent,
                client=client,
                validation_results={"accuracy": 0.5 + 0.1 * round_number + 0.01 * offset, "loss": 1.0, "note": "ok"},
            )
    return model


class TestLogin:
    def test_pages_need_a_login_and_come_back_after_it(self, developer):
        session = BrowserClient(enforce_csrf_checks=True)
        response = session.get(reverse("dashboard:model-list"))
        assert response.status_code == 302
        assert response["Location"] == "/dashboard/login/?next=/dashboard/"
        page = session.get(response["Location"])
        token = session.cookies["csrftoken"].value
        assert f'value="{token}"' not in page.content.decode()  # the form carries a masked token
        logged_in = session.post(
            "/dashboard/login/",
            {"username": "ada", "password": PASSWORD, "next": "/dashboard/", "csrfmiddlewaretoken": token},
        )
        assert (logged_in.status_code, logged_in["Location"]) == (302, "/dashboard/")
        assert session.get("/dashboard/").status_code == 200

    def test_a_login_without_the_csrf_token_is_refused(self, developer):
        session = BrowserClient(enforce_csrf_checks=True)
        response = session.post("/dashboard/login/", {"username": "ada", "password": PASSWORD})
        assert response.status_code == 403

    def test_a_wrong_password_says_so(self, developer):
        session = BrowserClient()
        response = session.post("/dashboard/login/", {"username": "ada", "password": "nope"})
        assert response.status_code == 200
        assert "Please enter a correct username and password" in page_text(response)

    def test_logout_is_a_post_and_ends_the_session(self, developer):
        session = browser(developer)
        response = csrf_post(session, reverse("dashboard:logout"))
        assert response.redirect_chain[-1][0] == "/dashboard/login/"
        assert session.get("/dashboard/").status_code == 302


class TestModelsList:
    def test_counts_per_model(self, developer, scored_model):
        client = scored_model.clients.first()
        for status in (Status.PENDING, Status.PENDING, Status.RUNNING, Status.FAILED, Status.INVALID):
            ModelUpdate.objects.create(federated_model=scored_model, client=client, data="updates/x", status=status)
        cells = row_cells(browser(developer).get("/dashboard/"), "model", scored_model.pk)
        newest = scored_model.aggregates.order_by("-created_on", "-id").first()
        assert cells[:8] == [f"scored #{scored_model.pk}", "avg_values_if_data", "none", "3", "2", "1", "1", "1"]
        assert cells[8].startswith(f"#{newest.pk}, ")
        assert cells[9] == "paused"

    def test_a_developer_sees_only_its_models_and_staff_all(self, developer, staff, model, other_model):
        mine = page_text(browser(developer).get("/dashboard/"))
        assert "mnist" in mine
        assert "other" not in mine
        everything = page_text(browser(staff).get("/dashboard/"))
        assert "mnist" in everything
        assert "other" in everything

    def test_sorted_by_a_column_either_way_and_paged(self, developer, django_assert_max_num_queries):
        for index in range(30):
            model = make_model(developer, name=f"model-{index:02d}")
            make_aggregate(model, [[1.0]])
            services.client_register(model=model)
        session = browser(developer)
        with django_assert_max_num_queries(4):  # not one per row
            ascending_page = session.get("/dashboard/?sort=name")
        ascending = re.findall(r">(model-\d\d)<", ascending_page.content.decode())
        assert ascending == [f"model-{index:02d}" for index in range(25)]
        descending_page = session.get("/dashboard/?sort=-name&page=2").content.decode()
        descending = re.findall(r">(model-\d\d)<", descending_page)
        assert descending == [f"model-{index:02d}" for index in range(4, -1, -1)]
        # The sorted column says which way; its link reverses it; paging keeps the order.
        assert '<a href="?sort=-name" class="sort asc">Model</a>' in ascending_page.content.decode()
        assert '<a href="?sort=name" class="sort desc">Model</a>' in descending_page
        assert '<a href="?sort=-name&amp;page=1">' in descending_page

    def test_an_unknown_sort_key_falls_back_to_newest_first(self, developer):
        make_model(developer, name="older")
        make_model(developer, name="newer")
        names = re.findall(r">(older|newer)<", browser(developer).get("/dashboard/?sort=password").content.decode())
        assert names == ["newer", "older"]


class TestModelPage:
    def test_another_developers_model_is_a_404(self, developer, other_model):
        response = browser(developer).get(detail_url(other_model))
        assert response.status_code == 404
        assert "No such model, or not one of yours." in page_text(response)

    def test_staff_open_any_model(self, staff, other_model):
        assert browser(staff).get(detail_url(other_model)).status_code == 200

    def test_chart_has_a_point_per_scored_aggregate_with_the_clients_mean(self, developer, scored_model):
        response = browser(developer).get(detail_url(scored_model))
        points = re.findall(
            r'data-aggregate="(\d+)" data-mean="([^"]+)" data-clients="(\d+)"', response.content.decode()
        )
        aggregates = list(scored_model.aggregates.order_by("created_on", "id").values_list("pk", flat=True))
        assert [int(point[0]) for point in points] == aggregates
        assert [round(float(point[1]), 6) for point in points] == [0.51, 0.61, 0.71, 0.81]
        assert {point[2] for point in points} == {"3"}

    def test_metric_choices_are_the_numeric_keys_of_the_scores(self, developer, scored_model):
        response = browser(developer).get(detail_url(scored_model) + "?metric=loss")
        body = response.content.decode()
        assert re.findall(r'<option value="(\w+)"', body) == ["accuracy", "loss"]
        assert '<option value="loss" selected>' in body
        assert set(re.findall(r'data-mean="([^"]+)"', body)) == {"1.0"}

    def test_no_chart_without_scores(self, developer, model):
        assert "No client has scored an aggregate" in page_text(browser(developer).get(detail_url(model)))

    def test_lineage_names_parent_updates_and_published_version(self, developer, scored_model):
        first, second = scored_model.aggregates.order_by("created_on", "id")[:2]
        services.aggregate_publish(aggregate=second, version="2.0.0")
        response = browser(developer).get(detail_url(scored_model))
        cells = row_cells(response, "aggregate", second.pk)
        assert cells[:4] == [f"#{second.pk}", f"#{first.pk}", "3", "3"]
        assert cells[5] == "2.0.0"
        assert row_cells(response, "aggregate", first.pk)[1] == "first"

    def test_updates_by_client_with_status_counts(self, developer, scored_model):
        straggler = scored_model.clients.first()
        ModelUpdate.objects.create(federated_model=scored_model, client=straggler, data="x", status=Status.FAILED)
        cells = row_cells(browser(developer).get(detail_url(scored_model)), "client", straggler.uuid)
        assert cells[1:6] == ["0", "0", "4", "1", "0"]


class TestActions:
    def test_pause_and_resume(self, developer, scored_model):
        session = browser(developer)
        resumed = csrf_post(session, reverse("dashboard:model-resume", args=[scored_model.pk]))
        assert "Aggregation resumed." in page_text(resumed)
        scored_model.refresh_from_db()
        assert scored_model.allow_aggregation
        paused = csrf_post(session, reverse("dashboard:model-pause", args=[scored_model.pk]))
        assert "Aggregation paused." in page_text(paused)
        scored_model.refresh_from_db()
        assert not scored_model.allow_aggregation

    def test_actions_refuse_get_and_missing_csrf(self, developer, scored_model):
        session = browser(developer)
        url = reverse("dashboard:model-resume", args=[scored_model.pk])
        assert session.get(url).status_code == 405
        assert session.post(url).status_code == 403
        scored_model.refresh_from_db()
        assert not scored_model.allow_aggregation

    def test_actions_on_another_developers_model_are_404(self, developer, other_model):
        other_model.allow_aggregation = True
        other_model.save()
        aggregate = make_aggregate(other_model, [[1.0]])
        session = browser(developer)
        assert csrf_post(session, reverse("dashboard:model-pause", args=[other_model.pk])).status_code == 404
        publish = reverse("dashboard:aggregate-publish", args=[other_model.pk, aggregate.pk])
        assert csrf_post(session, publish, {"version": "9"}).status_code == 404
        other_model.refresh_from_db()
        assert other_model.allow_aggregation
        assert not other_model.artifacts.exists()

    def test_publish_shows_the_new_version(self, developer, scored_model):
        aggregate = scored_model.aggregates.order_by("-created_on", "-id").first()
        url = reverse("dashboard:aggregate-publish", args=[scored_model.pk, aggregate.pk])
        response = csrf_post(browser(developer), url, {"version": "2.0.0"})
        assert f"Aggregate {aggregate.pk} published as version 2.0.0." in page_text(response)
        assert re.search(r'class="current-version">2.0.0<', response.content.decode())
        assert ModelArtifact.objects.get(federated_model=scored_model, version="2.0.0").aggregate == aggregate

    def test_publish_errors_are_the_apis_messages(self, developer, scored_model):
        aggregate = scored_model.aggregates.first()
        url = reverse("dashboard:aggregate-publish", args=[scored_model.pk, aggregate.pk])
        session = browser(developer)
        duplicate = csrf_post(session, url, {"version": "1.0.0"})
        assert f"Model {scored_model.pk} already has an artifact of version '1.0.0'." in page_text(duplicate)
        blank = csrf_post(session, url, {"version": ""})
        assert "version: This field may not be blank." in page_text(blank)
        assert list(scored_model.artifacts.values_list("version", flat=True)) == ["1.0.0"]

    def test_publishing_another_models_aggregate_through_ones_own_is_404(self, developer, model, other_model):
        foreign = make_aggregate(other_model, [[1.0]])
        url = reverse("dashboard:aggregate-publish", args=[model.pk, foreign.pk])
        assert csrf_post(browser(developer), url, {"version": "2"}).status_code == 404


class TestManyUpdates:
    """10,000 updates and 1,000 aggregates: every page is a fixed handful of queries.

    The list: session, user, count, the page. The model page: session, user, the model with its counts,
    the chart's aggregate ids and their scores, the two paginators' counts, the lineage page with its
    published versions, the clients page.
    """

    @pytest.fixture
    def busy_model(self, developer):
        model = make_model(developer, name="busy")
        clients = Client.objects.bulk_create([Client() for _ in range(20)])
        model.clients.set(clients)
        aggregates = ModelAggregate.objects.bulk_create(
            [ModelAggregate(federated_model=model, result=f"aggregates/{index}") for index in range(1000)]
        )
        ModelUpdate.objects.bulk_create(
            [
                ModelUpdate(
                    federated_model=model,
                    client=clients[index % 20],
                    data=f"updates/{index}",
                    status=index % 5,
                    applied_aggregate=aggregates[index % 1000] if index % 5 == Status.COMPLETE else None,
                )
                for index in range(10_000)
            ]
        )
        ClientAggregateScore.objects.bulk_create(
            [
                ClientAggregateScore(aggregate=aggregate, client=client, validation_results={"accuracy": 0.5})
                for aggregate in aggregates
                for client in clients[:3]
            ]
        )
        return model

    def test_models_list(self, developer, busy_model, django_assert_max_num_queries):
        session = browser(developer)
        with django_assert_max_num_queries(4):
            response = session.get("/dashboard/?sort=-pending")
        assert re.search(r"<td class=\"num\">2000</td>", response.content.decode())

    def test_model_page(self, developer, busy_model, django_assert_max_num_queries):
        session = browser(developer)
        with django_assert_max_num_queries(10):
            response = session.get(detail_url(busy_model))
        assert len(re.findall(r'class="chart-point"', response.content.decode())) == 50
        assert "page 1 of 50 (1000 aggregates)" in page_text(response)
        assert FederatedModel.objects.get(pk=busy_model.pk).updates.count() == 10_000
