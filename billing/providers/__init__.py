"""The QR payment providers: ``get_provider(name)`` returns the implementation settings choose."""

from __future__ import annotations

from django.conf import settings

from billing.providers.types import QrPaymentProvider
from orders.constants import PaymentMethod

PROVIDER_FOR_METHOD = {PaymentMethod.WECHAT_QR: "wechatpay", PaymentMethod.ALIPAY_QR: "alipay"}


def get_provider(name: str) -> QrPaymentProvider:
    if name == "wechatpay" and settings.WECHATPAY_ADAPTER == "sdk":
        from billing.providers.wechatpay.client import WechatPayClient

        return WechatPayClient()
    if name == "alipay" and settings.ALIPAY_ADAPTER == "sdk":
        from billing.providers.alipay.client import AlipayClient

        return AlipayClient()
    if name not in ("wechatpay", "alipay"):
        raise ValueError(f"no QR payment provider {name!r}")
    from billing.providers.simulator import SimulatedProvider

    return SimulatedProvider(name)
