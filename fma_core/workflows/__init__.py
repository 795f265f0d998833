"""Workflows of the core: what happens, in which order, over the connectors."""
