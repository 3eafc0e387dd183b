"""``django.contrib.admin`` with ``backoffice.site.IpvasAdminSite`` as ``admin.site`` (INSTALLED_APPS names this).

A module of its own: the app registry imports it before any model exists, and the site is loaded later.
"""

from django.contrib.admin.apps import AdminConfig


class IpvasAdminConfig(AdminConfig):
    default_site = "backoffice.site.IpvasAdminSite"
