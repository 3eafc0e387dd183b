"""The real SMS gateway client (adapters.sms.http) against the simulated gateway served over HTTP by the
sandbox (``/sandbox/sms/api/``, docs/protocols.md): what it sends, once per reference, and each way the
gateway can fail. The live server runs in a thread of this process and reads settings at request time."""

from __future__ import annotations

import pytest

from adapters.sms import get_sms_gateway
from adapters.sms.http import HttpSmsGateway
from adapters.sms.types import SmsMessage, SmsUnavailable
from sandbox import faults
from sandbox.models import SimSmsMessage
from tests.epg_api.support import api, order_phone, settle, sms_reply

__all__ = ["api"]

TOKEN = "sms-gateway-token"


@pytest.fixture
def gateway_url(live_server, demo, settings) -> str:
    settings.SMS_GATEWAY_TOKEN = TOKEN
    return f"{live_server.url}/sandbox/sms/api"


@pytest.fixture
def gateway(gateway_url) -> HttpSmsGateway:
    return HttpSmsGateway(url=gateway_url, token=TOKEN, timeout=5)


def test_a_message_is_sent_once_per_reference(gateway):
    first = gateway.send(SmsMessage(to="13800000001", text="回复 Y 确认订购", reference="ipvas-sms-1"))
    again = gateway.send(SmsMessage(to="13800000001", text="回复 Y 确认订购", reference="ipvas-sms-1"))
    other = gateway.send(SmsMessage(to="13800000002", text="another", reference="ipvas-sms-2"))

    assert first == again != other
    sent = SimSmsMessage.objects.get(reference="ipvas-sms-1")
    assert (sent.gateway_id, sent.to, sent.text) == (first, "13800000001", "回复 Y 确认订购")
    assert SimSmsMessage.objects.count() == 2


def test_a_wrong_token_is_unavailable_and_sends_nothing(gateway_url):
    wrong = HttpSmsGateway(url=gateway_url, token="not-the-token", timeout=5)
    with pytest.raises(SmsUnavailable, match="HTTPError"):
        wrong.send(SmsMessage(to="13800000001", text="x", reference="ipvas-sms-3"))
    assert not SimSmsMessage.objects.exists()


def test_a_gateway_that_is_down_sends_nothing(gateway):
    faults.set_mode("sms", "down")
    with pytest.raises(SmsUnavailable, match="HTTPError"):
        gateway.send(SmsMessage(to="13800000001", text="x", reference="ipvas-sms-4"))
    assert not SimSmsMessage.objects.exists()


def test_a_slow_gateway_past_the_timeout_sent_the_message_and_a_retry_does_not_send_it_again(gateway_url, settings):
    settings.SIMULATOR_SLOW_SECONDS = 1.0
    faults.set_mode("sms", "slow")
    impatient = HttpSmsGateway(url=gateway_url, token=TOKEN, timeout=0.3)
    message = SmsMessage(to="13800000001", text="x", reference="ipvas-sms-5")
    with pytest.raises(SmsUnavailable, match="Timeout"):
        impatient.send(message)

    faults.set_mode("sms", "ok")
    assert impatient.send(message) == SimSmsMessage.objects.get(reference="ipvas-sms-5").gateway_id
    assert SimSmsMessage.objects.count() == 1


def test_an_unreachable_gateway_is_unavailable(demo):
    with pytest.raises(SmsUnavailable, match="ConnectionError"):
        HttpSmsGateway(url="http://127.0.0.1:9", token=TOKEN, timeout=5).send(
            SmsMessage(to="13800000001", text="x", reference="ipvas-sms-6")
        )


def test_an_order_confirmed_by_sms_through_the_real_client(api, gateway_url, settings):
    """SMS_ADAPTER names the HTTP client: the confirmation reaches the customer's phone through it."""
    settings.SMS_ADAPTER = "adapters.sms.http.HttpSmsGateway"
    settings.SMS_GATEWAY_URL = gateway_url
    assert isinstance(get_sms_gateway(), HttpSmsGateway)

    order = api.place()
    order = api.pay_with(order["order_no"], "phone_bill_sms")
    settle()  # the confirmation is sent
    asked = SimSmsMessage.objects.get(to=order_phone(order))
    assert asked.reference.startswith("ipvas-sms-")
    sms_reply(order_phone(order), "Y")
    settle()
    assert api.order(order["order_no"])["status"] == "completed"


@pytest.mark.parametrize("answer", [b"[]", b"null", b'"queued"', b'{"message_id": null}', b'{"message_id": ""}', b"{}"])
def test_a_2xx_without_a_message_id_is_not_taken_for_sent(answer):
    """docs/protocols.md: any answer but a 2xx with a message_id is "unavailable, try again" (a gateway behind
    a proxy answering 200 with something else, say): never a crash of the send task, never 'sent'."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):  # quiet
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        gateway = HttpSmsGateway(url=f"http://127.0.0.1:{server.server_port}", token="t", timeout=5)
        with pytest.raises(SmsUnavailable):
            gateway.send(SmsMessage(to="13800000001", text="x", reference="ipvas-sms-1"))
    finally:
        server.shutdown()
        server.server_close()
