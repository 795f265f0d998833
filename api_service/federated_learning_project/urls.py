"""URL map: the root, admin, token endpoint, the v1 API, its OpenAPI description with interactive docs, and the
dashboard."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularSwaggerSplitView

from federated_learning_project.entry_points import root
from fma_django_connectors.access.login import guarded_form_login, token_login
from fma_django_connectors.api.docs import RedocView, SchemaView

urlpatterns = [
    path("", root, name="root"),
    # The admin's login form under the password brake; ahead of the admin's own route for the same path.
    path("admin/login/", guarded_form_login(admin.site.login)),
    path("admin/", admin.site.urls),
    path("api-token-auth/", token_login, name="api-token-auth"),
    path("api/v1/", include("fma_django_connectors.api.urls")),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    # Both pages start without inline script (``fma_django_connectors/api/docs.py``).
    path("api/docs/", SpectacularSwaggerSplitView.as_view(url_name="schema"), name="swagger-ui"),
    path("api/docs/redoc/", RedocView.as_view(url_name="schema"), name="redoc"),
    path("dashboard/", include("fma_django_connectors.dashboard.urls")),
]

# Errors Django answers itself (outside DRF) are JSON too.
handler400 = "fma_django_connectors.exceptions.bad_request"
handler403 = "fma_django_connectors.exceptions.permission_denied"
handler404 = "fma_django_connectors.exceptions.not_found"
handler500 = "fma_django_connectors.exceptions.server_error"
