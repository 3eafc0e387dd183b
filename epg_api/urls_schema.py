"""Only the EPG API, under its public prefix: what the OpenAPI document describes."""

from django.urls import include, path

urlpatterns = [path("api/epg/v1/", include("epg_api.urls"))]
