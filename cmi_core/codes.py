"""CMI's error codes (guide §6.2, "Codes d'erreurs") as data, and what to tell whom.

:data:`ERROR_CODES` holds every row of the table in guide §6.2 (37 rows, ``3D-1004`` to
``ISO8583-96``) with CMI's English and French texts and the French comment copied exactly
as the guide gives them, typos included (``"Opertaion failor"``). The guide has almost no
Arabic: its AR column is empty except for ``BM-1002`` (``"HOST"``) and ``RULE-0001``
(``"."``), which are placeholders rather than translations. Those cells are kept verbatim
in :attr:`ErrorCode.guide_ar`; every :attr:`ErrorCode.ar` is our translation, and
:attr:`ErrorCode.ar_source` says so (``"ours"``; ``"guide"`` is reserved for a future
guide that ships real Arabic).

Who may read what (guide §3.1, "Remarque"): the message shown to the shopper does not
give the exact reason of a decline, to follow fraud-prevention rules; a shopper who needs
it asks their bank, while the merchant sees the bank's answer in the Merchant Center.
So there are two texts:

- :func:`merchant_message`: the precise text plus the code, for staff and logs
  (``"ISO8583-51: Insufficient funds."``).
- :func:`shopper_message`: shopper-safe. Every bank decline (all ``ISO8583-*`` rows) and
  every platform control rule gets one of three generic texts: *declined* ("contact your
  bank or try another card"), *technical problem* ("try again in a few minutes"), or
  *cannot be processed* ("try later or contact the merchant", for codes that point at
  the merchant's set-up: ``3D-1004`` wrong hash, ``ISO8583-03`` merchant not permitted,
  ``ISO8583-13`` invalid amount). Only codes about the shopper's own input, session or
  card type get a precise text, because telling them reveals nothing a fraudster could
  use and lets the shopper fix the problem:

  ========== =================================================================
  RULE-0001  the payment session expired
  CORE-5110  the shopper left the payment page flow (back button, reload...)
  3D-1034    same, during 3-D Secure
  CORE-2012  the card number is not in a valid format
  CORE-2010  the card has expired (the platform's own check, not the bank's)
  CORE-2515  card details typed in the wrong format
  3D-1005    3-D Secure authentication failed
  RULE-0002  the card must support 3-D Secure
  RULE-0003  this type of card is not accepted
  CORE-2208  this card brand is not accepted
  ========== =================================================================

  ``RULE-0004`` ("Card not allowed"), ``CORE-2202``/``CORE-2253`` (control rules) and
  ``ISO8583-54`` (expired card *as seen by the bank*) stay generic: they may stand for a
  blocked card or a fraud rule.

Lookups (:func:`lookup`): a known ErrCode (system code such as ``CORE-2012``) wins; an
unknown ErrCode falls back to the ProcReturnCode; a bare ProcReturnCode ``51`` means
``ISO8583-51``; ``99`` alone (17 rows share it) gives :data:`PLATFORM_REJECTION`, a generic
entry that is not in the guide. ``00`` (approved) and codes absent from the table give
``None``; :func:`shopper_message` and :func:`merchant_message` still answer for them, with
the generic decline text and a "not in the table" note respectively.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from cmi_core.errors import ValidationError

__all__ = [
    "ERROR_CODES",
    "LANGUAGES",
    "LANGUAGE_CHOICES",
    "PLATFORM_REJECTION",
    "ArSource",
    "ErrorCode",
    "Lang",
    "ShopperText",
    "lookup",
    "merchant_message",
    "shopper_message",
]

Lang = Literal["fr", "en", "ar"]
ArSource = Literal["guide", "ours"]

#: CMI's page languages (guide §4.1.1, ``lang``): the one list every module uses.
LANGUAGES: tuple[Lang, ...] = ("fr", "en", "ar")
_LANGS = LANGUAGES
#: Each language named in itself, for the lists a person picks one from (Saleor's channel
#: settings, Wagtail's site settings): ``(code, name)`` pairs in :data:`LANGUAGES`' order.
LANGUAGE_CHOICES: tuple[tuple[Lang, str], ...] = (
    ("fr", "Français"),
    ("en", "English"),
    ("ar", "العربية"),
)


@dataclass(frozen=True, slots=True)
class ShopperText:
    """A shopper-facing message in CMI's three page languages (guide §4.1.1, ``lang``)."""

    en: str
    fr: str
    ar: str
    #: True when the text names the precise reason (see the module docstring's list).
    precise: bool = False

    def get(self, lang: Lang) -> str:
        return {"en": self.en, "fr": self.fr, "ar": self.ar}[lang]


