"""Examples shown in the interactive docs (/api/epg/v1/docs/)."""

from drf_spectacular.utils import OpenApiExample

_PRODUCT = {
    "code": "VIP-MONTH",
    "name": "VIP 影视会员 · 包月",
    "kind": "monthly",
    "price_fen": 2500,
    "currency": "CNY",
    "period_months": 1,
    "view_hours": None,
    "description": "全部 VIP 影片与剧集，畅看一个月。",
    "payment_methods": ["wechat_qr", "alipay_qr", "phone_bill", "phone_bill_sms"],
    "renewable": True,
}
PRODUCTS = OpenApiExample(
    "Products",
    value={
        "results": [
            {
                **_PRODUCT,
                "code": "PPV-MOVIE",
                "name": "单片点播 · 电影",
                "kind": "per_view",
                "price_fen": 500,
                "period_months": None,
                "view_hours": 48,
                "description": "单部影片，购买后 48 小时内可反复观看。",
                "renewable": False,
            },
            _PRODUCT,
        ]
    },
    response_only=True,
)

ORDER_CREATE = OpenApiExample(
    "A monthly product", value={"tv_account": "tv1001", "product_code": "VIP-MONTH"}, request_only=True
)
ORDER_CREATE_AUTO_RENEW = OpenApiExample(
    "Monthly, renewing automatically (the customer chose it)",
    value={"tv_account": "tv1001", "product_code": "VIP-MONTH", "auto_renew": True},
    request_only=True,
)
PAYMENT_CHOOSE = OpenApiExample("WeChat Pay QR", value={"method": "wechat_qr"}, request_only=True)

_ORDER = {
    "order_no": "20261125120000Ab3dE5fG7h",
    "channel": "epg",
    "tv_account": "tv1001",
    "phone_masked": None,
    "product": {"code": "VIP-MONTH", "name": "VIP 影视会员 · 包月", "kind": "monthly", "price_fen": 2500},
    "content_id": None,
    "amount_fen": 2500,
    "status": "prechecking",
    "payment_methods": [],
    "payment": None,
    "failure": None,
    "entitlement": None,
    "auto_renew": False,
    "subscription_no": None,
    "created_at": "2026-11-25T12:00:00+08:00",
    "updated_at": "2026-11-25T12:00:00+08:00",
}
ORDER_PRECHECKING = OpenApiExample("Just created", value=_ORDER, response_only=True)
ORDER_QR = OpenApiExample(
    "Waiting for a WeChat Pay scan",
    value={
        **_ORDER,
        "phone_masked": "138****0001",
        "status": "payment_pending",
        "payment": {
            "method": "wechat_qr",
            "out_trade_no": "20261125120000Ab3dE5fG7h",
            "qr_code_url": "weixin://wxpay/bizpayurl?pr=Kq3Zb8x",
            "qr_image_url": "/api/epg/v1/orders/20261125120000Ab3dE5fG7h/qr.png",
            "expires_at": "2026-11-25T12:03:05+08:00",
        },
    },
    response_only=True,
)
ORDER_COMPLETED = OpenApiExample(
    "Completed",
    value={
        **_ORDER,
        "phone_masked": "138****0001",
        "status": "completed",
        "payment": {
            "method": "phone_bill",
            "out_trade_no": None,
            "qr_code_url": None,
            "qr_image_url": None,
            "expires_at": None,
        },
        "entitlement": {
            "product_code": "VIP-MONTH",
            "starts_at": "2026-11-25T12:00:02+08:00",
            "ends_at": "2026-12-25T12:00:02+08:00",
            "content_id": None,
        },
    },
    response_only=True,
)
ORDER_REJECTED = OpenApiExample(
    "Rejected by the pre-check",
    value={
        **_ORDER,
        "tv_account": "tv1003",
        "status": "rejected",
        "failure": {"code": "account_suspended", "message": "该电视账号已停机。"},
    },
    response_only=True,
)
ENTITLEMENTS = OpenApiExample(
    "Entitled",
    value={
        "tv_account": "tv1001",
        "entitled": True,
        "entitlements": [
            {
                "product_code": "VIP-MONTH",
                "kind": "monthly",
                "starts_at": "2026-11-25T12:00:02+08:00",
                "ends_at": "2026-12-25T12:00:02+08:00",
                "content_id": None,
            }
        ],
    },
    response_only=True,
)

_SUBSCRIPTION = {
    "subscription_no": "20261125120003Kq7Lm2Np4R",
    "tv_account": "tv1001",
    "phone_masked": "138****0001",
    "product": {"code": "VIP-MONTH", "name": "VIP 影视会员 · 包月", "kind": "monthly", "price_fen": 2500},
    "status": "active",
    "payment_method": "phone_bill",
    "renewal_price_fen": 2500,
    "current_period_end": "2027-01-25T12:00:02+08:00",
    "next_reminder_at": "2027-01-19T12:00:02+08:00",
    "reminder_sent_at": None,
    "next_renewal_at": "2027-01-24T12:00:02+08:00",
    "renewals": [
        {
            "order_no": "20261224120002Zx8Cv6Bn5M",
            "status": "completed",
            "amount_fen": 2500,
            "failure": None,
            "period_start": "2026-12-25T12:00:02+08:00",
            "period_end": "2027-01-25T12:00:02+08:00",
            "created_at": "2026-12-24T12:00:02+08:00",
        }
    ],
    "consent": {"channel": "epg", "method": "phone_bill", "at": "2026-11-25T12:00:00+08:00"},
    "cancelled_at": None,
    "cancel_channel": None,
    "created_at": "2026-11-25T12:00:03+08:00",
}
SUBSCRIPTION = OpenApiExample("Active, renewed once", value=_SUBSCRIPTION, response_only=True)
SUBSCRIPTIONS = OpenApiExample("A TV account's subscriptions", value={"results": [_SUBSCRIPTION]}, response_only=True)
