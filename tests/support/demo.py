"""The demo data of docs/interfaces.md §7 for a test, as ``manage.py seed_demo`` makes it, quickly.

``seed_demo`` runs in an empty database the first time a process asks for the demo; after that the rows it made
there are put back (their times set to now, as if made now), in one transaction (tests.support.made_once).
Sixty queries and 50 ms a test were the set-up of the 1,082 tests that use the demo; putting rows back takes
10 ms. Where a fixture made some of those rows first, ``seed_demo`` runs as before: it leaves what is there.
"""

from __future__ import annotations

import os

from django.core.management import call_command

from orders.models import Product
from tests.support.made_once import made_once


def demo_data() -> dict[str, Product]:
    """The demo in the test's database; its products by code."""
    made_once("demo", _seed, times_now=True)
    return {product.code: product for product in Product.objects.all()}


def _seed() -> None:
    with open(os.devnull, "w") as quiet:
        call_command("seed_demo", stdout=quiet)