# The three generic shopper texts (guide §3.1: never the exact reason of a decline).
DECLINED = ShopperText(
    en="Your payment was declined. Please contact your bank, or try again with another card.",
    fr=(
        "Votre paiement a été refusé. Veuillez contacter votre banque "
        "ou réessayer avec une autre carte."
    ),
    ar="تم رفض عملية الدفع. يرجى الاتصال بالبنك الذي تتعامل معه أو إعادة المحاولة ببطاقة أخرى.",
)
TECHNICAL = ShopperText(
    en=(
        "The payment could not be completed because of a technical problem. "
        "Please try again in a few minutes, or use another card."
    ),
    fr=(
        "Le paiement n'a pas pu aboutir en raison d'un problème technique. "
        "Veuillez réessayer dans quelques minutes ou utiliser une autre carte."
    ),
    ar=(
        "تعذر إتمام عملية الدفع بسبب مشكلة تقنية. "
        "يرجى إعادة المحاولة بعد بضع دقائق أو استخدام بطاقة أخرى."
    ),
)
CANNOT_PROCESS = ShopperText(
    en="The payment could not be processed. Please try again later, or contact the merchant.",
    fr=(
        "Le paiement n'a pas pu être traité. Veuillez réessayer plus tard ou contacter le marchand."
    ),
    ar="تعذرت معالجة عملية الدفع. يرجى إعادة المحاولة لاحقاً أو الاتصال بالتاجر.",
)

# Precise shopper texts, only for the codes listed in the module docstring.
_SESSION_EXPIRED = ShopperText(
    en="Your payment session has expired. Please return to the merchant's website and try again.",
    fr="Votre session de paiement a expiré. Veuillez revenir sur le site du marchand et réessayer.",
    ar="انتهت صلاحية جلسة الدفع. يرجى العودة إلى موقع التاجر والمحاولة مرة أخرى.",
    precise=True,
)
_INTERRUPTED = ShopperText(
    en="The payment was interrupted. Please return to the merchant's website and try again.",
    fr="Le paiement a été interrompu. Veuillez revenir sur le site du marchand et réessayer.",
    ar="تمت مقاطعة عملية الدفع. يرجى العودة إلى موقع التاجر والمحاولة مرة أخرى.",
    precise=True,
)
_CARD_NUMBER = ShopperText(
    en="The card number is not valid. Please check it and try again.",
    fr="Le numéro de carte n'est pas valide. Veuillez le vérifier et réessayer.",
    ar="رقم البطاقة غير صالح. يرجى التحقق منه والمحاولة مرة أخرى.",
    precise=True,
)
_CARD_EXPIRED = ShopperText(
    en="Your card has expired. Please use another card.",
    fr="Votre carte est expirée. Veuillez utiliser une autre carte.",
    ar="انتهت صلاحية بطاقتك. يرجى استخدام بطاقة أخرى.",
    precise=True,
)
_WRONG_DATA = ShopperText(
    en="Some of the card details you entered are incorrect. Please check them and try again.",
    fr=(
        "Certaines informations de carte saisies sont incorrectes. "
        "Veuillez les vérifier et réessayer."
    ),
    ar="بعض بيانات البطاقة التي أدخلتها غير صحيحة. يرجى التحقق منها والمحاولة مرة أخرى.",
    precise=True,
)
_AUTH_FAILED = ShopperText(
    en="Card authentication (3-D Secure) failed. Please try again, or use another card.",
    fr=(
        "L'authentification de la carte (3-D Secure) a échoué. "
        "Veuillez réessayer ou utiliser une autre carte."
    ),
    ar="فشلت مصادقة البطاقة (3-D Secure). يرجى إعادة المحاولة أو استخدام بطاقة أخرى.",
    precise=True,
)
_AUTH_REQUIRED = ShopperText(
    en=(
        "This payment requires card authentication (3-D Secure). Please use a card "
        "enrolled in 3-D Secure, or contact your bank."
    ),
    fr=(
        "Ce paiement exige l'authentification de la carte (3-D Secure). Veuillez utiliser "
        "une carte inscrite à 3-D Secure ou contacter votre banque."
    ),
    ar=(
        "يتطلب هذا الدفع مصادقة البطاقة (3-D Secure). يرجى استخدام بطاقة مسجلة في "
        "خدمة 3-D Secure أو الاتصال بالبنك الذي تتعامل معه."
    ),
    precise=True,
)
_CARD_TYPE = ShopperText(
    en="This type of card is not accepted. Please use another card.",
    fr="Ce type de carte n'est pas accepté. Veuillez utiliser une autre carte.",
    ar="هذا النوع من البطاقات غير مقبول. يرجى استخدام بطاقة أخرى.",
    precise=True,
)
_CARD_BRAND = ShopperText(
    en="This card brand is not accepted. Please use another card.",
    fr="Cette marque de carte n'est pas acceptée. Veuillez utiliser une autre carte.",
    ar="هذه العلامة التجارية للبطاقة غير مقبولة. يرجى استخدام بطاقة أخرى.",
    precise=True,
)


