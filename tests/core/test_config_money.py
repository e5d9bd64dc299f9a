"""Configuration validation and secrecy; money parsing and formatting."""

from __future__ import annotations

from decimal import Decimal

import pytest

from cmi_core.config import CMIConfig
from cmi_core.errors import ConfigurationError, ValidationError
from cmi_core.money import (
    format_amount,
    from_minor_units,
    get_currency,
    parse_amount,
    to_minor_units,
)

SECRET = "S3cr3t-Store-Key"
PASSWORD = "Api-Pa55word"


def test_presets_and_override() -> None:
    test = CMIConfig(client_id="600000001", store_key=SECRET)
    assert test.gateway_url == "https://testpayment.cmi.co.ma/fim/est3dgate"
    assert test.api_url == "https://testpayment.cmi.co.ma/fim/api"
    prod = CMIConfig(client_id="600000001", store_key=SECRET, environment="production")
    assert prod.gateway_url == "https://payment.cmi.co.ma/fim/est3dgate"
    local = CMIConfig(client_id="1", store_key=SECRET, base_url="http://127.0.0.1:8765")
    assert local.api_url == "http://127.0.0.1:8765/fim/api"
    assert CMIConfig(client_id="1", store_key="k", currency="MAD").currency == "504"


def test_secrets_never_in_repr_or_errors() -> None:
    config = CMIConfig(
        client_id="600000001", store_key=SECRET, api_username="api", api_password=PASSWORD
    )
    assert SECRET not in repr(config)
    assert PASSWORD not in repr(config)
    with pytest.raises(ConfigurationError) as info:
        CMIConfig(client_id="600000001", store_key=SECRET, api_password=PASSWORD)
    assert PASSWORD not in str(info.value)
    assert SECRET not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "setting"),
    [
        ({"client_id": ""}, "client_id"),
        ({"client_id": "1234567890123456"}, "client_id"),
        ({"store_key": ""}, "store_key"),
        ({"store_key": " padded "}, "store_key"),
        ({"environment": "staging"}, "environment"),
        ({"base_url": "ftp://x"}, "base_url"),
        ({"environment": "production", "base_url": "http://x"}, "base_url"),
        ({"api_username": "only-user"}, "api_username"),
        ({"currency": "XYZ"}, "currency"),
        ({"lang": "es"}, "lang"),
        ({"capture_mode": "later"}, "capture_mode"),
        ({"session_timeout": 10}, "session_timeout"),
        ({"http_timeout": 0}, "http_timeout"),
    ],
)
def test_invalid_configuration_names_the_setting(kwargs: dict[str, object], setting: str) -> None:
    params: dict[str, object] = {"client_id": "600000001", "store_key": SECRET, **kwargs}
    with pytest.raises(ConfigurationError) as info:
        CMIConfig(**params)  # type: ignore[arg-type]
    assert info.value.setting == setting


def test_config_is_frozen() -> None:
    config = CMIConfig(client_id="600000001", store_key=SECRET)
    with pytest.raises(AttributeError):
        config.store_key = "x"  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "value"), [("29.95", "29.95"), ("29,95", "29.95"), ("100", "100"), (".5", "0.5")]
)
def test_parse_amount(text: str, value: str) -> None:
    assert parse_amount(text) == Decimal(value)


@pytest.mark.parametrize("text", ["", "-1", "1e3", "1,000.00", "NaN", "1.2.3", "١٢"])
def test_parse_amount_refuses(text: str) -> None:
    with pytest.raises(ValidationError):
        parse_amount(text)


def test_format_and_minor_units() -> None:
    mad, tnd, jpy = get_currency("504"), get_currency("TND"), get_currency(392)
    assert format_amount(Decimal("29.9"), mad) == "29.90"
    assert format_amount(Decimal("1.25"), tnd) == "1.250"
    assert format_amount(Decimal("1200"), jpy) == "1200"
    assert format_amount(Decimal("10.000"), mad) == "10.00"
    assert to_minor_units(Decimal("1.01"), mad) == 101
    assert from_minor_units("101", mad) == Decimal("1.01")
    assert from_minor_units(1250, tnd) == Decimal("1.250")
    with pytest.raises(ValidationError):
        format_amount(Decimal("0.001"), mad)


@pytest.mark.parametrize("text", ["9" * 40, "1" * 16])
def test_huge_amounts_are_refused_not_computed(text: str) -> None:
    with pytest.raises(ValidationError):
        format_amount(parse_amount(text), get_currency("504"))


def test_amount_below_the_bound_is_fine() -> None:
    assert format_amount(Decimal("1" * 14), get_currency("504")) == "1" * 14 + ".00"
