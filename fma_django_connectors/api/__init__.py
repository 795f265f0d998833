"""API v1, where a request to ``/api/v1/`` enters: routes, viewsets, the documents they read and write, query
filters, paging, JSON parsing and rendering, and the OpenAPI description drf-spectacular builds from them.

Layer rule: the top of the stack. Modules here may import everything below them (``access``, ``services``,
``selectors``, ``storage``, ``client_ids``, ``schemas``, ``exceptions``, ``models``); nothing in the package
imports from here except the peers at the same height, ``admin`` and ``dashboard`` (which reuse serializers'
validation), and the project's ``urls.py`` and settings.
"""