@dataclass(frozen=True, slots=True)
class ErrorCode:
    """One row of guide §6.2.

    ``proc_return_code`` ("Error Code" column, ``99`` for platform rejections),
    ``system_code`` ("System Error Message", what callbacks carry as ``ErrCode`` and the API
    as ``Extra/ERRORCODE``), ``en``/``fr`` and ``comment`` exactly as the guide prints them;
    ``ar`` in Arabic, ``ar_source`` says who wrote it, ``guide_ar`` is the guide's own AR
    cell verbatim. ``shopper`` is the shopper-safe text (guide §3.1).
    """

    proc_return_code: str
    system_code: str
    en: str
    fr: str
    ar: str
    comment: str
    shopper: ShopperText
    ar_source: ArSource = "ours"
    guide_ar: str = ""

    def text(self, lang: Lang) -> str:
        """The precise text in ``lang`` (the guide's English and French, our Arabic)."""
        return {"en": self.en, "fr": self.fr, "ar": self.ar}[lang]


_BANK = "Rejet de la banque"
_PLATFORM = "Rejet de la plateforme"
_REJECTED_WITH_CARD = (
    "Payment authorization rejected with this card",
    "Autorisation de paiement rejetée avec cette carte",
    "تم رفض ترخيص الدفع بهذه البطاقة.",
)
_REJECTED = (
    "Payment authorization rejected",
    "Autorisation de paiement rejetée",
    "تم رفض ترخيص الدفع.",
)
_AUTH_FAILURE = (
    "Payment authorization failed",
    "Autorisation de paiement échouée",
    "فشل ترخيص الدفع.",
)
_FAILED_OP = ("Failed operation", "Opération échouée", "فشلت العملية.")
_OPERATION_FAILOR = ("Opertaion failor", "Echec de l'opération", "فشلت العملية.")

