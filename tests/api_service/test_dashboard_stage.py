"""The dashboard through the real Lambda handler behind an API Gateway stage: every URL keeps the stage."""

import re

import pytest
from django.urls import set_script_prefix

import service_initialization
from tests.events import make_context, make_v1_event
from tests.fma_django_connectors.conftest import make_aggregate, make_model


@pytest.fixture
def developer(django_user_model):
    return django_user_model.objects.create_user("ada")


@pytest.fixture
def model(developer, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    model = make_model(developer)
    make_aggregate(model, [[1.0]])
    return model


class TestStagePath:
    """Behind API Gateway's stage (``FMA_URL_PREFIX`` → ``FORCE_SCRIPT_NAME``; apig-wsgi leaves SCRIPT_NAME empty)."""

    @pytest.fixture(autouse=True)
    def stage(self, settings, keep_test_connection):
        settings.FORCE_SCRIPT_NAME = "/Prod"
        settings.STATIC_URL = "/Prod/static/"
        yield
        # The handler sets this thread's URL prefix from FORCE_SCRIPT_NAME; later tests expect none.
        set_script_prefix("/")

    def test_the_login_redirect_keeps_the_stage(self, db):
        response = service_initialization.handler(make_v1_event(path="/dashboard/", stage="Prod"), make_context())
        assert response["statusCode"] == 302
        assert response["multiValueHeaders"]["Location"] == ["/Prod/dashboard/login/?next=/Prod/dashboard/"]

    def test_every_link_and_form_of_the_model_page_keeps_the_stage(self, client, developer, model):
        client.force_login(developer)
        event = make_v1_event(
            path=f"/dashboard/models/{model.pk}/",
            stage="Prod",
            headers={"Cookie": f"sessionid={client.cookies['sessionid'].value}"},
        )
        response = service_initialization.handler(event, make_context())
        assert response["statusCode"] == 200
        links = re.findall(r'(?:href|action)="(/[^"]*)"', response["body"])
        assert f"/Prod/dashboard/models/{model.pk}/resume/" in links
        assert "/Prod/static/dashboard/dashboard.css" in links
        assert [link for link in links if not link.startswith("/Prod/")] == []
