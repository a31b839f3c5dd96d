"""The canonical model accepts what platforms really send and refuses what cannot be right, naming the invoice."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from connector.models import Address, Debtor, DebtorKind, Event, EventKind, Invoice


def invoice(**changes: object) -> Invoice:
    fields: dict[str, object] = dict(
        connection="acme",
        platform_id="inv-1",
        number="F2026-0042",
        debtor_id="c-1",
        issue_date=date(2026, 10, 1),
        due_date=date(2026, 10, 31),
        currency="EUR",
        total="1210.00",
        amount_paid="210.00",
        outstanding="1000.00",
        status="AUTHORISED",
    )
    fields.update(changes)
    return Invoice(**fields)  # type: ignore[arg-type]


def test_a_good_invoice_keeps_exact_decimal_amounts() -> None:
    inv = invoice(total="0.10", amount_paid="0", outstanding="0.10")
    assert inv.total == Decimal("0.10") and isinstance(inv.total, Decimal)
    assert inv.outstanding + inv.outstanding + inv.outstanding == Decimal("0.30")
    assert inv.is_collectable


def test_money_as_float_is_refused_naming_the_invoice() -> None:
    with pytest.raises(ValidationError, match=r"invoice F2026-0042: total: .*not a float"):
        invoice(total=1210.0)


def test_unknown_currency_is_refused_naming_the_invoice() -> None:
    with pytest.raises(ValidationError, match=r"invoice F2026-0042: currency: unknown currency 'EURO'"):
        invoice(currency="EURO")


def test_currency_is_normalised_to_the_iso_code() -> None:
    assert invoice(currency=" gbp ").currency == "GBP"


def test_outstanding_above_total_is_refused_for_an_invoice() -> None:
    with pytest.raises(ValidationError, match=r"invoice F2026-0042: .*outstanding 1500.00 exceeds the total 1210.00"):
        invoice(outstanding="1500.00")


def test_a_credit_note_may_carry_a_negative_total_and_is_never_collectable() -> None:
    credit = invoice(is_credit_note=True, total="-121.00", amount_paid="0", outstanding="-121.00")
    assert not credit.is_collectable


def test_an_invoice_without_number_is_named_by_its_platform_id() -> None:
    with pytest.raises(ValidationError, match=r"invoice id inv-1: currency"):
        invoice(number=None, currency="???")


def test_due_before_issue_is_allowed_but_flagged() -> None:
    inv = invoice(issue_date=date(2026, 11, 5), due_date=date(2026, 11, 1))
    assert inv.anomalies == ("invoice F2026-0042: due date 2026-11-01 is before its issue date 2026-11-05",)
    assert invoice().anomalies == ()


def test_models_are_immutable() -> None:
    inv = invoice()
    with pytest.raises(ValidationError):
        inv.outstanding = Decimal("0")  # type: ignore[misc]


def test_last_modified_must_be_aware() -> None:
    assert invoice(last_modified=datetime(2026, 11, 1, 10, tzinfo=UTC)).last_modified is not None
    with pytest.raises(ValidationError, match="time zone"):
        invoice(last_modified=datetime(2026, 11, 1, 10))


def test_not_a_number_is_refused() -> None:
    with pytest.raises(ValidationError, match="finite"):
        invoice(total="NaN")


@given(st.decimals(min_value=Decimal("-1e9"), max_value=Decimal("1e9"), places=2, allow_nan=False, allow_infinity=False))
def test_any_two_decimal_amount_round_trips_exactly(amount: Decimal) -> None:
    inv = invoice(total=str(amount), amount_paid="0", outstanding=str(amount))
    assert inv.outstanding == amount
    assert Invoice.model_validate_json(inv.model_dump_json()).outstanding == amount


def test_debtor_normalises_contact_details() -> None:
    debtor = Debtor(
        connection="acme",
        platform_id="c-1",
        name="Bakkerij De Korenschoof B.V.",
        kind=DebtorKind.BUSINESS,
        emails=(" admin@korenschoof.nl ", ""),
        address=Address(lines=("Dorpsstraat 1",), postal_code="1234 AB", city="Utrecht", country="nl"),
        language="NL-nl",
    )
    assert debtor.emails == ("admin@korenschoof.nl",)
    assert debtor.address.country == "NL"
    assert debtor.language == "nl"


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [("emails", ("not-an-address",), "is not an e-mail address"), ("name", "", "at least 1 character")],
)
def test_debtor_refuses_impossible_values(field: str, value: object, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        Debtor(**{"connection": "acme", "platform_id": "c-1", "name": "X", "kind": "business", field: value})  # type: ignore[arg-type]


def test_debtor_refuses_an_unknown_country() -> None:
    with pytest.raises(ValidationError, match="unknown country 'XX'"):
        Address(country="XX")


def test_history_event_kinds_are_closed_set() -> None:
    assert Event(kind="reminder_sent", on=date(2026, 11, 2), step="reminder_1").kind is EventKind.REMINDER_SENT
    with pytest.raises(ValidationError):
        Event(kind="teleported", on=date(2026, 11, 2))


def test_debtor_addresses_are_checked_with_pydantics_email_type():
    from ..conftest import make_debtor

    assert make_debtor(emails=(" facturen@bakkerij.example ",)).emails == ("facturen@bakkerij.example",)
    for bad in ("facturen@bakkerij", "facturen@@bakkerij.nl", "facturen bakkerij.nl"):
        with pytest.raises(ValidationError, match="is not an e-mail address"):
            make_debtor(emails=(bad,))
