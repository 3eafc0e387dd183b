"""A refused statement file is said in the reader's language (billing.reconciliation.refusals).

The upload page says why a file is refused in the admin's language (Simplified Chinese or English), naming
the line, and nothing of the upload is imported. A fetched file that is refused is kept on its run as a
message code with its facts, not as text: whichever language imported it, each reader reads it in theirs,
on the run's page, in the message after an upload and on the discrepancy it opens; the log and the run's
stored notes say it in English. Every message has its Chinese.
"""

from __future__ import annotations

import html
import io
import logging
import re
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import CommandError, call_command
from django.test import Client
from django.utils import translation

from billing.models import Discrepancy, ReconciliationRun, Statement, StatementLine
from billing.reconciliation import importer, refusals
from billing.reconciliation.services import reconcile_day
from sandbox import statements as sandbox_statements
from tests.billing.statement_files import ALIPAY_FILE, DAY, SMP_FILE, WECHAT_FILE

pytestmark = pytest.mark.django_db

UPLOAD = "/admin/billing/reconciliationrun/upload/"
ZH = {"HTTP_ACCEPT_LANGUAGE": "zh-hans"}
EN = {"HTTP_ACCEPT_LANGUAGE": "en"}


def text_of(page: bytes) -> str:
    return re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", " ", page.decode()))).strip()


def edit(path: Path, line_no: int, old: str, new: str, encoding: str = "utf-8") -> bytes:
    lines = path.read_bytes().decode(encoding).split("\r\n")
    assert old in lines[line_no - 1], (old, lines[line_no - 1])
    lines[line_no - 1] = lines[line_no - 1].replace(old, new, 1)
    return "\r\n".join(lines).encode(encoding)


def cut_short(path: Path, lines: int) -> bytes:
    return b"\r\n".join(path.read_bytes().split(b"\r\n")[:lines])


@pytest.fixture
def staff(db, django_user_model) -> Client:
    client = Client()
    client.force_login(django_user_model.objects.create_superuser("finance", "finance@example.com", "pw"))
    return client


# (source, the file, why in Chinese, why in English): one cut short, a bad amount, an unknown 交易状态 and
# Alipay's wrong title line. (An empty file never reaches the importer from this page: the form refuses it.)
BAD_FILES = [
    pytest.param(
        "wechatpay",
        cut_short(WECHAT_FILE, 4),
        "第 4 行：文件在汇总行（总交易单数,…）之前就结束了：文件是否不完整？",
        "line 4: the file ends without its summary (总交易单数,…): cut short?",
        id="cut-short",
    ),
    pytest.param(
        "wechatpay",
        edit(WECHAT_FILE, 3, "`68.00,", "`6 8.00,"),
        "第 3 行：订单金额 '6 8.00' 不是以元为单位的金额",
        "line 3: 订单金额 '6 8.00' is not an amount in yuan",
        id="bad-amount",
    ),
    pytest.param(
        "wechatpay",
        edit(WECHAT_FILE, 4, "`REFUND,", "`CLOSED,"),
        "第 4 行：交易状态 'CLOSED' 不是 SUCCESS、REFUND、REVOKED 之一",
        "line 4: 交易状态 'CLOSED' is none of SUCCESS, REFUND, REVOKED",
        id="unknown-status",
    ),
    pytest.param(
        "alipay",
        edit(ALIPAY_FILE, 1, "#支付宝业务明细查询", "#支付宝账务明细查询", "gbk"),
        "第 1 行：不是支付宝业务明细对账单（…_业务明细.csv）：第一行应为 '#支付宝业务明细查询'，"
        "而不是 '#支付宝账务明细查询'",
        "line 1: not an Alipay business-detail statement (…_业务明细.csv): the first line should be "
        "'#支付宝业务明细查询', not '#支付宝账务明细查询'",
        id="alipay-title",
    ),
]


@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_command_says_why_an_empty_file_is_refused_in_the_process_language(tmp_path, time_machine, language):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    empty = tmp_path / "bill.csv"
    empty.write_bytes(b"")
    said = {
        "zh-hans": "--wechatpay {}: 文件是空的：不是微信支付交易账单；未导入任何内容",
        "en": "--wechatpay {}: the file is empty: not a WeChat Pay trade bill; nothing was imported",
    }[language].format(empty)
    with translation.override(language), pytest.raises(CommandError) as caught:
        call_command("reconcile", "--date", "2026-11-25", "--wechatpay", str(empty), "--no-fetch", stdout=io.StringIO())
    assert str(caught.value) == said
    assert not Statement.objects.exists() and not ReconciliationRun.objects.exists()


@pytest.mark.parametrize(("source", "content", "chinese", "english"), BAD_FILES)
@pytest.mark.parametrize("language", ["zh-hans", "en"])
def test_the_upload_page_says_why_a_file_is_refused_in_the_admins_language(
    staff, time_machine, monkeypatch, source, content, chinese, english, language
):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    monkeypatch.setattr(importer, "BATCH", 1)  # the rows before the bad one are written, then rolled back
    bad = io.BytesIO(content)
    bad.name = "bad.csv"
    with SMP_FILE.open("rb") as smp:  # a good file beside it, not imported either
        response = staff.post(UPLOAD, {"day": "2026-11-25", source: bad, "smp": smp}, HTTP_ACCEPT_LANGUAGE=language)
    assert response.status_code == 200
    page = text_of(response.content)
    said, other = (chinese, english) if language == "zh-hans" else (english, chinese)
    assert said in page
    assert other not in page
    assert not Statement.objects.exists() and not StatementLine.objects.exists(), "half imported"
    assert not ReconciliationRun.objects.exists()


