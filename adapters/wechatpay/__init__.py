"""WeChat Pay API v3 (Native QR payments; notifications verified in ``notify``).

``get_wechatpay()`` is the implementation ``WECHATPAY_ADAPTER`` names: ``adapters.wechatpay.client.WechatPayClient``
in production, the sandbox's simulator in the embedded set-up.
"""

from __future__ import annotations

from adapters.providers.types import PaymentProvider
from adapters.resolve import Adapter

get_wechatpay: Adapter[PaymentProvider] = Adapter("WECHATPAY_ADAPTER")
