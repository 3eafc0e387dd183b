"""Sales reports for admin: selectors over the ledger and the orders, SVG charts, the dashboard and CSV export."""
