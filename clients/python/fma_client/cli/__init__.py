"""``fma``: the command line of model developers (log in once, models, watch, publish, download, enrollment tokens).

Layers, each importing only those below it: ``app`` (the typer commands) → ``watching`` and ``output`` (what is
shown), ``inputs`` (model files) → ``session`` (the one adapter over ``fma_client.DeveloperClient``) and
``credentials`` (the stored login). Nothing in ``fma_client`` outside this package imports it; typer (and
PyYAML for YAML files) come with ``pip install 'fma-client[cli]'``.
"""
