"""The service layer of ordering: every change to an order goes through here."""

from orders.services.due import deadlines_sweep, order_process_due
from orders.services.placing import order_create, product_for_sale
from orders.services.transitions import lock_order, record_event, transit

__all__ = [
    "deadlines_sweep",
    "lock_order",
    "order_create",
    "order_process_due",
    "product_for_sale",
    "record_event",
    "transit",
]
