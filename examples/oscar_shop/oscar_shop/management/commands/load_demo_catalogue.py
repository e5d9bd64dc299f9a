"""``manage.py load_demo_catalogue``: a small catalogue to buy from, and a staff user.

Creates (once; running it again changes nothing) Morocco as the shipping country, a
partner, a product class, a category, a few products in Moroccan dirhams with stock, and
the superuser ``demo`` / ``demo`` (e-mail ``demo@example.com``) for the dashboard.
Shipping is Oscar's default: free.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.sites.models import Site
from django.core.management.base import BaseCommand
from oscar.core.loading import get_model

PRODUCTS = [
    ("Tajine en terre cuite", "CMI-TAJ-01", Decimal("249.00"), 25),
    ("Théière berbère", "CMI-THE-02", Decimal("180.50"), 40),
    ("Babouches en cuir", "CMI-BAB-03", Decimal("320.00"), 15),
    ("Huile d'argan 250 ml", "CMI-ARG-04", Decimal("95.90"), 100),
]


class Command(BaseCommand):
    help = "Create the demo catalogue and the demo/demo superuser (idempotent)."

    def handle(self, *args: Any, **options: Any) -> None:
        site = Site.objects.get_current()
        if site.domain == "example.com":
            site.domain, site.name = "127.0.0.1:8000", "Boutique CMI"
            site.save()
        get_model("address", "Country").objects.update_or_create(
            iso_3166_1_a2="MA",
            defaults={
                "iso_3166_1_a3": "MAR",
                "iso_3166_1_numeric": "504",
                "name": "Kingdom of Morocco",
                "printable_name": "Maroc",
                "is_shipping_country": True,
            },
        )
        partner, _ = get_model("partner", "Partner").objects.get_or_create(name="Souk Démo")
        product_class, _ = get_model("catalogue", "ProductClass").objects.get_or_create(
            name="Artisanat", defaults={"requires_shipping": True, "track_stock": True}
        )
        category_model = get_model("catalogue", "Category")
        category = category_model.objects.filter(name="Artisanat").first()
        if category is None:
            category = category_model.add_root(name="Artisanat", slug="artisanat")
        product_model = get_model("catalogue", "Product")
        created = 0
        for title, sku, price, stock in PRODUCTS:
            if product_model.objects.filter(upc=sku).exists():
                continue
            product = product_model.objects.create(
                title=title, upc=sku, product_class=product_class, structure="standalone"
            )
            get_model("catalogue", "ProductCategory").objects.create(
                product=product, category=category
            )
            product.stockrecords.create(
                partner=partner,
                partner_sku=sku,
                price_currency="MAD",
                price=price,
                num_in_stock=stock,
            )
            created += 1
        user_model = get_user_model()
        if not user_model.objects.filter(username="demo").exists():
            user_model.objects.create_superuser("demo", "demo@example.com", "demo")
            self.stdout.write("superuser demo / demo created")
        self.stdout.write(f"{created} products created, {product_model.objects.count()} in all")
