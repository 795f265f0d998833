"""Framework-free core of FMA: registries, weights serialization, aggregation algorithms and workflow.

Nothing in this package imports Django; the Django layer (``fma_django_connectors``) builds on it.
"""
