"""History is written once: models whose rows are never updated or deleted."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models


class AppendOnlyQuerySet(models.QuerySet):
    """No bulk update, no bulk delete, no bulk_update."""

    def update(self, **kwargs: Any) -> int:
        raise ValidationError(f"{self.model.__name__} rows are append-only")

    def delete(self) -> tuple[int, dict[str, int]]:
        raise ValidationError(f"{self.model.__name__} rows are append-only")

    def bulk_update(self, objs: Any, fields: Any, batch_size: int | None = None) -> int:
        raise ValidationError(f"{self.model.__name__} rows are append-only")


class AppendOnlyModel(models.Model):
    """A row is saved once; saving it again or deleting it is refused."""

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        abstract = True

    def save(self, *args: Any, **kwargs: Any) -> None:
        if self.pk is not None and not self._state.adding:
            raise ValidationError(f"{type(self).__name__} rows are append-only")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        raise ValidationError(f"{type(self).__name__} rows are append-only")
