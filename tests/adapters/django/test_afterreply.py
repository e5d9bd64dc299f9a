"""Bookkeeping after CMI's reply (:mod:`cmi_django.afterreply`)."""

from __future__ import annotations

import pytest
from cmi_django.afterreply import ReplyThenWork, after_reply, collecting


def test_outside_a_callback_the_caller_does_the_work_at_once() -> None:
    assert after_reply(lambda: None) is False


@pytest.mark.django_db  # closing a response sends request_finished: old connections closed
def test_the_work_runs_in_order_when_the_response_is_closed_errors_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []

    def fails() -> None:
        done.append("fails")
        raise RuntimeError("boom")

    with collecting() as work:
        assert after_reply(lambda: done.append("first"))
        assert after_reply(fails)
        assert after_reply(lambda: done.append("last"))
    assert after_reply(lambda: None) is False  # the block is over: nothing collects
    response = ReplyThenWork(b"ACTION=POSTAUTH", work=work)
    assert done == []  # nothing before the reply is written
    with caplog.at_level("ERROR", logger="cmi_django"):
        response.close()
    assert done == ["first", "fails", "last"]
    assert "after CMI's reply failed" in caplog.text
    response.close()  # a second close runs nothing again
    assert done == ["first", "fails", "last"]
