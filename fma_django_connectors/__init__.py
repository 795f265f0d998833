"""Django connectors for FMA: data model, REST API v1, Lambda handler and aggregation connectors."""
