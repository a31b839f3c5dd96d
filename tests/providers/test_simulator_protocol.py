"""Every installed simulator keeps the `Simulator` protocol: the demo and the job's tests drive each platform the
same way (seed a book, pay, move the days, read the mail log, consent) without naming one.

Each is checked through its real adapter: what the simulator seeds must come out of a sync with the amounts the
book says, and a payment recorded through the protocol must close the invoice at the next sync.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from connector import plugins
from connector.store import Store
from connector.sync import sync_connection
from providers.base import ConnectionSettings, Provider, Token
from providers.simkit import Book, BookDebtor, BookInvoice, Simulator, VirtualClock
from providers.tokens import MemoryTokenStore

START = datetime(2026, 9, 1, 7, 0, tzinfo=UTC)
BOOK = Book(
    organisation="Drukkerij Voorbeeld B.V.",
    debtors=(
        BookDebtor("bakker", "Bakkerij Van Dam B.V.", "business", "NL", "facturen@vandam.example", "Kerkstraat 1",
                   "1017 GC", "Amsterdam", phone="+31 20 555 0101", kvk="34123456", vat_number="NL001234567B01",
                   invoices=(BookInvoice("bakker-1", Decimal("1000.00"), date(2026, 7, 1), due_days=30,
                                         paid=Decimal("200.00")),
                             BookInvoice("bakker-2", Decimal("250.00"), date(2026, 8, 1), due_days=14))),
        BookDebtor("peeters", "Lien Peeters", "consumer", "BE", None, "Meir 10", "2000", "Antwerpen",
                   invoices=(BookInvoice("peeters-1", Decimal("100.00"), date(2026, 8, 10), due_days=14),)),
    ),
)


def simulators() -> list[str]:
    return plugins.names(plugins.SIMULATORS)


@pytest.fixture(params=simulators())
def platform(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def connect(simulator: Simulator, platform: str, tenant: str) -> Provider:
    provider_class = plugins.provider_class(platform)
    redirect = "https://localhost:8765/callback"
    simulator.register_app("demo-app", "demo-secret", redirect)
    settings = ConnectionSettings(name="books", provider=platform, tenant=tenant, client_id="demo-app",
                                  client_secret="demo-secret", redirect_uri=redirect)  # type: ignore[arg-type]
    scopes = " ".join(provider_class.oauth(settings).scopes) or None
    tokens = MemoryTokenStore()
    answer = simulator.consent_tokens("demo-app", scope=scopes, tenant=tenant)
    tokens.save("books", Token.from_response(answer, now=simulator.clock.now()))
    return provider_class.connect(settings, tokens=tokens, transport=simulator.transport(),
                                  clock=simulator.clock.time, sleep=simulator.clock.sleep)


def test_every_simulator_implements_the_protocol(platform: str) -> None:
    simulator = plugins.simulator_class(platform).empty(VirtualClock(START))
    assert isinstance(simulator, Simulator)
    assert simulator.platform == platform


def test_a_seeded_book_syncs_with_its_amounts_and_a_payment_closes_an_invoice(platform: str, tmp_path: Path) -> None:
    clock = VirtualClock(START)
    simulator = plugins.simulator_class(platform).empty(clock)
    seeded = simulator.seed(BOOK)
    assert set(seeded.invoices) == {"bakker-1", "bakker-2", "peeters-1"}

    with Store.open(f"sqlite:///{tmp_path / 's.sqlite'}", clock=clock.now) as store:
        store.ensure_connection("books", platform, seeded.tenant)
        provider = connect(simulator, platform, seeded.tenant)
        try:
            assert sync_connection(store, provider, "books").ok
            first = store.invoice("books", seeded.invoices["bakker-1"])
            assert first is not None and first.outstanding == Decimal("1010.00")  # 1210.00 less 200.00 paid
            consumer = store.invoice("books", seeded.invoices["peeters-1"])
            assert consumer is not None and consumer.outstanding == Decimal("121.00")
            debtor = store.debtor("books", consumer.debtor_id)
            assert debtor is not None and not debtor.emails  # the missing e-mail address stays missing

            simulator.advance_to(START + timedelta(days=1))
            simulator.record_payment(seeded.invoices["bakker-2"])
            assert clock.now() == START + timedelta(days=1)
            assert sync_connection(store, provider, "books").ok
        finally:
            provider.close()
        paid = store.invoice("books", seeded.invoices["bakker-2"])
        assert paid is not None and not paid.is_open
    assert simulator.sent_mail() == []


def test_the_simulator_consents_by_itself_and_redirects_with_a_code(platform: str) -> None:
    simulator = plugins.simulator_class(platform).empty(VirtualClock(START))
    simulator.seed(BOOK)
    redirect = "https://localhost:8765/callback"
    simulator.register_app("demo-app", "demo-secret", redirect)
    url = ("http://127.0.0.1/authorize?response_type=code&client_id=demo-app&state=s1&scope=sales_invoices"
           f"&redirect_uri={redirect}")
    authorize = simulator.connection_urls("http://127.0.0.1:9").get("authorize_url")
    path = urlsplit(authorize).path if authorize else {"moneybird": "/oauth/authorize",
                                                         "exact": "/api/oauth2/auth"}[platform]
    location = simulator.approve(url.replace("/authorize", path, 1))
    query = parse_qs(urlsplit(location).query)
    assert location.startswith(redirect) and query["state"] == ["s1"] and query["code"]
