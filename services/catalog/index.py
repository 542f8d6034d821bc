"""The in-memory catalog: lookups, category listings and text search over a snapshot.

Products are kept as ready-made protobuf messages, so a read is a dict lookup
and a copy, with no SQL on the request path.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from mesh import contracts
from services.runtime.money import from_nanos

__all__ = ["Catalog", "ProductRecord", "query_words"]

messages = contracts.service("catalog").messages
_WORD = re.compile(r"\w+")

# How much a query word found in each field adds to a product's score.
_NAME_WEIGHT, _CATEGORY_WEIGHT, _DESCRIPTION_WEIGHT, _WHOLE_WORD_IN_NAME = 4, 2, 1, 2


@dataclass(frozen=True)
class ProductRecord:
    id: str
    sku: str
    name: str
    description: str
    category: str
    image_urls: tuple[str, ...]
    currency: str
    price_nanos: int

    def to_proto(self):
        return messages.Product(
            id=self.id,
            sku=self.sku,
            name=self.name,
            description=self.description,
            category=self.category,
            image_urls=self.image_urls,
            price=from_nanos(self.currency, self.price_nanos),
        )


def query_words(query: str) -> list[str]:
    """The lower-case words of a search query, in order, without repeats."""
    return list(dict.fromkeys(_WORD.findall(query.lower())))


def _words(text: str) -> tuple[str, ...]:
    return tuple(dict.fromkeys(_WORD.findall(text.lower())))


def _prefixes(words: tuple[str, ...], query_word: str) -> bool:
    # A query word matches a field when it starts one of the field's words:
    # "headphone" finds "Headphones", "books" does not find "notebooks".
    return any(word.startswith(query_word) for word in words)


@dataclass(frozen=True)
class _Searchable:
    name: tuple[str, ...]
    category: tuple[str, ...]
    description: tuple[str, ...]


class Catalog:
    def __init__(self, products: list[ProductRecord], categories: dict[str, str]) -> None:
        ordered = sorted(products, key=lambda p: p.id)
        self.products = {p.id: p.to_proto() for p in ordered}
        self.ordered = list(self.products.values())
        self.categories = dict(sorted(categories.items()))
        self.by_category: dict[str, list] = {c: [] for c in self.categories}
        for product in self.ordered:
            self.by_category.setdefault(product.category, []).append(product)
        self._searchable = {
            p.id: _Searchable(
                name=_words(p.name),
                category=_words(f"{p.category} {self.categories.get(p.category, '')}"),
                description=_words(p.description),
            )
            for p in products
        }

    def listing(self, category: str) -> list:
        """Products of one category (all products for ""), ordered by id."""
        if not category:
            return self.ordered
        return self.by_category.get(category, [])

    def search(self, words: list[str], category: str) -> list:
        """Products matching every word, best first (then by id)."""
        scored = []
        for product in self.listing(category):
            score = self._score(self._searchable[product.id], words)
            if score:
                scored.append((-score, product.id, product))
        scored.sort(key=lambda entry: entry[:2])
        return [product for _, _, product in scored]

    @staticmethod
    def _score(fields: _Searchable, words: list[str]) -> int:
        total = 0
        for word in words:
            score = 0
            if _prefixes(fields.name, word):
                score += _NAME_WEIGHT + (_WHOLE_WORD_IN_NAME if word in fields.name else 0)
            if _prefixes(fields.category, word):
                score += _CATEGORY_WEIGHT
            if _prefixes(fields.description, word):
                score += _DESCRIPTION_WEIGHT
            if not score:
                return 0  # every word must match somewhere
            total += score
        return total
