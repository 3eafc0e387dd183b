"""Mounted at /admin/reports/ by ipvas/urls.py, before admin.site.urls; every view is staff-only."""

from django.contrib import admin
from django.urls import path

from backoffice.reports import views

app_name = "reports"

urlpatterns = [
    path("", admin.site.admin_view(views.dashboard), name="dashboard"),
]
