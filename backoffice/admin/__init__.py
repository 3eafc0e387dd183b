"""The back office's admin: every ModelAdmin of orders and billing, with the actions staff take.

Django's admin.autodiscover() imports ``backoffice.admin``; these modules register.
"""

from backoffice.admin import billing, orders, pins, reconciliation, staff, subscriptions  # noqa: F401 - each registers its models
