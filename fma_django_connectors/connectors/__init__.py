"""Django implementations of the aggregation connectors (registered by ``fma_django_connectors.registrations``)."""
