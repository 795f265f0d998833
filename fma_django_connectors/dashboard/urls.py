"""Routes of the dashboard, all named (``dashboard:...``): templates reverse them, so the stage path stays on."""

from django.urls import path

from fma_django_connectors.dashboard import views

app_name = "dashboard"

urlpatterns = [
    path("", views.model_list, name="model-list"),
    path("login/", views.login, name="login"),
    path("logout/", views.logout, name="logout"),
    path("models/<int:pk>/", views.model_detail, name="model-detail"),
    path("models/<int:pk>/pause/", views.model_pause, name="model-pause"),
    path("models/<int:pk>/resume/", views.model_resume, name="model-resume"),
    path("models/<int:pk>/aggregates/<int:aggregate_pk>/publish/", views.aggregate_publish, name="aggregate-publish"),
]
