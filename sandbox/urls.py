from django.urls import path

from sandbox.views import smp

app_name = "sandbox"

urlpatterns = [
    path("smp/api/precheck", smp.precheck, name="smp-precheck"),
    path("smp/api/subscribe", smp.subscribe, name="smp-subscribe"),
    path("smp/api/authorize", smp.authorize, name="smp-authorize"),
    path("smp/api/unsubscribe", smp.unsubscribe, name="smp-unsubscribe"),
    path("smp/faults/", smp.set_faults, name="smp-faults"),
]
