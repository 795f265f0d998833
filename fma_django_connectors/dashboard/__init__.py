"""The experiment dashboard: HTML pages over the same data, permissions and services as API v1."""
