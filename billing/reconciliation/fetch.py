"""Getting a day's statements: from the providers and the SMP in production, from the simulators in the sandbox.

* WeChat Pay: ``GET /v3/bill/tradebill`` (SDK ``trade_bill``, ``bill_type=ALL``,
  gzip), then the file from its ``download_url`` (SDK ``download_bill``); its
  SHA-1 (of the unzipped bill) is checked against ``hash_value``.
* Alipay: ``alipay.data.dataservice.bill.downloadurl.query`` (SDK
  ``server_api``, ``bill_type=trade``) gives a short-lived URL of a zip; its
  ``…_业务明细.csv`` member (not the 汇总 one) is the statement, GBK.
* The SMP: ``GET {SMP_URL}/provisioning-list?date=YYYY-MM-DD`` (docs/protocols.md).

Which one is used follows the adapter settings: the simulators' statements
come from ``sandbox.statements``. Files are spooled to temporary files, not
held in memory. No database transaction is open here.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import shutil
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import date
from typing import BinaryIO

import requests
from django.conf import settings

from billing.models.reconciliation import StatementSource

logger = logging.getLogger(__name__)

SPOOL_BYTES = 8 << 20
DOWNLOAD_TIMEOUT = (5, 120)
COPY_CHUNK = 1 << 20


class FetchFailed(Exception):
    """The statement could not be had now (not ready yet, the system is down, an answer we cannot use)."""


@dataclass
class Fetched:
    """A statement file, rewound; ``file`` None when the source says it has no statement for the day."""

    source: str
    file: BinaryIO | None
    file_name: str
    note: str = ""


def _spool() -> BinaryIO:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # type: ignore[return-value]


def fetch_statement(source: str, day: date) -> Fetched:
    if source == StatementSource.WECHATPAY:
        return _wechatpay(day) if settings.WECHATPAY_ADAPTER == "sdk" else _sandbox(source, day)
    if source == StatementSource.ALIPAY:
        return _alipay(day) if settings.ALIPAY_ADAPTER == "sdk" else _sandbox(source, day)
    if source == StatementSource.SMP:
        return _smp(day) if settings.SMP_ADAPTER == "http" else _sandbox(source, day)
    raise ValueError(f"unknown statement source {source!r}")


def _sandbox(source: str, day: date) -> Fetched:
    from sandbox import statements

    file = statements.statement_file(source, day)
    return Fetched(source=source, file=file, file_name=statements.file_name(source, day))


# --- WeChat Pay ------------------------------------------------------------------------


def _wechatpay(day: date) -> Fetched:
    from billing.providers.wechatpay.client import WechatPayClient

    # The client configures the SDK (keys, gateway); the bill calls are the SDK's own.
    sdk = WechatPayClient()._sdk
    try:
        status, text = sdk.trade_bill(bill_date=day.isoformat(), bill_type="ALL", tar_type="GZIP")
    except Exception as exc:  # the SDK raises plain Exception for transport and signature faults
        raise FetchFailed(f"WeChat Pay trade bill: {exc.__class__.__name__}: {exc}") from exc
    try:
        answer = json.loads(text) if text else {}
    except ValueError:
        raise FetchFailed(f"WeChat Pay trade bill: HTTP {status}, an answer that is not JSON") from None
    if status != 200:
        code = answer.get("code", "")
        if code == "NO_STATEMENT_EXIST":
            return Fetched(
                StatementSource.WECHATPAY, None, "", note="WeChat Pay has no trade bill for the day (no trades)"
            )
        raise FetchFailed(f"WeChat Pay trade bill: HTTP {status} {code} {answer.get('message', '')}".strip())
    url, expected = answer.get("download_url"), str(answer.get("hash_value", "")).lower()
    if not url:
        raise FetchFailed("WeChat Pay trade bill: no download_url in the answer")
    try:
        status, content = sdk.download_bill(url)
    except Exception as exc:
        raise FetchFailed(f"WeChat Pay bill download: {exc.__class__.__name__}: {exc}") from exc
    if status != 200 or not isinstance(content, bytes | bytearray):
        raise FetchFailed(f"WeChat Pay bill download: HTTP {status}")
    spool, digest = _spool(), hashlib.sha1(usedforsecurity=False)
    try:
        with gzip.GzipFile(fileobj=_bytes_file(content), mode="rb") as unzipped:
            while chunk := unzipped.read(COPY_CHUNK):
                digest.update(chunk)
                spool.write(chunk)
    except (OSError, EOFError) as exc:
        raise FetchFailed(f"WeChat Pay bill download: not a gzip file ({exc})") from exc
    if expected and digest.hexdigest() != expected:
        raise FetchFailed("WeChat Pay bill download: the file's SHA-1 is not the hash_value announced")
    spool.seek(0)
    return Fetched(StatementSource.WECHATPAY, spool, f"wechatpay_tradebill_ALL_{day:%Y-%m-%d}.csv")


def _bytes_file(content: bytes) -> BinaryIO:
    spool = _spool()
    spool.write(content)
    spool.seek(0)
    return spool


# --- Alipay ----------------------------------------------------------------------------


def _alipay(day: date) -> Fetched:
    from alipay.exceptions import AliPayException

    from billing.providers.alipay.client import AlipayClient

    sdk = AlipayClient()._sdk
    try:
        answer = sdk.server_api(
            "alipay.data.dataservice.bill.downloadurl.query",
            biz_content={"bill_type": "trade", "bill_date": day.isoformat()},
        )
    except (AliPayException, OSError, ValueError) as exc:
        raise FetchFailed(f"Alipay bill download URL: {exc.__class__.__name__}: {exc}") from exc
    if not isinstance(answer, dict) or answer.get("code") != "10000":
        sub_code = answer.get("sub_code", "") if isinstance(answer, dict) else ""
        if sub_code == "isp.bill_not_exist":
            return Fetched(StatementSource.ALIPAY, None, "", note="Alipay has no bill for the day (no trades)")
        raise FetchFailed(f"Alipay bill download URL: {answer!r}"[:300])
    url = answer.get("bill_download_url")
    if not url:
        raise FetchFailed("Alipay bill download URL: no bill_download_url in the answer")
    archive = _spool()
    try:
        with requests.get(url, stream=True, timeout=DOWNLOAD_TIMEOUT) as response:
            response.raise_for_status()
            for chunk in response.iter_content(COPY_CHUNK):
                archive.write(chunk)
    except requests.RequestException as exc:
        raise FetchFailed(f"Alipay bill download: {exc.__class__.__name__}") from exc
    archive.seek(0)
    try:
        with zipfile.ZipFile(archive) as bundle:
            for member in bundle.infolist():
                name = _zip_name(member)
                if name.endswith("业务明细.csv") and "汇总" not in name:
                    spool = _spool()
                    with bundle.open(member) as detail:
                        shutil.copyfileobj(detail, spool, COPY_CHUNK)
                    spool.seek(0)
                    return Fetched(StatementSource.ALIPAY, spool, name.rsplit("/", 1)[-1])
    except zipfile.BadZipFile as exc:
        raise FetchFailed(f"Alipay bill download: not a zip file ({exc})") from exc
    raise FetchFailed("Alipay bill download: no …_业务明细.csv in the zip")


def _zip_name(member: zipfile.ZipInfo) -> str:
    # Alipay's zips name their members in GBK without the UTF-8 flag; zipfile then reads them as CP437.
    if member.flag_bits & 0x800:
        return member.filename
    try:
        return member.filename.encode("cp437").decode("gb18030")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return member.filename


# --- the SMP ---------------------------------------------------------------------------


def _smp(day: date) -> Fetched:
    url = f"{settings.SMP_URL.rstrip('/')}/provisioning-list"
    spool = _spool()
    try:
        with requests.get(
            url,
            params={"date": day.isoformat()},
            headers={"Authorization": f"Bearer {settings.SMP_API_TOKEN}", "Accept": "text/csv"},
            stream=True,
            timeout=DOWNLOAD_TIMEOUT,
        ) as response:
            if response.status_code == 404:
                raise FetchFailed(f"SMP provisioning list of {day}: not ready (HTTP 404)")
            response.raise_for_status()
            for chunk in response.iter_content(COPY_CHUNK):
                spool.write(chunk)
    except requests.RequestException as exc:
        raise FetchFailed(f"SMP provisioning list: {exc.__class__.__name__}") from exc
    spool.seek(0)
    return Fetched(StatementSource.SMP, spool, f"smp_provisioning_{day:%Y-%m-%d}.csv")
