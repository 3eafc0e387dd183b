from tests.epg_api.support import api, other_api

__all__ = ["api", "other_api"]
