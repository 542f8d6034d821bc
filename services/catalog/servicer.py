"""CatalogService handlers: validate, then answer from the in-memory catalog."""

from __future__ import annotations

from mesh import contracts
from services.catalog.index import Catalog, query_words
from services.catalog.store import CatalogStore
from services.runtime import ServerConfig
from services.runtime.errors import NotFound
from services.runtime.paging import decode_offset, encode_page_token
from services.runtime.validation import Violations

__all__ = ["CatalogServicer"]

contract = contracts.service("catalog")
messages = contract.messages

MAX_BATCH = 100
MAX_QUERY_LENGTH = 200
MAX_CATEGORY_LENGTH = 64


def _page(items: list, offset: int, size: int, filter: dict) -> tuple[list, str]:
    """One page of `items` and the token for the next one ("" on the last page)."""
    page = items[offset : offset + size]
    end = offset + len(page)
    return page, encode_page_token(filter, end) if end < len(items) else ""


class CatalogServicer(contract.servicer_base):
    def __init__(self, config: ServerConfig, store: CatalogStore) -> None:
        self._store = store

    @property
    def _catalog(self) -> Catalog:
        return self._store.catalog

    async def GetProduct(self, request, context):
        violations = Violations()
        violations.required(request.id, "id")
        violations.check()
        product = self._catalog.products.get(request.id)
        if product is None:
            raise NotFound(f"no product with id {request.id!r}", metadata={"id": request.id})
        return messages.GetProductResponse(product=product)

    async def BatchGetProducts(self, request, context):
        violations = Violations()
        if violations.count(request.ids, "ids", 1, MAX_BATCH):
            for index, product_id in enumerate(request.ids):
                violations.required(product_id, f"ids[{index}]")
        violations.check()
        products = self._catalog.products
        missing = list(dict.fromkeys(i for i in request.ids if i not in products))
        if missing:
            raise NotFound(
                f"no products with ids {', '.join(missing)}",
                metadata={"missing_ids": ",".join(missing)},
            )
        return messages.BatchGetProductsResponse(products=[products[i] for i in request.ids])

    async def ListProducts(self, request, context):
        violations = Violations()
        violations.max_length(request.category, "category", MAX_CATEGORY_LENGTH)
        size = violations.page_size(request.page_size)
        filter = {"rpc": "ListProducts", "category": request.category}
        offset = decode_offset(request.page_token, filter, violations)
        violations.check()
        matching = self._catalog.listing(request.category)
        page, next_token = _page(matching, offset, size, filter)
        return messages.ListProductsResponse(
            products=page, next_page_token=next_token, total_size=len(matching)
        )

    async def SearchProducts(self, request, context):
        violations = Violations()
        words = query_words(request.query)
        if violations.required(request.query, "query", max_length=MAX_QUERY_LENGTH) and not words:
            violations.add("query", "must contain at least one letter or digit")
        violations.max_length(request.category, "category", MAX_CATEGORY_LENGTH)
        size = violations.page_size(request.page_size)
        filter = {"rpc": "SearchProducts", "words": words, "category": request.category}
        offset = decode_offset(request.page_token, filter, violations)
        violations.check()
        matching = self._catalog.search(words, request.category)
        page, next_token = _page(matching, offset, size, filter)
        return messages.SearchProductsResponse(
            products=page, next_page_token=next_token, total_size=len(matching)
        )

    async def ListCategories(self, request, context):
        violations = Violations()
        size = violations.page_size(request.page_size, default=50)
        filter = {"rpc": "ListCategories"}
        offset = decode_offset(request.page_token, filter, violations)
        violations.check()
        catalog = self._catalog
        categories = [
            messages.Category(
                id=category_id,
                display_name=name,
                product_count=len(catalog.by_category.get(category_id, ())),
            )
            for category_id, name in catalog.categories.items()
        ]
        page, next_token = _page(categories, offset, size, filter)
        return messages.ListCategoriesResponse(categories=page, next_page_token=next_token)
