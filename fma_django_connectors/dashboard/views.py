"""Dashboard pages: thin views over the dashboard selectors and the API's own services and validation.

Same rules as API v1: a developer sees its own models, staff all; anyone else's model is a 404.
Every form posts with Django's CSRF token; actions redirect back to the model page with a message.
"""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError as DjangoValidationError
from django.core.paginator import Page, Paginator
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.views.decorators.http import require_GET, require_POST

from fma_core.exceptions import FMAError
from fma_django_connectors import client_ids, services
from fma_django_connectors.access.login import guarded_form_login
from fma_django_connectors.api.serializers import PublishAggregateSerializer
from fma_django_connectors.dashboard import selectors
from fma_django_connectors.dashboard.charts import build_chart
from fma_django_connectors.exceptions import ApplicationError
from fma_django_connectors.models import FederatedModel

MODELS_PER_PAGE = 25
AGGREGATES_PER_PAGE = 20
CLIENTS_PER_PAGE = 25

dashboard_login_required = login_required(login_url="dashboard:login")

login = guarded_form_login(
    auth_views.LoginView.as_view(
        template_name="dashboard/login.html",
        redirect_authenticated_user=True,
        next_page=reverse_lazy("dashboard:model-list"),
    )
)
logout = auth_views.LogoutView.as_view(next_page="dashboard:login")


def _page(request: HttpRequest, items: Any, per_page: int, parameter: str = "page") -> Page:
    """One page of ``items`` (``?<parameter>=n``), with links to its neighbours that keep the other parameters."""
    page = Paginator(items, per_page).get_page(request.GET.get(parameter))

    def link(number: int) -> str:
        query = request.GET.copy()
        query[parameter] = str(number)
        return f"?{query.urlencode()}"

    page.previous_link = link(page.previous_page_number()) if page.has_previous() else None
    page.next_link = link(page.next_page_number()) if page.has_next() else None
    return page


def _visible_model(request: HttpRequest, pk: int) -> FederatedModel | None:
    """The model with its counts if the user may see it; None (a 404) whether it is missing or someone else's."""
    return selectors.model_overview(actor=request.user).filter(pk=pk).first()


def _not_found(request: HttpRequest) -> HttpResponse:
    # An HTML page: the project's handler404 answers JSON, for the API.
    return render(request, "dashboard/404.html", status=404)


def _model_page(request: HttpRequest, model: FederatedModel) -> HttpResponseRedirect:
    return redirect("dashboard:model-detail", pk=model.pk)


@require_GET
@dashboard_login_required
def model_list(request: HttpRequest) -> HttpResponse:
    sort, ordering = selectors.model_sort(request.GET.get("sort"))
    page = _page(request, selectors.model_overview(actor=request.user).order_by(*ordering), MODELS_PER_PAGE)
    return render(request, "dashboard/model_list.html", {"page": page, "sort": sort})


@require_GET
@dashboard_login_required
def model_detail(request: HttpRequest, pk: int) -> HttpResponse:
    model = _visible_model(request, pk)
    if model is None:
        return _not_found(request)
    metrics, documents = selectors.score_metrics(model=model)
    metric = request.GET.get("metric")
    if metric not in metrics:
        metric = metrics[0] if metrics else None
    summaries = selectors.metric_summaries(documents=documents, metric=metric) if metric else []
    context = {
        "model": model,
        "metrics": metrics,
        "metric": metric,
        "chart": build_chart(summaries) if summaries else None,
        "chart_window": selectors.CHART_AGGREGATES,
        "aggregates": _page(request, selectors.aggregate_lineage(model=model), AGGREGATES_PER_PAGE, "aggregates"),
        "clients": _clients_page(request, model),
    }
    return render(request, "dashboard/model_detail.html", context)


def _clients_page(request: HttpRequest, model: FederatedModel) -> Page:
    """One page of the updates by client, each row's ``client`` as the developer sees it (``client_ids``)."""
    page = _page(request, selectors.updates_by_client(model=model), CLIENTS_PER_PAGE, "clients")
    page.object_list = [
        {**row, "client": client_ids.client_label(row["client_id"], model=model)} for row in page.object_list
    ]
    return page


def _set_aggregation(request: HttpRequest, pk: int, *, allow: bool) -> HttpResponse:
    model = _visible_model(request, pk)
    if model is None:
        return _not_found(request)
    try:
        services.model_update(model=model, changes={"allow_aggregation": allow})
    except (ApplicationError, FMAError, DjangoValidationError) as error:
        messages.error(request, _message(error))
    else:
        messages.success(request, "Aggregation resumed." if allow else "Aggregation paused.")
    return _model_page(request, model)


@require_POST
@dashboard_login_required
def model_pause(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_aggregation(request, pk, allow=False)


@require_POST
@dashboard_login_required
def model_resume(request: HttpRequest, pk: int) -> HttpResponse:
    return _set_aggregation(request, pk, allow=True)


@require_POST
@dashboard_login_required
def aggregate_publish(request: HttpRequest, pk: int, aggregate_pk: int) -> HttpResponse:
    model = _visible_model(request, pk)
    if model is None:
        return _not_found(request)
    aggregate = model.aggregates.filter(pk=aggregate_pk).first()
    if aggregate is None:
        return _not_found(request)
    # The API's own body validation, so the dashboard says what the API would.
    body = PublishAggregateSerializer(data={"version": request.POST.get("version", "")})
    if not body.is_valid():
        messages.error(request, _serializer_message(body.errors))
        return _model_page(request, model)
    try:
        artifact = services.aggregate_publish(aggregate=aggregate, version=body.validated_data["version"])
    except (ApplicationError, FMAError, DjangoValidationError) as error:
        messages.error(request, _message(error))
    else:
        messages.success(request, f"Aggregate {aggregate.pk} published as version {artifact.version}.")
    return _model_page(request, model)


def _serializer_message(errors: dict[str, Any]) -> str:
    return " ".join(f"{field}: {' '.join(str(message) for message in problems)}" for field, problems in errors.items())


def _message(error: Exception) -> str:
    """The text the API would put in its 400 body for ``error``."""
    if isinstance(error, ApplicationError):
        return error.message
    if isinstance(error, DjangoValidationError):
        return " ".join(error.messages)
    return str(error)
