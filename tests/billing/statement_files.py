"""The statement files of one day (2026-11-25) that the reconciliation tests import: one per source."""

from datetime import date
from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"
WECHAT_FILE = FIXTURES / "wechatpay_tradebill_ALL_2026-11-25.csv"
ALIPAY_FILE = FIXTURES / "alipay_20880000000000010156_20261125_business_detail.csv"
SMP_FILE = FIXTURES / "smp_provisioning_2026-11-25.csv"
DAY = date(2026, 11, 25)
