"""The CRM (业支CRM): the marketing activity of a cash sale, and its reversal.

``get_crm()`` is the implementation ``CRM_ADAPTER`` names: ``adapters.crm.http.HttpCrmClient``
in production, the sandbox's simulator in the embedded set-up. Single sign-on
of clerks is the CRM channel's own (channels_crm.sso).
"""

from __future__ import annotations

from adapters.crm.types import ActivityRequest, ActivityResult, CrmAdapter, CrmUnavailable
from adapters.resolve import Adapter

__all__ = ["ActivityRequest", "ActivityResult", "CrmAdapter", "CrmUnavailable", "get_crm"]

get_crm: Adapter[CrmAdapter] = Adapter("CRM_ADAPTER")
