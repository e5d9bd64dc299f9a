"""The demo site's own page: a home page whose body may carry pay buttons."""

from __future__ import annotations

from typing import Any, ClassVar

from cmi_wagtail.blocks import PayButtonBlock
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page


class HomePage(Page):
    body = StreamField(
        [
            ("heading", blocks.CharBlock()),
            ("paragraph", blocks.RichTextBlock()),
            ("pay_button", PayButtonBlock()),
        ],
        blank=True,
    )
    content_panels: ClassVar[list[Any]] = [*Page.content_panels, FieldPanel("body")]