#: Every row of guide §6.2, in the guide's order.
ERROR_CODES: tuple[ErrorCode, ...] = (
    ErrorCode(
        "99",
        "3D-1004",
        "Wrong security code",
        "Code de sécurité erroné",
        "رمز الأمان غير صحيح.",
        "Rejet de la plateforme à cause d'erreur de calcul du code de hachage. Ceci peut "
        "arriver soit au niveau de la requête de demande de paiement, soit dans la requête "
        "de confirmation de paiement.",
        CANNOT_PROCESS,
    ),
    ErrorCode(
        "99",
        "3D-1005",
        *_OPERATION_FAILOR,
        "Rejet de la plateforme à cause d'échec d'authentification en ligne du client.",
        _AUTH_FAILED,
    ),
    ErrorCode(
        "99",
        "3D-1034",
        *_OPERATION_FAILOR,
        "Rejet de la plateforme à cause d'une fausse manipulation du client.",
        _INTERRUPTED,
    ),
    ErrorCode(
        "99",
        "BM-1002",
        "HOST based messaging problem",
        "HOST based messaging problem",
        "مشكلة في رسائل النظام المضيف.",
        "Message de réponse de l'acquéreur est invalide.",
        TECHNICAL,
        guide_ar="HOST",
    ),
    ErrorCode(
        "99",
        "BM-9101",
        *_FAILED_OP,
        "Timeout avec l'interface d'acquisition.",
        TECHNICAL,
    ),
    ErrorCode(
        "99",
        "BM-9102",
        *_FAILED_OP,
        "Timeout avec l'interface d'acquisition.",
        TECHNICAL,
    ),
    ErrorCode(
        "99",
        "CORE-2010",
        "The credit card is expired.",
        "La carte de crédit est expirée",
        "بطاقة الائتمان منتهية الصلاحية.",
        "Rejet de la plateforme pour motif d'utilisation de carte de paiement expirée.",
        _CARD_EXPIRED,
    ),
    ErrorCode(
        "99",
        "CORE-2012",
        "The credit card number is not in a valid format.",
        "Le format du numéro de carte de crédit n'est pas valide.",
        "صيغة رقم بطاقة الائتمان غير صالحة.",
        _PLATFORM,
        _CARD_NUMBER,
    ),
    ErrorCode(
        "99",
        "CORE-2202",
        *_FAILED_OP,
        "Rejet de la plateforme dû à une règle de contrôle. Exemple de règles de contrôle : "
        "Demande d'autorisation en cas de fallback de l'authentification 3D Secure.",
        DECLINED,
    ),
    ErrorCode(
        "99",
        "CORE-2208",
        "Card brand is not allowed.",
        "Marque de carte non autorisée.",
        "العلامة التجارية للبطاقة غير مسموح بها.",
        _PLATFORM,
        _CARD_BRAND,
    ),
    ErrorCode(
        "99",
        "CORE-2253",
        "The payment authorization could not be performed",
        "Impossible de procéder à l'autorisation de paiement",
        "تعذر إجراء ترخيص الدفع.",
        "Rejet de la plateforme dû à une règle de contrôle. Exemple de règles de contrôle : "
        "Utilisation d'une carte de paiement étrangère non authentifiable 3D Secure.",
        DECLINED,
    ),
    ErrorCode(
        "99",
        "CORE-2515",
        "Incorrect data",
        "Données incorrectes",
        "بيانات غير صحيحة.",
        "Rejet de la plateforme dû à des données erronées saisies par le client "
        "(exp. Format du CVV).",
        _WRONG_DATA,
    ),
    ErrorCode(
        "99",
        "CORE-5110",
        "Please return to the web site and try again",
        "Merci de retourner au site web et réessayer",
        "يرجى العودة إلى الموقع الإلكتروني والمحاولة مرة أخرى.",
        "Rejet de la plateforme à cause d'une fausse manipulation du client.",
        _INTERRUPTED,
    ),
    ErrorCode(
        "99",
        "RULE-0001",
        "Your session has expired. Please return to the merchant website and try again.",
        "Votre session a expiré. Merci de revenir au site marchand et réessayer.",
        "انتهت صلاحية جلستك. يرجى العودة إلى موقع التاجر والمحاولة مرة أخرى.",
        "CMI platform rejection due to session timeout.",
        _SESSION_EXPIRED,
        guide_ar=".",
    ),
    ErrorCode(
        "99",
        "RULE-0002",
        "Cardholder authentication required",
        "Authentification du porteur requise",
        "مصادقة حامل البطاقة مطلوبة.",
        "CMI platform rejection due to cardholder authentication lack.",
        _AUTH_REQUIRED,
    ),
    ErrorCode(
        "99",
        "RULE-0003",
        "Wrong card type",
        "Type de carte erroné",
        "نوع البطاقة غير صحيح.",
        "CMI platform rejection due to wrong card type use.",
        _CARD_TYPE,
    ),
    ErrorCode(
        "99",
        "RULE-0004",
        "Card not allowed",
        "Carte non permise",
        "البطاقة غير مسموح بها.",
        "CMI platform rejection due to not allowed card use.",
        DECLINED,
    ),
    ErrorCode(
        "03",
        "ISO8583-03",
        "Payment authorization not permitted for this merchant",
        "Autorisation de paiement non permise pour ce marchand",
        "ترخيص الدفع غير مسموح به لهذا التاجر.",
        _BANK,
        CANNOT_PROCESS,
    ),
    ErrorCode(
        "04",
        "ISO8583-04",
        *_REJECTED_WITH_CARD,
        "Rejet de la banque pour motif d'utilisation de carte de paiement volée.",
        DECLINED,
    ),
    ErrorCode(
        "05",
        "ISO8583-05",
        "Payment authorization declined",
        "Autorisation de paiement non acceptée",
        "لم يتم قبول ترخيص الدفع.",
        "Rejet de la banque sans précision du motif.",
        DECLINED,
    ),
    ErrorCode("12", "ISO8583-12", *_REJECTED, _BANK, DECLINED),
    ErrorCode(
        "13",
        "ISO8583-13",
        "INVALID AMOUNT",
        "Montant non valide",
        "مبلغ غير صالح.",
        _BANK,
        CANNOT_PROCESS,
    ),
    ErrorCode(
        "14",
        "ISO8583-14",
        "Payment authorization rejected with the used card",
        "Autorisation de paiement rejetée avec la carte utilisée",
        "تم رفض ترخيص الدفع بالبطاقة المستخدمة.",
        _BANK,
        DECLINED,
    ),
    ErrorCode("15", "ISO8583-15", *_AUTH_FAILURE, _BANK, DECLINED),
    ErrorCode(
        "39",
        "ISO8583-39",
        "No credit account",
        "Pas de compte de crédit",
        "لا يوجد حساب ائتمان.",
        _BANK,
        DECLINED,
    ),
    ErrorCode(
        "51",
        "ISO8583-51",
        "Insufficient funds.",
        "Solde de la carte insuffisant",
        "رصيد البطاقة غير كافٍ.",
        _BANK,
        DECLINED,
    ),
    ErrorCode(
        "54",
        "ISO8583-54",
        *_REJECTED_WITH_CARD,
        "Rejet de la banque pour motif d'utilisation de carte de paiement expirée ou erreur "
        "de saisie de la date d'expiration de la carte.",
        DECLINED,
    ),
    ErrorCode(
        "57",
        "ISO8583-57",
        "Payment authorization not permitted",
        "Autorisation de paiement non permise",
        "ترخيص الدفع غير مسموح به.",
        _BANK,
        DECLINED,
    ),
    ErrorCode(
        "61",
        "ISO8583-61",
        "Activity amount limit exceeded.",
        "Plafond dépassé",
        "تم تجاوز الحد الأقصى للمبلغ المسموح به.",
        _BANK,
        DECLINED,
    ),
    ErrorCode("62", "ISO8583-62", *_REJECTED_WITH_CARD, _BANK, DECLINED),
    ErrorCode(
        "63",
        "ISO8583-63",
        *_REJECTED_WITH_CARD,
        "Rejet de la banque pour des raisons de sécurité.",
        DECLINED,
    ),
    ErrorCode(
        "65",
        "ISO8583-65",
        "Activity limit exceeded.",
        "Plafond dépassé",
        "تم تجاوز الحد الأقصى لعدد العمليات المسموح به.",
        _BANK,
        DECLINED,
    ),
    ErrorCode(
        "82",
        "ISO8583-82",
        "CVV Failure or CVV Value supplied is not valid.",
        "Echec CVV ou valeur CVV fournie non valide.",
        "فشل التحقق من رمز CVV أو أن قيمة CVV المقدمة غير صالحة.",
        _BANK,
        DECLINED,
    ),
    ErrorCode("86", "ISO8583-86", *_REJECTED, _BANK, DECLINED),
    ErrorCode("90", "ISO8583-90", *_REJECTED, _BANK, DECLINED),
    ErrorCode(
        "91",
        "ISO8583-91",
        *_AUTH_FAILURE,
        "Timeout avec l'interface de la banque.",
        TECHNICAL,
    ),
    ErrorCode(
        "96",
        "ISO8583-96",
        *_AUTH_FAILURE,
        "Le traitement de l'opération a échoué",
        TECHNICAL,
    ),
)

