from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import transaction
from django.utils import timezone

from epg_api.models import EpgClient

DEFAULT_DAYS = 7


def key_to_rotate(name_or_prefix: str) -> EpgClient:
    """The key named by its prefix, or the client of that name (its first key); CommandError for none or two."""
    found = EpgClient.objects.filter(prefix=name_or_prefix).first()
    if found is not None:
        return found
    clients = list(EpgClient.objects.filter(name=name_or_prefix, acts_for=None).order_by("created"))
    if not clients:
        raise CommandError(f"No EPG client named {name_or_prefix!r} and no key with that prefix.")
    if len(clients) > 1:
        prefixes = ", ".join(client.prefix for client in clients)
        raise CommandError(f"{len(clients)} EPG clients are named {name_or_prefix!r}: name one by prefix ({prefixes}).")
    return clients[0]


class Command(BaseCommand):
    help = (
        "Issue a new API key for an EPG client (named by its name or by a key's prefix) and print it, alone on "
        "the last line (shown only once). The new key reaches the client's orders, Idempotency-Keys and TV "
        "sessions; the old key (named by prefix: that key; by name: each key of the client still usable) then "
        "expires in --old-expires-in-days days."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("client", help="the client's name, or the prefix of the key to replace")
        parser.add_argument(
            "--old-expires-in-days",
            type=int,
            default=DEFAULT_DAYS,
            help=f"days the old key keeps working, for the vendor to switch (default {DEFAULT_DAYS}; 0: now)",
        )

    def handle(self, *args: Any, client: str, old_expires_in_days: int, **options: Any) -> None:
        if old_expires_in_days < 0:
            raise CommandError("--old-expires-in-days must be 0 or more.")
        named = key_to_rotate(client.strip())
        by_prefix = named.prefix == client.strip()
        expires_at = timezone.now() + timedelta(days=old_expires_in_days)
        with transaction.atomic():
            old_keys = [named] if by_prefix else [k for k in named.client_keys() if k.usable]
            new, key = named.issue_key()
            for old in old_keys:
                old.expire_by(expires_at)
        first = new.acts_for
        self.stdout.write(f"New key for EPG client {first.name!r} (first key {first.prefix}): prefix {new.prefix}.")
        for old in old_keys:
            if old.revoked:
                self.stdout.write(f"Key {old.prefix} was revoked already.")
            else:
                self.stdout.write(
                    f"Key {old.prefix} expires at {timezone.localtime(old.expiry_date):%Y-%m-%d %H:%M %Z}."
                )
        self.stdout.write("Use it as 'Authorization: Api-Key <key>'. The key is shown only now:")
        self.stdout.write(key)
