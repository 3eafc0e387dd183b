"""Staff's sign-in in admin: their two-factor authenticators (ipvas/mfa.py), seen, and deleted when a phone is
lost, so that the next sign-in sets up a new one (docs/operations.md, "Admin"); a secret is never shown.
allauth's e-mail addresses are not: staff sign in by user name, and no mail is sent."""

from __future__ import annotations

from typing import Any

from allauth.account.models import EmailAddress
from allauth.mfa.models import Authenticator
from django.apps import apps
from django.contrib import admin
from django.contrib.auth.admin import GroupAdmin, UserAdmin
from django.contrib.auth.models import Group, Permission, User
from django.contrib.contenttypes.models import ContentType
from django.http import HttpRequest
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from backoffice.models import StaffAuthenticator

admin.site.unregister(Authenticator)
admin.site.unregister(EmailAddress)
admin.site.unregister(User)
admin.site.unregister(Group)

ACTIONS = {"add": _("Can add %(name)s"), "change": _("Can change %(name)s"), "delete": _("Can delete %(name)s"),
           "view": _("Can view %(name)s")}  # fmt: skip


def content_type_label(content_type: ContentType | None) -> str:
    """ "app | model", each in the current language (a library's plain names through the catalogs too)."""
    if content_type is None:
        return "-"
    model = content_type.model_class()
    if model is None:
        return f"{content_type.app_label} | {content_type.model}"
    app = apps.get_app_config(content_type.app_label).verbose_name
    return f"{gettext(str(app))} | {gettext(str(model._meta.verbose_name))}"


def permission_label(permission: Permission) -> str:
    """What a permission allows, in the current language ("订单 | 订单 | 可以查看 订单"): Django keeps its name
    in English, as it was made when the app was installed."""
    action, _sep, _model = permission.codename.partition("_")
    model = permission.content_type.model_class()
    name = gettext(str(model._meta.verbose_name)) if model is not None else permission.content_type.model
    said = ACTIONS[action] % {"name": name} if action in ACTIONS else permission.name
    return f"{content_type_label(permission.content_type)} | {said}"


class PermissionsInWords:
    """The permission pickers of users and groups, each permission said in the current language."""

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        field = super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]
        if db_field.name in ("permissions", "user_permissions") and field is not None:
            field.label_from_instance = permission_label
        return field


@admin.register(User)
class StaffUserAdmin(PermissionsInWords, UserAdmin):
    pass


@admin.register(Group)
class StaffGroupAdmin(PermissionsInWords, GroupAdmin):
    pass


# What allauth calls each kind of authenticator, in the project's catalogs.
KINDS = {
    Authenticator.Type.TOTP: _("authenticator app (TOTP)"),
    Authenticator.Type.RECOVERY_CODES: _("recovery codes"),
    Authenticator.Type.WEBAUTHN: _("security key (WebAuthn)"),
}


class KindFilter(admin.SimpleListFilter):
    title = _("kind")
    parameter_name = "type"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, Any]]:
        return list(KINDS.items())

    def queryset(self, request: HttpRequest, queryset: Any) -> Any:
        return queryset.filter(type=self.value()) if self.value() in KINDS else queryset


@admin.register(StaffAuthenticator)
class StaffAuthenticatorAdmin(admin.ModelAdmin):
    list_display = ["staff_member", "kind", "set_up_at", "last_used"]
    list_filter = [KindFilter]
    search_fields = ["user__username"]
    list_select_related = ["user"]
    fields = ["staff_member", "kind", "set_up_at", "last_used"]
    readonly_fields = fields

    @admin.display(description=_("staff member"), ordering="user__username")
    def staff_member(self, authenticator: Authenticator) -> str:
        return authenticator.user.get_username()

    @admin.display(description=_("kind"), ordering="type")
    def kind(self, authenticator: Authenticator) -> str:
        return str(KINDS.get(authenticator.type, authenticator.type))

    @admin.display(description=_("set up at"), ordering="created_at")
    def set_up_at(self, authenticator: Authenticator) -> Any:
        return authenticator.created_at

    @admin.display(description=_("last used at"), ordering="last_used_at")
    def last_used(self, authenticator: Authenticator) -> Any:
        return authenticator.last_used_at or "-"

    # The permissions are allauth's model's: whoever could manage them before still can.
    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("mfa.view_authenticator") or request.user.has_perm("mfa.change_authenticator")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # set up by the staff member at sign-in, with their own phone

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("mfa.delete_authenticator")

    def has_module_permission(self, request: HttpRequest) -> bool:
        return self.has_view_permission(request)
