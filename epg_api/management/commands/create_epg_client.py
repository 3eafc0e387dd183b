from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from epg_api.models import EpgClient


class Command(BaseCommand):
    help = "Create an EPG client and print its API key, alone on the last line (shown only once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("name", help="who the key is for, e.g. 'Huawei EPG Ningxia'")

    def handle(self, *args: Any, name: str, **options: Any) -> None:
        name = name.strip()
        if not name or len(name) > 50:
            raise CommandError("NAME must be 1-50 characters.")
        client, key = EpgClient.objects.create_key(name=name)
        self.stdout.write(f"Created EPG client {client.name!r} (prefix {client.prefix}).")
        self.stdout.write("Use it as 'Authorization: Api-Key <key>'. The key is shown only now:")
        self.stdout.write(key)
