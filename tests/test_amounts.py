from decimal import Decimal

import pytest

from caisse_ap_ip.amounts import (
    AmountError,
    currency_from_code,
    encode_amount,
    format_minor_units,
    parse_amount,
    to_minor_units,
)


@pytest.mark.parametrize(
    ("amount", "currency", "cb"),
    [
        ("112.45", "EUR", "11245"),
        ("0.05", "EUR", "05"),
        ("-20", "EUR", "2000"),
        ("1,50", "eur", "150"),
        ("1500", "JPY", "1500"),
        ("1000", "XPF", "1000"),
        ("1.234", "TND", "1234"),
        ("9999999999.99", "EUR", "999999999999"),
        ("12", "978", "1200"),
    ],
)
def test_amounts_become_exact_minor_units(amount, currency, cb):
    assert encode_amount(to_minor_units(parse_amount(amount), currency_from_code(currency))) == cb


@pytest.mark.parametrize(
    ("amount", "currency", "message"),
    [
        ("0", "EUR", "must not be zero"),
        ("0.001", "EUR", "more decimals than EUR allows"),
        ("1.5", "JPY", "more decimals than JPY allows"),
        ("10000000000", "EUR", "exceeds the protocol maximum of 9999999999.99 EUR"),
        ("abc", "EUR", "not a number"),
        ("inf", "EUR", "not a number"),
        ("1", "ZZZ", "unknown currency"),
        ("1", "XAU", "no minor unit"),
    ],
)
def test_bad_amounts_are_refused_with_a_reason(amount, currency, message):
    with pytest.raises(AmountError, match=message):
        to_minor_units(parse_amount(amount), currency_from_code(currency))


def test_no_float_rounding_creeps_in():
    assert to_minor_units(Decimal("0.29"), currency_from_code("EUR")) == 29  # 0.29 * 100 == 28.999... as a float
    assert format_minor_units(11245, currency_from_code("EUR")) == "112.45 EUR"
    assert format_minor_units(5, currency_from_code("JPY")) == "5 JPY"
