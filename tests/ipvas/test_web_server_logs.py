"""What the production web servers write of a request line (``dev.py prod``'s ``web_server_command``).

A clerk's search (``/crm/subscriptions/?phone=``), the previous page in the Referer, an SSO ``?ticket=``: our own
log lines mask them (ipvas.logs), but a web server writes its access log itself. Each server is started here as
``dev.py prod`` starts it, on a port of its own, and asked once.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import pytest
import requests

from dev import web_server_command
from tests.reliability.services import free_port, stop_group

ROOT = Path(__file__).resolve().parents[2]
PHONE, OTHER_PHONE = "13800138000", "13900139000"
TICKET = "eyJhbGciOiJSUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJjbGVyazAxIn0.c2lnbmF0dXJlLW9mLXRoZS1jcm0"


def serve_and_ask(tmp_path: Path, server: str, **env_changes: str) -> str:
    """The server's output after one clerk's search and one SSO sign-in, both refused (no session, no database)."""
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="ipvas.settings",
        IPVAS_VAR_DIR=str(tmp_path / "var"),
        IPVAS_WEB_SERVER=server,
        WEB_WORKERS="1",
        LOG_FORMAT="json",
        **env_changes,
    )
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = tmp_path / f"{server}.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            web_server_command(env, "127.0.0.1", str(port)),
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, log.read_text(errors="replace")[-3000:]
            try:
                requests.get(f"{url}/healthz/", timeout=10)
                break
            except requests.RequestException:
                assert time.monotonic() < deadline, f"{server} did not answer"
                time.sleep(0.2)
        search = requests.get(
            f"{url}/crm/subscriptions/",
            params={"phone": PHONE},
            headers={"Referer": f"{url}/crm/orders/?q={OTHER_PHONE}"},
            timeout=10,
        )
        assert search.status_code == 401
        assert requests.get(f"{url}/crm/orders/", params={"ticket": TICKET}, timeout=10).status_code == 401
        time.sleep(0.5)  # the access lines are written after the answer
    finally:
        stop_group(process, timeout=15)
    return log.read_text(errors="replace")


def access_lines(output: str) -> list[str]:
    """The request lines of an access log (``"GET /path HTTP/1.1" 401``), not Django's own lines."""
    return [line for line in output.splitlines() if '"GET /crm/' in line and 'HTTP/1.1" 401' in line]


def assert_nothing_of_the_customer(output: str) -> None:
    for secret in (PHONE, OTHER_PHONE, TICKET.split(".")[-1]):
        assert secret not in output, output[-3000:]


def test_gunicorns_access_lines_mask_a_mobile_number_and_a_ticket(tmp_path):
    output = serve_and_ask(tmp_path, "gunicorn")

    (line, _) = access_lines(output)
    assert_nothing_of_the_customer(output)
    assert f"phone={PHONE[:3]}****{PHONE[-4:]}" in line, line  # what was asked, masked as our own lines are
    assert "ticket=[redacted]" in output


@pytest.mark.parametrize("access_log", ["", "true"], ids=["as-started", "access-log-on"])
def test_granian_writes_no_query_string(tmp_path, access_log):
    """granian, the default, writes no access lines as dev.py starts it; an operator who turns them on
    (GRANIAN_LOG_ACCESS_ENABLED) gets granian's default format, the path without its query string. Its lines
    do not pass through ipvas.logs (they are granian's own format), hence this test."""
    output = serve_and_ask(tmp_path, "granian", GRANIAN_LOG_ACCESS_ENABLED=access_log or "false")

    assert len(access_lines(output)) == (2 if access_log else 0), output[-3000:]
    assert_nothing_of_the_customer(output)
