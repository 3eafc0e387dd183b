"""The daily three-way reconciliation: the providers' statements and the SMP's list against our ledger.

``parsers`` read the three file formats line by line (``refusals`` says why
one is refused, in the reader's language), ``importer`` stores a
file for a day in one transaction, ``fetch`` downloads the day's files (SDKs
in production, the simulators in the sandbox), ``compare`` holds what the
comparisons share (the merge-join in key order, the item writer, the days
around midnight), ``providers`` compares WeChat Pay and Alipay, ``smp`` the
SMP's subscriptions and unsubscriptions, ``details`` renders what explains an
item in the reader's language, ``discrepancies`` turns what differs into work
for a person, ``services.reconcile_day`` ties it together, ``selectors`` reads
it for the dashboard; backoffice.admin shows it all and exports it as CSV.
"""
