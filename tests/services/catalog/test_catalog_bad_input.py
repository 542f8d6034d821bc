"""Every validation rule of the catalog: INVALID_ARGUMENT naming the field, store unchanged."""

import grpc
import pytest

from mesh import contracts
from services.runtime.testing import connect, error_details, serving

from ..rows import snapshot

catalog = contracts.service("catalog")
m = catalog.messages

CASES = [
    ("GetProduct", m.GetProductRequest(id=""), {"id"}),
    ("GetProduct", m.GetProductRequest(id="x" * 129), {"id"}),
    ("BatchGetProducts", m.BatchGetProductsRequest(), {"ids"}),
    ("BatchGetProducts", m.BatchGetProductsRequest(ids=["a"] * 101), {"ids"}),
    ("BatchGetProducts", m.BatchGetProductsRequest(ids=["a", "", " "]), {"ids[1]", "ids[2]"}),
    ("ListProducts", m.ListProductsRequest(page_size=-1), {"page_size"}),
    ("ListProducts", m.ListProductsRequest(page_token="garbage!"), {"page_token"}),
    ("ListProducts", m.ListProductsRequest(category="c" * 65), {"category"}),
    (
        "ListProducts",
        m.ListProductsRequest(page_size=-5, page_token="e30", category="c" * 65),
        {"page_size", "page_token", "category"},
    ),
    ("SearchProducts", m.SearchProductsRequest(query=""), {"query"}),
    ("SearchProducts", m.SearchProductsRequest(query="q" * 201), {"query"}),
    ("SearchProducts", m.SearchProductsRequest(query="?!"), {"query"}),
    ("SearchProducts", m.SearchProductsRequest(query="tent", page_size=-1), {"page_size"}),
    ("SearchProducts", m.SearchProductsRequest(query="tent", page_token="xyz"), {"page_token"}),
    ("ListCategories", m.ListCategoriesRequest(page_size=-1), {"page_size"}),
    ("ListCategories", m.ListCategoriesRequest(page_token="AAAA"), {"page_token"}),
]


@pytest.mark.parametrize(("method", "request_message", "fields"), CASES)
async def test_bad_input_names_the_fields_and_changes_nothing(
    databases, method, request_message, fields
):
    async with serving("catalog", databases) as server, connect(server) as channel:
        before = snapshot(databases.admin_url("catalog"), "products", "categories")
        assert before["products"] and before["categories"]  # seeded: a change would show
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await getattr(catalog.stub(channel), method)(request_message)
        details = error_details(caught.value)
        assert details.code is grpc.StatusCode.INVALID_ARGUMENT
        assert details.fields == fields
        assert details.domain == "shop.catalog.v1"
        assert snapshot(databases.admin_url("catalog"), "products", "categories") == before
