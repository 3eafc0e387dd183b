"""The back office: Django admin for products, orders, money, reconciliation and the work queue,
and the sales dashboard. A channel like the clerk's pages: it calls the lifecycle and reads the rest.
"""