#: ProcReturnCode ``99`` with no (known) ErrCode: a rejection by CMI's platform whose
#: precise reason is unknown. Not a row of the guide; its texts are ours.
PLATFORM_REJECTION = ErrorCode(
    "99",
    "",
    "Rejected by the CMI platform",
    "Rejet de la plateforme CMI",
    "رفض من طرف منصة CMI.",
    "Entrée générique (hors tableau §6.2) : ProcReturnCode 99 sans ErrCode connu.",
    DECLINED,
)

_BY_SYSTEM_CODE: dict[str, ErrorCode] = {row.system_code: row for row in ERROR_CODES}
_BY_PROC_RETURN_CODE: dict[str, ErrorCode] = {
    row.proc_return_code: row for row in ERROR_CODES if row.proc_return_code != "99"
}
_BY_PROC_RETURN_CODE["99"] = PLATFORM_REJECTION

# The guide's English typos, corrected for staff reading merchant_message (the row itself
# keeps the guide's text).
_EN_CORRECTIONS = {"Opertaion failor": "Operation failed"}

_UNKNOWN_CODE = {
    "en": "code not in CMI's error table (guide §6.2)",
    "fr": "code absent du tableau des erreurs du CMI (guide §6.2)",
    "ar": "رمز غير موجود في جدول أخطاء CMI (الدليل §6.2)",
}


