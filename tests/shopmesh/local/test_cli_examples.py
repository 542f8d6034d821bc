"""The examples the `shopmesh` commands show in their --help name products the catalog
has, and `shopmesh checkout`'s, run against the mesh's edge, place a CONFIRMED order."""

from __future__ import annotations

import argparse
import re
import shlex

import pytest

from services.seed import SEED_PRODUCTS
from shopmesh import cli

# A shell command substitution inside an example: `"$(shopmesh token --customer ada)"`.
_NESTED = re.compile(r"^\$\(shopmesh (.*)\)$")


def _descriptions() -> dict[str, str]:
    parser = cli.build_parser()
    (commands,) = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {name: sub.description or "" for name, sub in commands.choices.items()}


def _examples(description: str) -> list[list[str]]:
    """Each `shopmesh ...` command line of a description (continued lines joined), as argv
    after `shopmesh`, up to a pipe or a comment."""
    joined = re.sub(r"\\\n\s*", " ", description)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line.startswith("shopmesh "):
            words = shlex.split(line.split(" | ")[0], comments=True)
            found.append(words[1:])
    return found


def _items(argv: list[str]) -> list[str]:
    return [argv[i + 1].partition("=")[0] for i, word in enumerate(argv[:-1]) if word == "--item"]


def test_every_example_names_products_the_catalog_has():
    products = {product.id for product in SEED_PRODUCTS}
    named = {
        (command, item)
        for command, description in _descriptions().items()
        for argv in _examples(description)
        for item in _items(argv)
    }
    assert named, "no example names a product"
    assert {(command, item) for command, item in named if item not in products} == set()


@pytest.mark.parametrize("argv", _examples(_descriptions()["checkout"]), ids=lambda a: " ".join(a))
def test_the_checkout_examples_place_a_confirmed_order(mesh, capsys, argv):
    run_dir = ["--run-dir", str(mesh.layout.root)]
    resolved = []
    for word in argv:
        if nested := _NESTED.match(word):
            assert cli.main([*shlex.split(nested.group(1)), *run_dir]) == 0
            word = capsys.readouterr().out.strip()
        resolved.append(mesh.edge_address if word == "127.0.0.1:8080" else word)
    assert cli.main(resolved) == 0, capsys.readouterr()
    out = capsys.readouterr().out
    assert "CONFIRMED" in out.splitlines()[0], out
    for item in _items(argv):
        assert f"({item})" in out
