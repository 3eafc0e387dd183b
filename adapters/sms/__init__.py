"""The SMS gateway: confirmations and notices out (MT); replies (MO) arrive at callbacks.

``get_sms_gateway()`` is the implementation ``SMS_ADAPTER`` names: ``adapters.sms.http.HttpSmsGateway``
in production, the sandbox's simulator in the embedded set-up.
"""

from __future__ import annotations

from adapters.resolve import Adapter
from adapters.sms.types import SmsGateway, SmsMessage, SmsUnavailable

__all__ = ["SmsGateway", "SmsMessage", "SmsUnavailable", "get_sms_gateway"]

get_sms_gateway: Adapter[SmsGateway] = Adapter("SMS_ADAPTER")
