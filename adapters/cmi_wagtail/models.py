"""Per-site CMI settings, the payment page type and the admin's view of Wagtail payments.

- :class:`CMISettings`: a ``BaseSiteSetting`` holding one site's CMI credentials (the store
  key and the API password encrypted at rest by :class:`cmi_django.crypto.EncryptedTextField`).
- :class:`AbstractPaymentPage`: the abstract mixin a site mixes into its own page class
  (Wagtail 8's guidance for reusable apps, as ``wagtail.contrib.forms`` does with
  ``FormMixin``); :class:`PaymentPage` is the concrete page most sites use as is.
- :class:`WagtailPayment`: a proxy of :class:`cmi_django.models.Payment` limited to this
  platform, for the admin viewset (its own permissions).

The page validates the shopper's form, then hands over to :mod:`cmi_wagtail.checkout`,
which calls :func:`cmi_django.services.create_payment`; nothing here moves a payment.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any, ClassVar

from cmi_django.credentials import CredentialsModel
from cmi_django.crypto import EncryptedTextField
from cmi_django.i18n import amount_error
from cmi_django.models import Payment
from django.contrib import admin
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpResponse
from django.template.response import TemplateResponse
from django.utils.translation import gettext_lazy as _
from wagtail.admin.panels import FieldPanel, FieldRowPanel, HelpPanel, MultiFieldPanel
from wagtail.contrib.routable_page.models import RoutablePageMixin, path
from wagtail.contrib.settings.models import BaseSiteSetting, register_setting
from wagtail.fields import RichTextField
from wagtail.models import Page

from cmi_core import ValidationError as CoreValidationError
from cmi_core.codes import LANGUAGE_CHOICES
from cmi_core.codes import LANGUAGES as CMI_LANGUAGES
from cmi_core.money import CURRENCIES, check_amount, get_currency
from cmi_wagtail.forms import CMISettingsForm

if TYPE_CHECKING:
    from django.http import HttpRequest

    from cmi_wagtail.forms import ShopperForm

__all__ = [
    "AMOUNT_RULES",
    "CURRENCY_CHOICES",
    "LANGUAGES",
    "AbstractPaymentPage",
    "CMISettings",
    "PaymentPage",
    "WagtailPayment",
    "payment_page",
]

LANGUAGES = list(LANGUAGE_CHOICES)  # the core's one list (kept under its old name)
CURRENCY_CHOICES = [(c.numeric, c.alpha) for c in CURRENCIES.values()]
AMOUNT_RULES = [
    ("fixed", _("Fixed amount")),
    ("choices", _("One of several amounts")),
    ("free", _("Amount chosen by the payer, between a minimum and a maximum")),
]
_MONEY: dict[str, Any] = {"max_digits": 15, "decimal_places": 3}


# Settings -------------------------------------------------------------------------------


@register_setting(icon="key")
class CMISettings(CredentialsModel, BaseSiteSetting):
    """One site's CMI merchant account (:class:`CredentialsModel`). Secrets are encrypted
    and never shown back."""

    language_field = "default_language"
    may_be_unconfigured = True

    client_id = models.CharField(
        _("client id"),
        max_length=15,
        blank=True,
        help_text=_("The merchant id (clientid) CMI assigned to this site."),
    )
    store_key = EncryptedTextField(
        _("store key"),
        blank=True,
        help_text=_("The secret hash key set in CMI's Merchant Center."),
    )
    api_username = models.CharField(
        _("API user name"),
        max_length=64,
        blank=True,
        help_text=_("CMI's API user, needed to capture, void, refund and refresh payments."),
    )
    api_password = EncryptedTextField(_("API password"), blank=True)
    environment = models.CharField(
        _("environment"),
        max_length=10,
        choices=[("test", _("Test")), ("production", _("Production"))],
        default="test",
    )
    base_url = models.URLField(
        _("gateway address"),
        blank=True,
        help_text=_(
            "Leave empty for CMI. For the local emulator (cmi sandbox): http://127.0.0.1:8765"
        ),
    )
    capture_mode = models.CharField(
        _("capture"),
        max_length=6,
        choices=[
            ("auto", _("Automatic: capture as soon as the card is authorised")),
            ("manual", _("Manual: staff capture each payment from the admin")),
        ],
        default="auto",
    )
    default_language = models.CharField(
        _("default language"),
        max_length=2,
        choices=LANGUAGES,
        default="fr",
        help_text=_("Used for pages whose language CMI does not offer."),
    )
    send_receipts = models.BooleanField(
        _("send e-mail receipts"),
        default=False,
        help_text=_("E-mail the payer a receipt once the card is authorised."),
    )
    receipt_from_email = models.EmailField(
        _("receipts sender"),
        blank=True,
        help_text=_("Leave empty to use the site's DEFAULT_FROM_EMAIL."),
    )

    base_form_class = CMISettingsForm
    panels: ClassVar[list[Any]] = [
        MultiFieldPanel(
            [
                FieldPanel("client_id"),
                FieldPanel("store_key"),
                FieldRowPanel([FieldPanel("api_username"), FieldPanel("api_password")]),
                HelpPanel(template="cmi_wagtail/admin/test_credentials_panel.html"),
            ],
            heading=_("Credentials"),
        ),
        MultiFieldPanel(
            [
                FieldPanel("environment"),
                FieldPanel("base_url"),
                FieldPanel("capture_mode"),
                FieldPanel("default_language"),
            ],
            heading=_("Gateway"),
        ),
        MultiFieldPanel(
            [FieldPanel("send_receipts"), FieldPanel("receipt_from_email")],
            heading=_("Receipts"),
        ),
    ]

    class Meta:
        verbose_name = _("CMI payments")

    def __str__(self) -> str:
        return f"CMI settings of {self.site}"

    def credentials_label(self) -> str:
        return f"CMI settings of Wagtail site {self.site_id}"


# The payment page ---------------------------------------------------------------------------


def _parse_amounts(text: str) -> list[Decimal]:
    amounts = []
    for part in text.replace(";", " ").replace("\n", " ").split():
        for piece in part.split(","):
            if piece.strip():
                try:
                    amounts.append(Decimal(piece.strip()))
                except InvalidOperation:
                    raise ValidationError(
                        _("%(value)s is not an amount") % {"value": piece.strip()}
                    ) from None
    return amounts


class AbstractPaymentPage(RoutablePageMixin, models.Model):
    """A page that takes a card payment through CMI: mix into a ``Page`` subclass.

    ``class DonationPage(AbstractPaymentPage, Page)`` (with the site's own base page model
    when it swaps Wagtail's). The page serves the shopper's form at its URL and three
    landing routes: ``thank-you/``, ``failure/`` and ``cancel/``.
    """

    intro = RichTextField(_("introduction"), blank=True)
    amount_rule = models.CharField(
        _("amount"), max_length=10, choices=AMOUNT_RULES, default="fixed"
    )
    fixed_amount = models.DecimalField(_("fixed amount"), null=True, blank=True, **_MONEY)
    preset_amounts = models.CharField(
        _("amounts offered"),
        max_length=255,
        blank=True,
        help_text=_("Separated by spaces, e.g. 100 200 500"),
    )
    min_amount = models.DecimalField(_("minimum"), null=True, blank=True, **_MONEY)
    max_amount = models.DecimalField(_("maximum"), null=True, blank=True, **_MONEY)
    currency = models.CharField(
        _("currency"), max_length=3, choices=CURRENCY_CHOICES, default="504"
    )
    description = models.CharField(
        _("description sent to CMI"),
        max_length=125,
        blank=True,
        help_text=_("Shown on CMI's payment page; the page title when empty."),
    )
    ask_name = models.BooleanField(_("ask the name"), default=True)
    ask_phone = models.BooleanField(_("ask the phone number"), default=False)
    ask_address = models.BooleanField(_("ask the postal address"), default=False)
    submit_label = models.CharField(
        _("button label"), max_length=64, blank=True, help_text=_("'Pay' when empty.")
    )
    thank_you_text = RichTextField(_("thank-you text"), blank=True)
    failure_text = RichTextField(_("failure text"), blank=True)

    payment_panels: ClassVar[list[Any]] = [
        FieldPanel("intro"),
        MultiFieldPanel(
            [
                FieldPanel("amount_rule"),
                # Shown for their rule only (cmi_wagtail/amount_rule.js, the editor's JS).
                FieldPanel("fixed_amount", attrs={"data-cmi-amount-for": "fixed"}),
                FieldPanel("preset_amounts", attrs={"data-cmi-amount-for": "choices"}),
                FieldRowPanel(
                    [FieldPanel("min_amount"), FieldPanel("max_amount")],
                    attrs={"data-cmi-amount-for": "free"},
                ),
                FieldPanel("currency"),
                FieldPanel("description"),
            ],
            heading=_("Amount"),
        ),
        MultiFieldPanel(
            [
                FieldPanel("ask_name"),
                FieldPanel("ask_phone"),
                FieldPanel("ask_address"),
                FieldPanel("submit_label"),
            ],
            heading=_("Payer's form (the e-mail address is always asked: CMI requires it)"),
        ),
        FieldPanel("thank_you_text"),
        FieldPanel("failure_text"),
    ]

    template = "cmi_wagtail/payment_page.html"
    landing_template = "cmi_wagtail/payment_page_landing.html"

    class Meta:
        abstract = True

    # Rules --------------------------------------------------------------------------------

    def amount_choices(self) -> list[Decimal]:
        """The preset amounts (rule "choices"), in the order the editor typed them."""
        try:
            return _parse_amounts(self.preset_amounts or "")
        except ValidationError:
            return []

    def clean(self) -> None:
        super().clean()
        errors: dict[str, Any] = {}
        currency = get_currency(self.currency or "504")

        def check(name: str, value: Decimal | None) -> None:
            if value is None:
                return
            try:
                check_amount(Decimal(value), currency, name)
            except CoreValidationError as exc:  # the core's rule, translated here
                errors[name] = amount_error(exc, currency.alpha)

        if self.amount_rule == "fixed":
            if self.fixed_amount is None:
                errors["fixed_amount"] = _("Enter the amount to pay.")
            check("fixed_amount", self.fixed_amount)
        elif self.amount_rule == "choices":
            try:
                amounts = _parse_amounts(self.preset_amounts or "")
            except ValidationError as exc:
                errors["preset_amounts"] = exc.messages
            else:
                if not amounts:
                    errors["preset_amounts"] = _("Enter at least one amount.")
                for amount in amounts:
                    try:
                        check_amount(amount, currency, "preset_amounts")
                    except Exception:  # noqa: BLE001
                        errors["preset_amounts"] = _(
                            "%(value)s is not a valid amount in %(currency)s"
                        ) % {"value": amount, "currency": currency.alpha}
        elif self.amount_rule == "free":
            check("min_amount", self.min_amount)
            check("max_amount", self.max_amount)
            if (
                self.min_amount is not None
                and self.max_amount is not None
                and self.min_amount > self.max_amount
            ):
                errors["max_amount"] = _("The maximum is below the minimum.")
        if errors:
            raise ValidationError(errors)

    def cmi_language(self) -> str:
        """CMI's page language (fr, en or ar) from the page's locale, else the site's default."""
        code = (getattr(getattr(self, "locale", None), "language_code", "") or "")[:2]
        if code in CMI_LANGUAGES:
            return code
        from cmi_wagtail.checkout import site_settings

        settings = site_settings(self)
        return settings.default_language if settings else "fr"

    def get_shopper_form(
        self, data: Any = None, *, button: dict[str, Any] | None = None
    ) -> ShopperForm:
        """The payer's form for this page (or for a pay button leading to it)."""
        from cmi_wagtail.forms import ShopperForm

        fixed = Decimal(button["amount"]) if button else None
        return ShopperForm(data, page=self, fixed_amount=fixed)

    # Routes -------------------------------------------------------------------------------

    def _button(self, request: HttpRequest) -> dict[str, Any] | None:
        from cmi_wagtail.checkout import read_button

        token = request.POST.get("button") or request.GET.get("button")
        if not token:
            return None
        button = read_button(token)
        if button is None or button.get("target") != self.pk:
            raise Http404("unknown pay button")
        return button

    @path("")
    def pay(self, request: HttpRequest) -> HttpResponse:
        """GET: the form; POST: validate it and send the payer to CMI."""
        from cmi_wagtail.checkout import language, start_payment

        button = self._button(request)
        with language(self.cmi_language()):
            if request.method == "POST":
                form = self.get_shopper_form(request.POST, button=button)
                if form.is_valid():
                    return start_payment(
                        request,
                        page=self,
                        landing=self,
                        amount=form.chosen_amount(),
                        currency=self.currency,
                        lang=self.cmi_language(),
                        shopper=form.shopper(),
                        description=self.description or self.title,
                        button=button,
                    )
            else:
                form = self.get_shopper_form(button=button)
            return self._now(
                self.render(
                    request,
                    context_overrides={"form": form, "button": button, **self._texts()},
                )
            )

    @path("thank-you/", name="thank_you")
    def thank_you(self, request: HttpRequest) -> TemplateResponse:
        return self._landing(request, approved=True)

    @path("failure/", name="failure")
    def failure(self, request: HttpRequest) -> TemplateResponse:
        return self._landing(request, approved=False)

    @path("cancel/", name="cancel")
    def cancel(self, request: HttpRequest) -> HttpResponse:
        """CMI's "back to the shop" link: the form again, with a notice."""
        from cmi_wagtail.checkout import language

        with language(self.cmi_language()):
            return self._now(
                self.render(
                    request,
                    context_overrides={
                        "form": self.get_shopper_form(),
                        "cancelled": True,
                        **self._texts(),
                    },
                )
            )

    @staticmethod
    def _now(response: TemplateResponse) -> TemplateResponse:
        """Render while the page's language is active (a TemplateResponse is lazy)."""
        response.render()
        return response

    def _texts(self) -> dict[str, Any]:
        return {"lang": self.cmi_language(), "rtl": self.cmi_language() == "ar"}

    def _landing(self, request: HttpRequest, *, approved: bool) -> TemplateResponse:
        from cmi_wagtail.checkout import language, read_landing
        from cmi_wagtail.receipts import receipts_enabled

        result = read_landing(request.GET.get("r", ""))
        payment = result["payment"] if result else None
        with language(self.cmi_language()):
            return self._now(
                self.render(
                    request,
                    template=self.landing_template,
                    context_overrides={
                        "approved": approved and bool(result and result["approved"]),
                        "result": result,
                        "payment": payment,
                        "receipt_email": payment.email
                        if payment is not None and receipts_enabled(payment)
                        else "",
                        "home_url": (self.get_site().root_page.url if self.get_site() else "/"),
                        **self._texts(),
                    },
                )
            )


class PaymentPage(AbstractPaymentPage, Page):  # type: ignore[django-manager-missing]  # Page is untyped
    """The ready-made payment page: a leaf page that can live anywhere in the tree."""

    content_panels = Page.content_panels + AbstractPaymentPage.payment_panels
    subpage_types: ClassVar[list[Any]] = []

    class Meta:
        verbose_name = _("payment page")
        verbose_name_plural = _("payment pages")


# The admin's view of payments -----------------------------------------------------------------


def payment_page(payment: Payment) -> Page | None:
    """The specific page a payment was made on (a ``PaymentPage``, a site's own subclass, or
    the page carrying the pay button); None for another platform's payment or a deleted page.

    The one way a receiver of :mod:`cmi_django.signals` finds the page, e.g.
    ``isinstance(payment_page(payment), PaymentPage)`` where it used to connect with
    ``sender=PaymentPage``.
    """
    from cmi_wagtail.config import PLATFORM

    page_id = (payment.data or {}).get("page_id") if payment.platform == PLATFORM else None
    page = Page.objects.filter(pk=page_id).first() if page_id else None
    return page.specific if page is not None else None


class WagtailPaymentManager(models.Manager["WagtailPayment"]):
    def get_queryset(self) -> models.QuerySet[WagtailPayment]:
        from cmi_wagtail.config import PLATFORM

        return super().get_queryset().filter(platform=PLATFORM)


class WagtailPayment(Payment):
    """The payments made through Wagtail pages (a proxy: the rows are cmi_django's)."""

    objects: ClassVar[WagtailPaymentManager] = WagtailPaymentManager()

    class Meta:
        proxy = True
        verbose_name = _("payment")
        verbose_name_plural = _("payments")
        ordering = ("-created_at",)

    def __str__(self) -> str:
        from cmi_django.i18n import state_label

        return f"{self.oid} ({state_label(self.state)})"

    def page(self) -> Page | None:
        """The page the payment was made on, if it still exists."""
        page_id = (self.data or {}).get("page_id")
        if not page_id:
            return None
        return Page.objects.filter(pk=page_id).first()

    @admin.display(description=_("page"))
    def page_title(self) -> str:
        return str((self.data or {}).get("page_title", ""))

    @admin.display(description=_("currency"))
    def currency_alpha(self) -> str:
        return get_currency(self.currency).alpha

    @admin.display(description=_("payer"))
    def payer(self) -> str:
        shopper = (self.data or {}).get("shopper", {})
        return str(shopper.get("name") or self.email)
