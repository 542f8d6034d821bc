"""CatalogService against a real server on loopback with a real PostgreSQL database."""

import grpc
import pytest

from mesh import contracts
from services.runtime.testing import connect, error_details, serving
from services.seed import SEED_CATEGORIES, SEED_PRODUCTS

catalog = contracts.service("catalog")
m = catalog.messages
ALL_IDS = sorted(p.id for p in SEED_PRODUCTS)


@pytest.fixture
async def stub(databases):
    async with serving("catalog", databases) as server, connect(server) as channel:
        yield catalog.stub(channel)


async def _fails(call) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call
    return caught.value


def test_seed_is_large_enough_and_consistent():
    assert len(SEED_PRODUCTS) >= 50 and len(SEED_CATEGORIES) >= 5
    assert len({p.sku for p in SEED_PRODUCTS}) == len(SEED_PRODUCTS)
    assert {p.category for p in SEED_PRODUCTS} == set(SEED_CATEGORIES)


async def test_get_product_returns_the_seeded_product_with_money_price(stub):
    product = (await stub.GetProduct(m.GetProductRequest(id="kitchen-chef-knife"))).product
    assert (product.sku, product.name, product.category) == (
        "KIT-1002",
        "Chef's Knife 20 cm",
        "kitchen",
    )
    assert (product.price.currency_code, product.price.units, product.price.nanos) == ("USD", 89, 0)
    assert product.image_urls[0].startswith("https://")


async def test_get_unknown_product_is_not_found_naming_it(stub):
    details = error_details(await _fails(stub.GetProduct(m.GetProductRequest(id="no-such"))))
    assert details.code is grpc.StatusCode.NOT_FOUND
    assert details.metadata == {"id": "no-such"} and details.domain == "shop.catalog.v1"


async def test_batch_get_keeps_request_order_and_repeats(stub):
    ids = ["books-the-hobbit", "audio-turntable", "books-the-hobbit"]
    response = await stub.BatchGetProducts(m.BatchGetProductsRequest(ids=ids))
    assert [p.id for p in response.products] == ids
    assert response.products[1].price.units == 249


async def test_batch_get_names_every_missing_id(stub):
    ids = ["ghost-1", "books-the-hobbit", "ghost-2", "ghost-1"]
    details = error_details(await _fails(stub.BatchGetProducts(m.BatchGetProductsRequest(ids=ids))))
    assert details.code is grpc.StatusCode.NOT_FOUND
    assert details.metadata["missing_ids"] == "ghost-1,ghost-2"
    assert "ghost-1" in details.message and "ghost-2" in details.message


async def test_list_pages_through_everything_in_id_order(stub):
    seen, token, pages = [], "", 0
    while True:
        response = await stub.ListProducts(m.ListProductsRequest(page_size=7, page_token=token))
        assert response.total_size == len(ALL_IDS)
        seen += [p.id for p in response.products]
        pages += 1
        token = response.next_page_token
        if not token:
            break
    assert seen == ALL_IDS and pages == 8


async def test_list_page_size_default_and_clamp(stub):
    assert len((await stub.ListProducts(m.ListProductsRequest())).products) == 20
    assert len((await stub.ListProducts(m.ListProductsRequest(page_size=500))).products) == 54


async def test_list_filters_by_category(stub):
    response = await stub.ListProducts(m.ListProductsRequest(category="audio", page_size=100))
    assert response.total_size == 9 and {p.category for p in response.products} == {"audio"}
    empty = await stub.ListProducts(m.ListProductsRequest(category="garden"))
    assert (empty.total_size, list(empty.products), empty.next_page_token) == (0, [], "")


async def test_page_token_only_works_for_its_filter(stub):
    first = await stub.ListProducts(m.ListProductsRequest(category="audio", page_size=2))
    request = m.ListProductsRequest(category="books", page_size=2, page_token=first.next_page_token)
    details = error_details(await _fails(stub.ListProducts(request)))
    assert details.code is grpc.StatusCode.INVALID_ARGUMENT and details.fields == {"page_token"}
    search = m.SearchProductsRequest(query="audio", page_token=first.next_page_token)
    assert error_details(await _fails(stub.SearchProducts(search))).fields == {"page_token"}


async def test_search_requires_every_word_ignoring_case(stub):
    response = await stub.SearchProducts(m.SearchProductsRequest(query="WIRELESS Headphones"))
    assert [p.id for p in response.products] == ["audio-noise-cancelling-headphones"]
    assert response.total_size == 1


async def test_search_ranks_name_matches_before_description_matches(stub):
    response = await stub.SearchProducts(m.SearchProductsRequest(query="headphones"))
    ids = [p.id for p in response.products]
    assert set(ids[:2]) == {"audio-noise-cancelling-headphones", "audio-studio-monitor-headphones"}
    assert "audio-dac-amp" in ids[2:]  # "headphones" only in its description


async def test_search_matches_category_and_paginates(stub):
    # "books" matches the books category, and also "Bookshelf" in a speaker's name.
    ids, token = [], ""
    while True:
        request = m.SearchProductsRequest(query="books", page_size=5, page_token=token)
        response = await stub.SearchProducts(request)
        assert response.total_size == 10
        ids += [p.id for p in response.products]
        if not (token := response.next_page_token):
            break
    assert len(ids) == len(set(ids)) == 10
    assert set(ids) - {"audio-bookshelf-speakers"} == {
        p.id for p in SEED_PRODUCTS if p.category == "books"
    }


async def test_search_within_a_category(stub):
    response = await stub.SearchProducts(m.SearchProductsRequest(query="wool", category="apparel"))
    assert response.total_size >= 3 and {p.category for p in response.products} == {"apparel"}


async def test_list_categories_counts_products(stub):
    response = await stub.ListCategories(m.ListCategoriesRequest())
    assert [c.id for c in response.categories] == sorted(SEED_CATEGORIES)
    assert sum(c.product_count for c in response.categories) == len(SEED_PRODUCTS)
    first = await stub.ListCategories(m.ListCategoriesRequest(page_size=4))
    rest = await stub.ListCategories(
        m.ListCategoriesRequest(page_size=4, page_token=first.next_page_token)
    )
    assert len(first.categories) == 4 and len(rest.categories) == 2 and not rest.next_page_token
