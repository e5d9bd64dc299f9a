"""Bookkeeping that waits until CMI has its reply (issue 16: CMI is answered as soon as
what it must know is committed; the rest comes after).

CMI's callback view collects such work while it handles the callback and runs it from its
response's ``close()``, which a WSGI server calls once the reply is written (gunicorn,
uWSGI, mod_wsgi; Django's ASGI handler and test client too), before Django's
``request_finished``. A middleware may answer with a response of its own (a copy, or
Django's 500 when it raises), and the view's is then never closed: the work is also tied
to the request, whose ``close()`` Django's handler calls from the response it finally
returns, so it runs once, whichever response is closed. What waits there is only what
nobody needs before CMI does: a Saleor report already recorded by Saleor, still to be
deleted from the owed reports (:mod:`cmi_saleor.reports`). Should the process die before
it runs (or an ASGI client disconnect before the response is sent: Django then closes no
response), the work is lost and the row stays as it was before the reply: its lease runs
out and the next sender re-sends it, which Saleor answers ``alreadyProcessed``.

Outside a callback (a webhook, a command, a task) nothing collects: :func:`after_reply`
answers False and the caller does the work at once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

from django.http import HttpRequest, HttpResponse

__all__ = ["ReplyThenWork", "after_reply", "collecting", "run"]

logger = logging.getLogger("cmi_django")

Work = Callable[[], None]
_QUEUE: ContextVar[list[Work] | None] = ContextVar("cmi_after_reply", default=None)


def after_reply(work: Work) -> bool:
    """Run ``work`` once the reply is sent, when the current request collects such work
    (True); else False, and the caller runs it now."""
    queue = _QUEUE.get()
    if queue is None:
        return False
    queue.append(work)
    return True


@contextmanager
def collecting() -> Iterator[list[Work]]:
    """Collect :func:`after_reply` work for the duration of the block; the list is the
    caller's to hand to :class:`ReplyThenWork`."""
    queue: list[Work] = []
    token = _QUEUE.set(queue)
    try:
        yield queue
    finally:
        _QUEUE.reset(token)


def run(work: list[Work]) -> None:
    """Run the collected work, in order, emptying the list (whoever runs it first runs
    it all, once); an error is logged, never raised (the reply is already sent)."""
    while work:
        item = work.pop(0)
        try:
            item()
        except Exception:
            logger.exception("bookkeeping after CMI's reply failed")


class ReplyThenWork(HttpResponse):
    """A response whose ``close()`` (the reply written) first runs the collected work
    (:func:`run`). With ``request``, the request's ``close()`` runs it too: Django's handler
    calls that from whichever response it returns, should a middleware replace this one."""

    def __init__(
        self, *args: Any, work: list[Work], request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        self._work = work
        if work and request is not None:
            closing = request.close

            def close() -> None:
                try:
                    run(work)
                finally:
                    closing()

            request.close = close  # type: ignore[method-assign]

    def close(self) -> None:
        try:
            run(self._work)
        finally:
            super().close()
