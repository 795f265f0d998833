"""App configuration of the dashboard (its own app, so its templates and static files are found)."""

from django.apps import AppConfig


class DashboardConfig(AppConfig):
    name = "fma_django_connectors.dashboard"
    label = "fma_dashboard"
    verbose_name = "Experiment dashboard"
