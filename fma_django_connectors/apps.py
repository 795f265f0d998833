"""App configuration: importing the modules that register handlers and connectors."""

from importlib import import_module

from django.apps import AppConfig

# Modules whose import registers handlers and connectors in the core's registries, and schema extensions.
REGISTERING_MODULES = (
    "fma_django_connectors.gateway.lambda_handler",
    "fma_django_connectors.connectors",
    "fma_django_connectors.aggregation.triggers",
    # drf-spectacular extensions (the OpenAPI description of the views).
    "fma_django_connectors.api.openapi",
)


class FmaDjangoConnectorsConfig(AppConfig):
    name = "fma_django_connectors"
    verbose_name = "Federated model aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        for module in REGISTERING_MODULES:
            import_module(module)
