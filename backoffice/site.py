"""Admin's site, ordered for the operator's day (issue #12, item 8).

Django lists admin's apps alphabetically by their label, which put the orders under the sandbox's simulators.
The index and the navigation list the work first — orders and subscriptions, money, reconciliation, the work
queue — then the channels and the system's own records, and the simulated world last. Sections group models
across apps (reconciliation and the work queue are billing's models); an app's own page (/admin/billing/)
stays as Django makes it.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.admin import AdminSite
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

# (section, its title, its app page, the models in their order as "app_label.ModelName").
SECTIONS: list[tuple[str, Any, str, list[str]]] = [
    (
        "orders",
        _("Orders and subscriptions"),
        "orders",
        [
            "orders.Order",
            "orders.Subscription",
            "orders.Entitlement",
            "orders.Product",
            "orders.PurchasePin",
            "orders.PurchasePinEvent",
        ],
    ),
    (
        "money",
        _("Money"),
        "billing",
        [
            "billing.Payment",
            "billing.Refund",
            "billing.LedgerEntry",
            "billing.PaymentNotification",
            "billing.ProviderContract",
            "billing.SmsConfirmation",
            "billing.SmsInbound",
        ],
    ),
    (
        "reconciliation",
        _("Reconciliation"),
        "billing",
        [
            "billing.ReconciliationRun",
            "billing.Discrepancy",
            "billing.ReconciliationItem",
            "billing.Statement",
            "billing.StatementLine",
        ],
    ),
    ("work", _("Work queue"), "billing", ["billing.WorkItem"]),
    (
        "channels",
        _("Channels: business halls and EPG clients"),
        "channels_crm",
        ["channels_crm.Store", "channels_crm.Clerk", "channels_crm.SsoLogin", "epg_api.EpgClient"],
    ),
    (
        "system",
        _("Staff and the system's records"),
        "auth",
        [
            "auth.User",
            "auth.Group",
            "backoffice.StaffAuthenticator",
            "admin.LogEntry",
            "ipvas.OutboxMessage",
        ],
    ),
]
# Whatever no section names (users, groups, two-factor, the admin history, the outbox...) follows, app by app;
# the simulated world comes last.
LAST_APPS = ["sandbox"]


class IpvasAdminSite(AdminSite):
    site_header = "IPVAS"
    site_title = "IPVAS"
    # The navigation beside every page repeated the index and took a quarter of a 1280 px screen from the
    # lists; the index and the breadcrumbs lead everywhere.
    enable_nav_sidebar = False

    def admin_view(self, view: Callable[..., HttpResponse], cacheable: bool = False) -> Callable[..., HttpResponse]:
        """Every admin page refuses a NUL in its query (a list's filter, its search): PostgreSQL refuses it in
        text, which was a 500; no value admin filters or searches on holds one."""
        inner = super().admin_view(view, cacheable)

        @wraps(inner)
        def no_nul(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if any("\x00" in key or any("\x00" in value for value in values) for key, values in request.GET.lists()):
                return HttpResponseBadRequest(
                    gettext("The address holds a NUL character, which no search or filter takes."),
                    content_type="text/plain; charset=utf-8",
                )
            return inner(request, *args, **kwargs)

        return no_nul

    def get_app_list(self, request: HttpRequest, app_label: str | None = None) -> list[dict[str, Any]]:
        apps = super().get_app_list(request, app_label)
        if app_label is not None:
            return apps
        return ordered_sections(apps)


def ordered_sections(apps: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Django's app list (already filtered by the user's permissions) regrouped into ``SECTIONS``."""
    models = {f"{app['app_label']}.{model['object_name']}": (app, model) for app in apps for model in app["models"]}
    placed: set[str] = set()
    sections = []
    for section, title, home, names in SECTIONS:
        found = [models[name] for name in names if name in models]
        if not found:
            continue
        placed.update(name for name in names if name in models)
        first_app = next((app for app, _model in found if app["app_label"] == home), found[0][0])
        sections.append(
            {
                "name": title,
                "app_label": section,
                "app_url": first_app["app_url"],
                "has_module_perms": True,
                "models": [model for _app, model in found],
            }
        )
    rest, last = [], []
    for app in apps:
        left = [m for m in app["models"] if f"{app['app_label']}.{m['object_name']}" not in placed]
        if left:
            (last if app["app_label"] in LAST_APPS else rest).append({**app, "models": left})
    return sections + rest + last
