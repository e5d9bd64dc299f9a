"""``python manage.py setup_demo``: the demo's pages, CMI settings and admin user.

Idempotent: run it after every ``migrate``. Creates the ``admin`` / ``admin`` superuser
and an ``editor`` / ``editor`` account in Wagtail's "Editors" group (not a superuser: the
editor's path, creating and editing payment pages, can be tried as an editor sees it),
a home page carrying two pay buttons, a fixed-price membership page and a donation page
with preset amounts, and points the site's CMI settings at ``CMI_SANDBOX_URL`` with the
emulator's default merchant.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from cmi_wagtail.models import CMISettings, PaymentPage
from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand, CommandError
from wagtail.models import Page, Site

from cmi_core.sandbox import DEFAULT_MERCHANT
from home.models import HomePage


class Command(BaseCommand):
    help = "Create the Wagtail demo's pages, CMI settings and admin user (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        user_model = get_user_model()
        if not user_model.objects.filter(username="admin").exists():
            user_model.objects.create_superuser("admin", "admin@example.ma", "admin")
        if not user_model.objects.filter(username="editor").exists():
            editor = user_model.objects.create_user("editor", "editor@example.ma", "editor")
            editors = Group.objects.filter(name="Editors").first()  # Wagtail's own group
            if editors is not None:
                editor.groups.add(editors)
        home = HomePage.objects.first()
        site = Site.objects.filter(is_default_site=True).first()
        if home is None:
            root = Page.get_first_root_node()
            home = root.add_child(instance=HomePage(title="Association Atlas", slug="atlas"))
            home.save_revision().publish()
            if site is None:
                site = Site(hostname="127.0.0.1", port=80, is_default_site=True)
            old_root = site.root_page if site.pk else None
            site.root_page = home
            site.site_name = "Association Atlas"
            site.save()
            if old_root is not None and old_root.pk != home.pk and old_root.depth == 2:
                old_root.delete()  # Wagtail's "Welcome" page
        if site is None:
            raise CommandError("no default Wagtail site")
        membership = self.payment_page(
            home,
            slug="adhesion",
            title="Adhésion annuelle",
            intro="<p>L'adhésion annuelle à l'association, carte de membre comprise.</p>",
            amount_rule="fixed",
            fixed_amount=Decimal("250.00"),
            ask_phone=True,
        )
        self.payment_page(
            home,
            slug="don",
            title="Faire un don",
            intro="<p>Choisissez le montant de votre don.</p>",
            amount_rule="choices",
            preset_amounts="100 200 500 1000",
            submit_label="Donner",
        )
        if not home.body:
            home.body = [
                ("paragraph", "<p>Bienvenue ! Réglez votre cotisation ou soutenez-nous.</p>"),
                (
                    "pay_button",
                    {"label": "Cotisation réduite", "amount": Decimal("150"), "page": membership},
                ),
                (
                    "pay_button",
                    {"label": "Petit soutien", "amount": Decimal("50"), "currency": "504"},
                ),
            ]
            home.save_revision().publish()
        cmi = CMISettings.for_site(site)
        cmi.client_id = DEFAULT_MERCHANT.client_id
        cmi.store_key = DEFAULT_MERCHANT.store_key
        cmi.api_username = DEFAULT_MERCHANT.api_username
        cmi.api_password = DEFAULT_MERCHANT.api_password
        cmi.base_url = settings.CMI_SANDBOX_URL
        cmi.environment = "test"
        cmi.send_receipts = True
        cmi.full_clean()
        cmi.save()
        self.stdout.write(
            f"demo ready: site {site.pk}, CMI at {cmi.base_url}, admin/admin, editor/editor"
        )

    def payment_page(self, parent: Page, *, slug: str, **fields: Any) -> PaymentPage:
        existing = PaymentPage.objects.filter(slug=slug).first()
        if existing is not None:
            return existing
        page = PaymentPage(
            slug=slug,
            thank_you_text="<p>Merci ! Votre paiement est bien reçu.</p>",
            failure_text="<p>Le paiement n'a pas abouti.</p>",
            **fields,
        )
        page.full_clean(exclude=["path", "depth", "url_path"])
        parent.add_child(instance=page)
        page.save_revision().publish()
        return page