def test_a_fetched_file_refused_is_read_in_each_readers_language_whichever_imported_it(
    demo, staff, time_machine, monkeypatch, caplog
):
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    bad = edit(WECHAT_FILE, 3, "`68.00,", "`6 8.00,")
    monkeypatch.setitem(sandbox_statements.WRITERS, "wechatpay", lambda day, out: out.write(bad))
    # An admin reading Chinese uploads nothing and fetches the day's statements: WeChat Pay's is refused.
    with caplog.at_level(logging.ERROR, logger="billing.reconciliation.services"):
        response = staff.post(UPLOAD, {"day": "2026-11-25", "fetch": "on"}, follow=True, **ZH)
    [said] = [str(message) for message in response.context["messages"]]
    assert "微信支付交易账单：下载的文件无法导入（第 3 行：订单金额 '6 8.00' 不是以元为单位的金额）。" in said
    run = ReconciliationRun.objects.get(day=DAY)
    assert run.wechatpay_state == "refused"
    assert run.refusals == {"wechatpay": [3, "not_yuan", {"column": "订单金额", "value": "'6 8.00'"}]}
    # The log and the stored notes say it in English, whatever the language of the request.
    assert "the fetched wechatpay was refused: line 3: 订单金额 '6 8.00' is not an amount in yuan" in caplog.text
    assert "wechatpay: the fetched file was refused (line 3: 订单金额 '6 8.00' is not an amount in yuan)" in run.notes
    # Read in English, it is English; in Chinese, Chinese.
    page = f"/admin/billing/reconciliationrun/{run.pk}/change/"
    english = text_of(staff.get(page, **EN).content)
    assert (
        "WeChat Pay trade bill: the fetched file was refused (line 3: 订单金额 '6 8.00' is not an amount in yuan)."
        in english
    )
    assert "不是以元为单位的金额" not in english
    chinese = text_of(staff.get(page, **ZH).content)
    assert "微信支付交易账单：下载的文件无法导入（第 3 行：订单金额 '6 8.00' 不是以元为单位的金额）。" in chinese
    # The discrepancy the refused source opened says why, in each reader's language.
    (missing,) = Discrepancy.objects.filter(source="wechatpay")
    assert missing.outcome == "not_compared"
    listing = "/admin/billing/discrepancy/"
    assert "下载的文件无法导入：第 3 行：订单金额 '6 8.00' 不是以元为单位的金额" in text_of(
        staff.get(listing, **ZH).content
    )
    assert "The fetched file was refused: line 3: 订单金额 '6 8.00' is not an amount in yuan" in text_of(
        staff.get(listing, **EN).content
    )
    # Run again by a process speaking English: the same record, read in Chinese as before.
    with translation.override("en"):
        again = reconcile_day(DAY, triggered_by="admin:finance")
    assert again.refusals == run.refusals
    assert "第 3 行：订单金额 '6 8.00' 不是以元为单位的金额" in text_of(
        staff.get(f"/admin/billing/reconciliationrun/{again.pk}/change/", **ZH).content
    )


def test_a_run_recorded_before_the_refusals_were_kept_shows_its_note_as_written(staff, time_machine):
    """Runs of the release before keep the refusal in their English note alone: shown as it is."""
    time_machine.move_to("2026-11-26 09:00:00+08:00", tick=True)
    note = "smp: the fetched file was refused (line 1: not an SMP provisioning list: the first line should be …)"
    run = ReconciliationRun.objects.create(day=DAY, started_at=datetime.now(ZoneInfo("UTC")), notes=note)
    page = text_of(staff.get(f"/admin/billing/reconciliationrun/{run.pk}/change/", **ZH).content)
    assert "业管平台开通清单：下载的文件无法导入（line 1: not an SMP provisioning list" in page


def test_every_refusal_has_its_chinese_with_the_same_placeholders():
    messages = {**refusals.MESSAGES, **{f"what:{source}": what for source, what in refusals.WHAT.items()}}
    for code, message in messages.items():
        with translation.override("en"):
            english = str(message)
        with translation.override("zh-hans"):
            chinese = str(message)
        assert chinese != english, f"{code}: no Chinese"
        assert sorted(re.findall(r"%\(\w+\)s", chinese)) == sorted(re.findall(r"%\(\w+\)s", english)), code


def test_every_code_raised_is_a_message():
    """A code is checked when raised; this finds a wrong one on a path no other test takes."""
    root = Path(__file__).resolve().parents[2] / "billing" / "reconciliation"
    raised, named = set(), set()
    for name in ("parsers.py", "importer.py"):
        text = (root / name).read_text()
        raised |= set(re.findall(r'StatementError\(\s*[^,()]+(?:\([^()]*\))?,\s*"(\w+)"', text))
        named |= set(re.findall(r'"(\w+)"', text))
    assert len(raised) > 45
    assert raised <= set(refusals.MESSAGES), raised - set(refusals.MESSAGES)
    assert set(refusals.MESSAGES) <= named, set(refusals.MESSAGES) - named  # none left unused
