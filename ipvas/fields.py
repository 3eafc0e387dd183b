"""Model fields shared by the apps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.utils.translation import gettext_lazy as _


class ChoiceListField(models.JSONField):
    """A list of distinct choices, stored as JSON and edited as check boxes.

    Used for a product's channels and payment methods: a handful of values,
    read whole, never queried by element (which SQLite's JSON cannot do).
    """

    def __init__(self, *args: Any, choices_enum: type[models.TextChoices] | None = None, **kwargs: Any):
        self.choices_enum = choices_enum
        kwargs.setdefault("default", list)
        super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, list[Any], dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        kwargs["choices_enum"] = self.choices_enum
        return name, path, args, kwargs

    def validate(self, value: Any, model_instance: models.Model | None) -> None:
        super().validate(value, model_instance)
        if not isinstance(value, list):
            raise ValidationError(_("Must be a list."), code="invalid")
        allowed = {c.value for c in self.choices_enum} if self.choices_enum else None
        if allowed is not None:
            unknown = [v for v in value if v not in allowed]
            if unknown:
                raise ValidationError(
                    _("Unknown values: %(values)s"), code="invalid", params={"values": ", ".join(map(str, unknown))}
                )
        if len(set(value)) != len(value):
            raise ValidationError(_("Values must not repeat."), code="invalid")

    def formfield(self, **kwargs: Any) -> forms.Field:
        if self.choices_enum is None:
            return super().formfield(**kwargs)
        return forms.TypedMultipleChoiceField(
            choices=self.choices_enum.choices,
            widget=forms.CheckboxSelectMultiple,
            required=not self.blank,
            label=self.verbose_name,
            help_text=self.help_text,
        )
