"""Alipay's open platform (precreate QR payments, RSA2; notifications verified in ``notify``).

``get_alipay()`` is the implementation ``ALIPAY_ADAPTER`` names: ``adapters.alipay.client.AlipayClient``
in production, the sandbox's simulator in the embedded set-up.
"""

from __future__ import annotations

from adapters.providers.types import PaymentProvider
from adapters.resolve import Adapter

get_alipay: Adapter[PaymentProvider] = Adapter("ALIPAY_ADAPTER")
