"""Strings of Django's admin and of django-allauth that their own Simplified Chinese catalogs lack.

They are named here, never called, so that ``makemessages`` puts them in the project's catalog
(locale/zh_Hans), which Django reads before any app's (LOCALE_PATHS): the admin's index and the sign-in
pages then speak Chinese throughout. Each is written exactly as the library writes it.
"""

from django.utils.translation import gettext_noop

LIBRARY_STRINGS = [
    # django.contrib.admin (app_list.html: the headers of each app's table, read by screen readers).
    gettext_noop("Model name"),
    gettext_noop("Add link"),
    gettext_noop("Change or view list link"),
    # django.contrib.auth's user form (adding a user).
    gettext_noop("After you’ve created a user, you’ll be able to edit more user options."),
    # Names the libraries leave untranslated (plain strings), said where admin names them (permissions, content
    # types): rest_framework_api_key's app and model, allauth's authenticator.
    gettext_noop("API Key Permissions"),
    gettext_noop("API key"),
    gettext_noop("API keys"),
    gettext_noop("authenticator"),
    gettext_noop("authenticators"),
]
