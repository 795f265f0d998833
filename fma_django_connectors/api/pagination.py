"""Paging by ``?page=`` and ``?page_size=``; bodies stay bare JSON lists, as existing clients expect."""

from __future__ import annotations

from typing import Any

from rest_framework.pagination import PageNumberPagination
from rest_framework.response import Response


class BareListPagination(PageNumberPagination):
    """Pages of 10 (at most 20 with ``?page_size=``), answered as a plain list."""

    page_size = 10
    max_page_size = 20
    page_size_query_param = "page_size"

    def get_paginated_response(self, data: Any) -> Response:
        return Response(data)

    def get_paginated_response_schema(self, schema: dict[str, Any]) -> dict[str, Any]:
        return schema


class FederatedModelPagination(BareListPagination):
    """Pages of 100 models (at most 200)."""

    page_size = 100
    max_page_size = 200
