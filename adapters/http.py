"""One keep-alive HTTP session per thread and outside system, for the clients that speak HTTP themselves
(the SMP, the SMS gateway, the CRM, WeChat Pay's APIv2 calls).

A session keeps its connections open between calls (a worker or a web thread calls the same system again
and again), and reads the environment's proxy (``HTTPS_PROXY``, ``NO_PROXY``…) and CA bundle
(``REQUESTS_CA_BUNDLE``) for the address once, as requests itself would read them, instead of on every call:
with ``trust_env`` requests reads and matches the whole environment per request, a tenth of a pre-check's CPU
(issue #17). A change to those variables reaches a process when it restarts.
"""

from __future__ import annotations

import threading

import requests

_local = threading.local()


def keep_alive_session(base_url: str) -> requests.Session:
    """This thread's session for the system at ``base_url`` (its scheme, host and path prefix)."""
    sessions: dict[str, requests.Session] = _local.__dict__.setdefault("sessions", {})
    session = sessions.get(base_url)
    if session is None:
        session = requests.Session()
        found = session.merge_environment_settings(base_url, {}, None, None, None)  # requests' own reading
        session.proxies, session.verify = found["proxies"], found["verify"]
        session.trust_env = False
        sessions[base_url] = session
    return session


def hang_up() -> None:
    """Close this thread's sessions (their connections): a test whose server is going away, or a process
    that must read the environment again."""
    for session in _local.__dict__.pop("sessions", {}).values():
        session.close()
