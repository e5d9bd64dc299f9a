from __future__ import annotations

from cmi_django.services import ReturnOutcome
from cmi_django.views import ReturnView


class OkView(ReturnView):
    kind = "ok"

    def get_redirect_url(self, outcome: ReturnOutcome) -> str:
        return "/thanks/" if outcome.approved else "/checkout/?retry=1"


class FailView(ReturnView):
    kind = "fail"

    def get_redirect_url(self, outcome: ReturnOutcome) -> str:
        return "/checkout/?retry=1"
