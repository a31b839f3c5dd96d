"""A realistic book at the handoff step: a Dutch business and a Dutch consumer whose invoices went through the
whole escalation (reminders, a call, a notice of default / 14-day letter), with part payments, a dispute that was
released, a payment arrangement that broke, call notes and the outbox rows the delivery kept."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from connector.config import Config, parse_config
from connector.models import Event, EventKind
from connector.store import Store
from providers.base import SyncPage

from ...conftest import FakeProvider, make_debtor, make_invoice

AS_OF = date(2026, 9, 30)
LETTER_KEY = "acme:reminder:C1:notice_of_default"
LETTER_BODY = (
    "Beste mevrouw Jansen,\n\nOndanks onze herinneringen heeft u het onderstaande bedrag van € 800,00 niet betaald.\n"
    "U kunt dit bedrag nog zonder extra kosten betalen binnen veertien dagen na de dag waarop deze brief bij u is "
    "bezorgd.\n\nBetaalt u niet binnen die termijn, dan moet u ook incassokosten betalen. Die bedragen € 120,00."
)


def sent(on: date, step: str, key: str, *, channel: str = "platform_mail", **extra: Any) -> Event:
    """A reminder as the delivery records it (flat receipt fields and the outbox key)."""
    data = {"key": key, "channel": channel, "recipients": ["debiteuren@example.nl"],
            "detail": "sent by the platform", "platform_reference": f"ref-{key}"} | extra
    return Event(kind=EventKind.REMINDER_SENT, on=on, step=step, data=data)


def paid(on: date, amount: str, outstanding: str) -> Event:
    return Event(kind=EventKind.PAYMENT_SEEN, on=on, data={"amount": amount, "outstanding": outstanding,
                                                             "currency": "EUR"})


def config_for(tmp_path: Path, **handoff: Any) -> Config:
    raw = {
        "creditor": {
            "name": "Acme Installaties B.V.", "address_lines": ["Damrak 1"], "postal_code": "1012 LG",
            "city": "Amsterdam", "country": "NL", "coc_number": "87654321", "vat_number": "NL004495445B01",
            "iban": "NL91 ABNA 0417 1643 00", "email": "debiteuren@acme.nl", "phone": "+31 20 123 4567",
        },
        "connections": [{"name": "acme", "provider": "fake", "tenant": "T1", "client_id": "app"}],
        "handoff": {"agency": "generic-json", "out_dir": str(tmp_path / "handoff")} | handoff,
    }
    config = parse_config(raw)
    config._path = tmp_path / "dunning.toml"
    return config


def seed_book(store: Store) -> None:
    """B1 (business): 1,210.00 due 2026-06-20, 210.00 paid on 2026-07-20 (the platform's payment date).
    C1 (consumer): 800.00 due 2026-07-01, 200.00 paid within the 14-day term (2026-08-28), 100.00 after it
    (2026-09-10)."""
    store.ensure_connection("acme", "fake", "T1")
    business = make_debtor("B1", name="Bakkerij De Vries B.V.", contact_person="Anna de Vries", phone="020 555 0101",
                           vat_number="NL123456789B01", language="nl")
    consumer = make_debtor("C1", name="J. Jansen", kind="consumer", coc_number=None, phone="+31 6 1234 5678",
                           emails=("j.jansen@example.nl",),
                           address={"lines": ("Dorpsstraat 12",), "postal_code": "1234 AB", "city": "Hoorn",
                                    "country": "NL"})
    b_invoice = make_invoice("IB1", number="2026-0101", debtor_id="B1", issue_date=date(2026, 5, 21),
                             due_date=date(2026, 6, 20), total=Decimal("1210.00"), amount_paid=Decimal("210.00"),
                             outstanding=Decimal("1000.00"), status="late", reference="Broodovens onderhoud",
                             payments=({"on": date(2026, 7, 20), "amount": Decimal("210.00")},))
    c_invoice = make_invoice("IC1", number="2026-0102", debtor_id="C1", issue_date=date(2026, 6, 1),
                             due_date=date(2026, 7, 1), total=Decimal("800.00"), amount_paid=Decimal("300.00"),
                             outstanding=Decimal("500.00"), status="late")
    store.write_sync_page("acme", SyncPage(debtors=(business, consumer), invoices=(b_invoice, c_invoice)))

    for event in (
        sent(date(2026, 6, 21), "reminder_1", "k-b-r1"),
        sent(date(2026, 6, 26), "reminder_2", "k-b-r2"),
        Event(kind=EventKind.HOLD_SET, on=date(2026, 6, 28),
              data={"hold": "dispute", "reason": "says ovens not serviced"}),
        Event(kind=EventKind.HOLD_RELEASED, on=date(2026, 6, 30), data={"hold": "dispute"}),
        sent(date(2026, 7, 1), "final_reminder", "k-b-fr"),
        Event(kind=EventKind.TASK_CREATED, on=date(2026, 7, 6), step="call", data={"kind": "call", "reason": "call"}),
        Event(kind=EventKind.NOTE, on=date(2026, 7, 7), data={"text": "=HYPERLINK(\"http://evil\") promised to pay"}),
        paid(date(2026, 7, 23), "210.00", "1000.00"),  # sync saw it 3 days after the platform's payment date
        sent(date(2026, 7, 20), "written_reminder", "k-b-wr"),
        sent(date(2026, 8, 5), "notice_of_default", "k-b-nod"),
    ):
        store.append_event("acme", "IB1", event)

    for event in (
        sent(date(2026, 7, 2), "reminder_1", "k-c-r1"),
        sent(date(2026, 7, 7), "reminder_2", "k-c-r2"),
        Event(kind=EventKind.ARRANGEMENT_SET, on=date(2026, 7, 10),
              data={"instalments": [{"due": "2026-07-20", "amount": "400.00"},
                                    {"due": "2026-08-20", "amount": "400.00"}], "outstanding": "800.00"}),
        Event(kind=EventKind.ARRANGEMENT_ENDED, on=date(2026, 7, 27)),
        sent(date(2026, 7, 31), "written_reminder", "k-c-wr"),
        sent(date(2026, 8, 20), "notice_of_default", LETTER_KEY, recipients=["j.jansen@example.nl"]),
        paid(date(2026, 8, 28), "200.00", "600.00"),
        paid(date(2026, 9, 10), "100.00", "500.00"),
    ):
        store.append_event("acme", "IC1", event)

    letter = store.outbox_add("acme", "reminder", LETTER_KEY, {
        "action": {"step": "notice_of_default", "costs_if_unpaid": "120.00", "pay_by": "2026-09-05"},
        "subject": "Laatste aanmaning: factuur 2026-0102", "body": LETTER_BODY,
    })
    store.outbox_complete(letter.id, "sent", receipt={
        "mail": {"sent_at": "2026-08-20T08:15:00+00:00", "recipients": ["j.jansen@example.nl"]}})


class PdfPlatform:
    """The platform's invoice PDFs, as `Provider.fetch_pdf` gives them."""

    def __init__(self) -> None:
        self.fetched: list[str] = []

    def __call__(self, connection: str) -> Any:
        def fetch(invoice: Any) -> bytes:
            self.fetched.append(invoice.platform_id)
            return b"%PDF-1.4 invoice " + invoice.platform_id.encode() + b"\n%%EOF\n"
        return fetch


class StoreClock:
    def __init__(self) -> None:
        self.now = datetime(2026, 9, 30, 6, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def book(store_url: str, fake_provider: type[FakeProvider]) -> Iterator[Store]:
    with Store.open(store_url, clock=StoreClock()) as store:
        seed_book(store)
        yield store
