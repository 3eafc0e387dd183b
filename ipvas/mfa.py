"""Admin's second factor, enforced (issue #11, item 4): ``ADMIN_REQUIRE_MFA``, on by default in production.

django-allauth's MFA asks for a TOTP code at sign-in only from users who have
set one up, and lets anyone skip setting it up. With ``ADMIN_REQUIRE_MFA`` a
staff user reaches ``/admin/`` only:

* after setting up TOTP: at the first sign-in they are sent to allauth's TOTP
  set-up page (which then shows their recovery codes, allauth's way back in
  when the phone is lost), and nowhere in admin until it is done;
* in a session that proved the second factor: signed in with a TOTP code or a
  recovery code (allauth records it in the session), or set TOTP up in this
  very session (the set-up asks for a valid code). A session that signed in
  before TOTP existed, or bypassed the sign-in, is sent to allauth's
  reauthentication with a code first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from allauth.account.authentication import get_authentication_records
from allauth.mfa.models import Authenticator
from allauth.mfa.signals import authenticator_added
from django.conf import settings
from django.contrib import messages
from django.dispatch import receiver
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.utils.http import urlencode
from django.utils.translation import gettext as _

ADMIN_PREFIX = "/admin/"
OPEN_IN_ADMIN = ("/admin/logout/",)
ENROLLED_IN_SESSION = "ipvas_mfa_enrolled"


def second_factor_proved(request: HttpRequest) -> bool:
    if request.session.get(ENROLLED_IN_SESSION) == str(request.user.pk):
        return True
    return any(record.get("method") == "mfa" for record in get_authentication_records(request, request.user))


@receiver(authenticator_added)
def _enrolled(sender: Any, request: HttpRequest | None = None, user: Any = None, **kwargs: Any) -> None:
    """Setting up TOTP takes a valid code: that session has proved the second factor."""
    if request is not None and user is not None and hasattr(request, "session"):
        request.session[ENROLLED_IN_SESSION] = str(user.pk)


class AdminSecondFactorMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if (
            settings.ADMIN_REQUIRE_MFA
            and request.path.startswith(ADMIN_PREFIX)
            and not request.path.startswith(OPEN_IN_ADMIN)
            and request.user.is_authenticated
            and request.user.is_staff
        ):
            refusal = self.refusal(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def refusal(self, request: HttpRequest) -> HttpResponse | None:
        user = request.user
        if not Authenticator.objects.filter(user=user, type=Authenticator.Type.TOTP).exists():
            messages.warning(request, _("Admin needs two-factor authentication: set up an authenticator app first."))
            return HttpResponseRedirect(reverse("mfa_activate_totp"))
        if not second_factor_proved(request):
            messages.info(request, _("Enter a code from your authenticator app to continue to admin."))
            query = urlencode({"next": request.get_full_path()})
            return HttpResponseRedirect(f"{reverse('mfa_reauthenticate')}?{query}")
        return None
