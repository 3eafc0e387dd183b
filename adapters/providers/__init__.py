"""The payment providers, WeChat Pay and Alipay, behind one protocol (``types.PaymentProvider``: QR codes
and the counter's payment codes).

Each has its own adapter package (``adapters.wechatpay``, ``adapters.alipay``)
and its own setting; ``get_provider(name)`` picks by the name a payment row
keeps ("wechatpay", "alipay").
"""

from __future__ import annotations

from adapters.alipay import get_alipay
from adapters.providers.types import PaymentProvider
from adapters.wechatpay import get_wechatpay


def get_provider(name: str) -> PaymentProvider:
    if name == "wechatpay":
        return get_wechatpay()
    if name == "alipay":
        return get_alipay()
    raise ValueError(f"no payment provider {name!r}")
