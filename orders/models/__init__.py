from orders.models.entitlement import Entitlement
from orders.models.order import Order, OrderEvent
from orders.models.pin import PinEventAction, PurchasePin, PurchasePinEvent
from orders.models.product import Product
from orders.models.subscription import Subscription, SubscriptionEvent, SubscriptionNotice

__all__ = [
    "Entitlement",
    "Order",
    "OrderEvent",
    "PinEventAction",
    "Product",
    "PurchasePin",
    "PurchasePinEvent",
    "Subscription",
    "SubscriptionEvent",
    "SubscriptionNotice",
]
