"""Every action an order's or a subscription's history records has a label in both languages (issue #12, item 6),
and the system's own notes are said in the reader's language (backoffice.reasons).

The actions are found where they are written: the transitions of the models (django-fsm) and the names the
lifecycle passes to ``record_event``, ``order_note`` and ``subscriptions.record``; a new one without a label
fails here rather than showing as a code in admin.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.utils import translation

from backoffice.reasons import NOTES, note_text
from orders.events import ORDER_ACTIONS, SUBSCRIPTION_ACTIONS
from orders.models import Order, Subscription

ROOT = Path(__file__).resolve().parents[2]
LIFECYCLE = sorted((ROOT / "lifecycle").glob("*.py"))


def transitions(model: type) -> set[str]:
    return {name for name, member in vars(model).items() if hasattr(member, "_django_fsm")}


def written(pattern: str) -> set[str]:
    found: set[str] = set()
    for path in LIFECYCLE:
        found |= set(re.findall(pattern, path.read_text()))
    return found


def order_actions() -> set[str]:
    notes = written(r'record_event\(\s*\w+,\s*"([a-z_]+)"') | written(r'order_note\(\s*\w+,\s*"([a-z_]+)"')
    work = {f"work_{action}" for action in written(r'_close\([^)]*action="([a-z_]+)"')}
    work |= {f"work_{a}" for a in written(r'action="cash_paid_back" if cash_paid_back else "([a-z_]+)"')}
    work |= {f"work_{a}" for a in written(r'action="([a-z_]+)" if cash_paid_back')}
    return transitions(Order) | notes | work


def subscription_actions() -> set[str]:
    notes = written(r'(?:subscriptions\.)?record\(\s*\w+,\s*"([a-z_]+)"')
    notes |= written(r'subscriptions\.record\(\s*\w+,\s*\n?\s*"([a-z_]+)"')
    return transitions(Subscription) | notes


def test_the_search_finds_the_actions_it_should():
    assert {"precheck_passed", "complete", "cancel_renewal", "create", "retry", "refund_requested"} <= order_actions()
    assert {"work_resolved", "work_cash_paid_back", "work_retried_refund"} <= order_actions()
    assert {"cancel", "lapse", "end", "start", "renewed", "reminder_sent"} <= subscription_actions()


@pytest.mark.parametrize(
    ("actions", "labels"),
    [(order_actions, ORDER_ACTIONS), (subscription_actions, SUBSCRIPTION_ACTIONS)],
    ids=["order", "subscription"],
)
def test_every_action_has_a_label_in_both_languages(actions, labels):
    missing = sorted(actions() - set(labels))
    assert missing == [], f"no label for {missing}: add them to orders/events.py"
    for action, label in labels.items():
        with translation.override("en"):
            english = str(label)
        with translation.override("zh-hans"):
            chinese = str(label)
        assert english != action and english[0].isupper(), (action, english)
        assert any("\u4e00" <= c <= "\u9fff" for c in chinese), (action, chinese)


@pytest.mark.parametrize(
    ("note", "said"),
    [
        ("QR code shown (wechatpay 20261205100800ABCDEF)", "已展示付款二维码（微信支付，20261205100800ABCDEF）。"),
        ("no payment method chosen in 900 s", "900 秒内未选择支付方式。"),
        (
            "the SMP refused the phone-bill charge: insufficient_balance",
            "业管平台拒绝话费扣款：话费余额不足，无法订购该产品。",
        ),
        ("paid twice: order was completed", "重复支付（订单当时为“已完成”），款项将退回。"),
        ("refund by admin:root: 顾客误购", "由管理员 root 发起退款：顾客误购"),
        ("wechatpay: not imported, not fetched", "微信支付交易账单：未导入，也未自动下载。"),
        (
            "20261125120000xickHemvt1F1: no answer from wechatpay after 12 tries; asked again every 5 minutes until"
            " it answers",
            "退款 20261125120000xickHemvt1F1：微信支付已 12 次未应答；系统每 5 分钟再问一次，直到应答为止。",
        ),
        (
            "period 2 was paid since by renewal order 20270104181500u7gnz5epQM, which the SMP answered with the "
            "period's one charge: nothing of this order is to be reversed",
            "第 2 期已由续费订单 20270104181500u7gnz5epQM 支付：业管平台每期只扣一次费，并以这笔扣费应答了该订单；"
            "本订单没有需要冲正的款项。",
        ),
        (
            "a deduction went back and Alipay's agreed deduction day does not move back: it allows the next "
            "deduction from 2027-02-02, after the paid period ends",
            "一笔扣款已退回，而支付宝的约定扣款日不能提前：下次最早 2027-02-02 才能扣款，晚于已付费期的结束。",
        ),
        ("a note in the words staff typed", "a note in the words staff typed"),
    ],
)
def test_the_systems_notes_are_said_in_the_readers_language(note, said):
    with translation.override("zh-hans"):
        assert note_text(note) == said


def test_every_note_pattern_has_a_chinese_wording():
    for _pattern, said in NOTES:
        with translation.override("zh-hans"):
            chinese = str(said)
        assert chinese == "%(code)s" or any("\u4e00" <= c <= "\u9fff" for c in chinese), chinese