def _normalize_proc_return_code(code: str | None) -> str:
    text = (code or "").strip()
    return text.zfill(2) if text.isdigit() else text


def lookup(proc_return_code: str | None = None, err_code: str | None = None) -> ErrorCode | None:
    """Find the guide §6.2 row for a result.

    ``err_code`` (a callback's ``ErrCode``, the API's ``Extra/ERRORCODE``) wins when it is
    in the table, compared without regard to case. Otherwise ``proc_return_code`` decides:
    ``51`` (or ``"5"``-style short forms) gives ``ISO8583-51``; ``99`` gives
    :data:`PLATFORM_REJECTION`. ``00`` (approved), an empty call and codes not in the table
    return ``None``.
    """
    system = (err_code or "").strip().upper()
    if system in _BY_SYSTEM_CODE:
        return _BY_SYSTEM_CODE[system]
    return _BY_PROC_RETURN_CODE.get(_normalize_proc_return_code(proc_return_code))


def _check_lang(lang: str) -> Lang:
    for known in _LANGS:
        if lang == known:
            return known
    raise ValidationError("lang", "'fr', 'en' or 'ar'")


def shopper_message(
    proc_return_code: str | None = None, err_code: str | None = None, lang: Lang = "fr"
) -> str:
    """A message safe to show the shopper, in ``lang`` (guide §3.1).

    Bank declines never name their reason; see the module docstring for the few codes
    that get a precise text. Unknown codes get the generic decline text.
    """
    checked = _check_lang(lang)
    row = lookup(proc_return_code, err_code)
    return (row.shopper if row is not None else DECLINED).get(checked)


def merchant_message(
    proc_return_code: str | None = None, err_code: str | None = None, lang: Lang = "en"
) -> str:
    """The precise text with its code, for staff and logs: ``"ISO8583-51: Insufficient funds."``.

    An ErrCode absent from the table is named as such, followed by what the
    ProcReturnCode says (``"CORE-9999: code not in CMI's error table (guide §6.2);
    99: Rejected by the CMI platform."``). Never show this text to the shopper.
    """
    checked = _check_lang(lang)
    row = lookup(proc_return_code, err_code)
    given = (err_code or "").strip().upper()
    proc = _normalize_proc_return_code(proc_return_code)
    parts: list[str] = []
    if given and given not in _BY_SYSTEM_CODE:
        parts.append(f"{given}: {_UNKNOWN_CODE[checked]}")
    if row is not None:
        text = row.text(checked)
        if checked == "en":
            text = _EN_CORRECTIONS.get(text, text)
        parts.append(f"{row.system_code or proc}: {text.rstrip('.')}")
    elif proc or not parts:
        parts.append(f"{proc or '?'}: {_UNKNOWN_CODE[checked]}")
    return "; ".join(parts) + "."
