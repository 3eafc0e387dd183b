from orders.models.entitlement import Entitlement
from orders.models.order import Order, OrderEvent
from orders.models.product import Product

__all__ = ["Entitlement", "Order", "OrderEvent", "Product"]
