"""A site's own pages, as a site developer would write them for the tests."""

from __future__ import annotations

from typing import Any, ClassVar

from cmi_wagtail.blocks import PayButtonBlock
from wagtail import blocks
from wagtail.admin.panels import FieldPanel
from wagtail.fields import StreamField
from wagtail.models import Page


class HomePage(Page):
    """A home page under which anything may go."""

    body = StreamField(
        [("paragraph", blocks.RichTextBlock()), ("pay_button", PayButtonBlock())],
        blank=True,
    )
    content_panels: ClassVar[list[Any]] = [*Page.content_panels, FieldPanel("body")]
    template = "testapp/home_page.html"


class ArticlePage(Page):
    """A page carrying pay buttons in its body; only under the home page."""

    body = StreamField(
        [("paragraph", blocks.RichTextBlock()), ("pay_button", PayButtonBlock())],
        blank=True,
    )
    content_panels: ClassVar[list[Any]] = [*Page.content_panels, FieldPanel("body")]
    parent_page_types: ClassVar[list[Any]] = ["testapp.HomePage"]
    template = "testapp/home_page.html"
