"""Connectors between the aggregation workflow and where metadata and model data live."""
