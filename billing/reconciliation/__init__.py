"""The daily three-way reconciliation: the providers' statements and the SMP's list against our ledger.

``parsers`` read the three file formats line by line, ``importer`` stores a
file for a day in one transaction, ``fetch`` downloads the day's files (SDKs
in production, the simulators in the sandbox), ``compare`` merge-joins both
sides in key order, ``services.reconcile_day`` ties it together, ``export``
streams a run's items as CSV, ``admin`` shows it all.
"""
