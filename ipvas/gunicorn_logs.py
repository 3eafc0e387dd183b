"""gunicorn's own log lines, masked as ours are: ``--logger-class ipvas.gunicorn_logs.RedactingLogger``.

gunicorn writes its access log itself, not through Django's logging: the request line (``%(r)s``) holds the
query string whole and the Referer the previous page's, so a clerk's search (``/crm/subscriptions/?phone=``)
or an SSO ``?ticket=`` reached the log past ``ipvas.logs``' redaction. The same filter masks them here, and
keeps the rest of the line (a path and its query, masked, still say what was asked).
"""

from __future__ import annotations

from typing import Any

from gunicorn.glogging import Logger

from ipvas.logs import RedactingFilter


class RedactingLogger(Logger):
    def setup(self, cfg: Any) -> None:
        super().setup(cfg)  # run again at a reload (HUP): the filter is added once
        for log in (self.access_log, self.error_log):
            if not any(isinstance(existing, RedactingFilter) for existing in log.filters):
                log.addFilter(RedactingFilter())
