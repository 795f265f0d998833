"""PostgreSQL whose credentials come from a secret and follow its rotation (a Django database ENGINE).

``DATABASES["default"]["CREDENTIALS_SECRET"]`` names the secret (RDS form ``{"username": ..., "password":
...}``), read through ``API_SERVICE_SETTINGS["secrets_manager"]``. ``settings_remote`` reads it at cold
start (``USER``, ``PASSWORD``); when the server later refuses the password (RDS rotated it: a warm
container still holds the old one), the backend reads the secret once more, bypassing the secrets cache,
and connects again with what it holds. See ``base.py``.
"""
