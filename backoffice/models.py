"""The back office has no tables of its own: only how admin names another app's (a proxy, no table)."""

from __future__ import annotations

from allauth.mfa.models import Authenticator
from django.utils.translation import gettext_lazy as _


class StaffAuthenticator(Authenticator):
    """allauth's two-factor authenticators, named in the project's catalogs (allauth leaves them unnamed)."""

    class Meta:
        proxy = True
        verbose_name = _("two-factor authenticator")
        verbose_name_plural = _("two-factor authenticators")
