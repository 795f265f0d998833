"""App configuration: at start-up the FMA settings are checked, the core configured, implementations registered."""

from importlib import import_module

from django.apps import AppConfig


class FmaDjangoConnectorsConfig(AppConfig):
    name = "fma_django_connectors"
    verbose_name = "Federated model aggregation"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from fma_core.aws import configure_aws
        from fma_django_connectors.conf import aws_settings, check_settings, django_settings
        from fma_django_connectors.registrations import register

        check_settings()
        configure_aws(aws_settings(django_settings))
        register()
        # drf-spectacular finds its extensions by their subclassing, so the module must be imported.
        import_module("fma_django_connectors.api.openapi")
