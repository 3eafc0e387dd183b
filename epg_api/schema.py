"""drf-spectacular: the Api-Key scheme in the OpenAPI document."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension


class ApiKeyScheme(OpenApiAuthenticationExtension):
    target_class = "epg_api.authentication.ApiKeyAuthentication"
    name = "ApiKey"

    def get_security_definition(self, auto_schema):  # type: ignore[no-untyped-def]
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            # Swagger UI's Authorize box sends what is typed as it is: the scheme's word must be typed too.
            "description": (
                "Type **`Api-Key `** (the word, then a space) **before the key**: `Api-Key AbCd1234.ef56…`. "
                "The key is the one printed by `python manage.py create_epg_client NAME`; the header is "
                "`Authorization: Api-Key <key>`. A key typed alone is refused with 401."
            ),
        }
