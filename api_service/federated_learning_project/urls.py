"""URL map: admin, token endpoint and the v1 API."""

from django.contrib import admin
from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api-token-auth/", obtain_auth_token, name="api-token-auth"),
    path("api/v1/", include("fma_django_connectors.urls")),
]
