"""``manage.py create_epg_client NAME`` (docs/interfaces.md §2): keys are shown once and stored hashed."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from epg_api.models import EpgClient

pytestmark = pytest.mark.django_db


def create(name: str) -> tuple[str, str]:
    """Run the command; return (its whole output, its last line)."""
    out = StringIO()
    call_command("create_epg_client", name, stdout=out)
    output = out.getvalue()
    return output, output.rstrip("\n").splitlines()[-1]


def test_the_last_line_is_the_key_alone_and_it_finds_the_client():
    output, key = create("Vendor A")

    assert key == key.strip() and " " not in key and len(key) >= 32
    client = EpgClient.objects.get()
    assert client.name == "Vendor A"
    assert EpgClient.objects.get_from_key(key) == client
    assert EpgClient.objects.is_valid(key)
    # Shown once: nowhere else in the output but its own line.
    assert output.count(key) == 1


def test_the_key_is_stored_hashed():
    _, key = create("Vendor A")
    prefix, _, secret = key.partition(".")
    assert prefix and secret

    row = EpgClient.objects.filter(name="Vendor A").values().get()
    for column, value in row.items():
        assert key not in str(value), column
        assert secret not in str(value), column


def test_each_run_makes_another_key():
    _, first = create("Vendor A")
    _, second = create("Vendor B")
    assert first != second
    assert EpgClient.objects.get_from_key(first).name == "Vendor A"
    assert EpgClient.objects.get_from_key(second).name == "Vendor B"


def test_a_wrong_key_with_a_right_prefix_is_refused():
    _, key = create("Vendor A")
    prefix, _, secret = key.partition(".")
    forged = f"{prefix}.{'A' * len(secret)}"
    with pytest.raises(EpgClient.DoesNotExist):
        EpgClient.objects.get_from_key(forged)
    assert not EpgClient.objects.is_valid(forged)


def test_a_revoked_clients_key_is_not_usable():
    _, key = create("Vendor A")
    client = EpgClient.objects.get_from_key(key)
    client.revoked = True
    client.save()

    with pytest.raises(EpgClient.DoesNotExist):
        EpgClient.objects.get_from_key(key)
    assert not EpgClient.objects.is_valid(key)


@pytest.mark.parametrize("name", ["", "   ", "x" * 51])
def test_an_empty_or_too_long_name_is_refused(name):
    with pytest.raises(CommandError):
        call_command("create_epg_client", name, stdout=StringIO())
    assert not EpgClient.objects.exists()


def test_a_name_of_fifty_characters_is_accepted():
    create("x" * 50)
    assert EpgClient.objects.get().name == "x" * 50
