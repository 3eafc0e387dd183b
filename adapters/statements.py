"""A day's statement as the outside systems hand it over: WeChat Pay's and Alipay's bills, the SMP's list.

Each adapter that has one offers ``download_statement(day)``. Files are
spooled to temporary files, not held in memory; the caller owns and closes
them. No database transaction may be open around a download.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from typing import BinaryIO

SPOOL_BYTES = 8 << 20
DOWNLOAD_TIMEOUT = (5, 120)
COPY_CHUNK = 1 << 20


class StatementUnavailable(Exception):
    """The statement could not be had now (not ready yet, the system is down, an answer we cannot use)."""


@dataclass(frozen=True)
class StatementFile:
    """A statement file, rewound; ``file`` None when the source says it has no statement for the day."""

    file: BinaryIO | None
    file_name: str
    note: str = ""


def spool() -> BinaryIO:
    return tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES)  # type: ignore[return-value]


def spooled(content: bytes) -> BinaryIO:
    file = spool()
    file.write(content)
    file.seek(0)
    return file
