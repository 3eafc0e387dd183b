"""``the_row``: the row a unique lookup finds, or None, read without an ORDER BY."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from ipvas.rows import the_row
from orders.models import Product

pytestmark = pytest.mark.django_db


def test_the_row_found_or_none_and_no_order_by(demo):
    with CaptureQueriesContext(connection) as queries:
        found = the_row(Product.objects.filter(code="VIP-MONTH"))
        missing = the_row(Product.objects.filter(code="NO-SUCH-PRODUCT"))
        values = the_row(Product.objects.filter(code="VIP-MONTH").values_list("pk", flat=True))
    assert found is not None and found.code == "VIP-MONTH"
    assert missing is None
    assert values == found.pk
    assert len(queries) == 3
    assert not any("ORDER BY" in query["sql"] for query in queries.captured_queries)
    # What it stands for: first(), which orders by the model's ordering (price, code).
    with CaptureQueriesContext(connection) as queries:
        assert Product.objects.filter(code="VIP-MONTH").first() == found
    assert "ORDER BY" in queries.captured_queries[0]["sql"]
