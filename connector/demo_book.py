"""The demo's receivables: one realistic book per platform, and how its debtors behave as the days pass.

Every book holds Dutch, Belgian and UK debtors, businesses and consumers, a partial payment, a credit note, a
dispute, a promise to pay, a payment arrangement, a debtor without an e-mail address, one that pays after the
second reminder and one that never pays (and is handed off). And the business keeps trading: a new customer orders
every week of the demo (`new_sale`), so the last day's days sales outstanding has sales to divide by. Platform-neutral
data: each simulator books it its own way (`providers.simkit.Simulator.seed`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from providers.simkit import Book, BookDebtor, BookInvoice


@dataclass(frozen=True)
class Behaviour:
    """What a debtor does about one invoice during the demo."""

    pays_after_reminders: int | None = None
    """Pays the rest this many days after the platform mailed this many reminders for the invoice."""
    pays_on_day: int | None = None
    """Pays the rest on this day of the demo (0 = its first day)."""
    dispute: bool = False
    """Disputes the invoice on the first day (the bookkeeper records it with `dunning hold --dispute`)."""
    promise_day: int | None = None
    """Promises on the first day to pay by this day of the demo, and does."""
    instalment_days: tuple[int, ...] = ()
    """A payment arrangement agreed on the first day: equal instalments due on these days of the demo, each paid
    on its day."""


PAY_DELAY = 2
"""Days between the reminder that convinces a debtor and the payment arriving."""

_ORGANISATIONS = ("Drukkerij De Zuid B.V.", "Installatiebedrijf Noorderlicht B.V.", "Studio Kanaal B.V.")

# (key, name, kind, country, e-mail domain or None, street, postcode, city, KvK, VAT, contact person)
_DEBTORS = (
    ("slow", "Bakkerij Van Dam B.V.", "business", "NL", "vandam.example", "Kerkstraat 12", "1017 GC", "Amsterdam",
     "34123456", "NL001234567B01", "Ria van Dam"),
    ("never", "Transport Jansen B.V.", "business", "NL", "jansentransport.example", "Havenweg 3", "3011 AD",
     "Rotterdam", "24111222", "NL002345678B01", None),
    ("partial", "Brouwerij Het Anker BV", "business", "BE", "hetanker.example", "Meir 45", "2000", "Antwerpen",
     None, "BE0412345678", "Koen Maes"),
    ("credit", "Thames Print Ltd", "business", "GB", "thamesprint.example", "12 Fleet Street", "EC4Y 1AA",
     "London", None, "GB123456789", None),
    ("no-email", "Sanne de Vries", "consumer", "NL", None, "Dorpsstraat 7", "3511 CE", "Utrecht", None, None, None),
    ("on-time", "Pieter Bakker", "consumer", "NL", "mail.example", "Stationsweg 21", "5611 AZ", "Eindhoven", None,
     None, None),
    ("dispute", "Lien Peeters", "consumer", "BE", "mail.example", "Veldstraat 8", "9000", "Gent", None, None, None),
    ("promise", "Hoveniersbedrijf Groen V.O.F.", "business", "NL", "groenhoveniers.example", "Tuinlaan 4",
     "7511 JR", "Enschede", "06123456", "NL003456789B01", None),
    ("arrangement", "Schildersbedrijf Kwast", "business", "NL", "kwast.example", "Verfstraat 2", "1012 AB",
     "Amsterdam", "33987654", "NL004567890B01", "Henk Kwast"),
    ("first-reminder", "Architectenbureau Lijn B.V.", "business", "NL", "lijn.example", "Keizersgracht 100",
     "1015 CJ", "Amsterdam", "41234567", "NL005678901B01", None),
)


def _invoices(key: str, start: date, scale: Decimal) -> tuple[BookInvoice, ...]:
    def invoice(suffix: str, net: str, age: int, due_days: int, **extra: Decimal) -> BookInvoice:
        return BookInvoice(f"{key}-{suffix}", (Decimal(net) * scale).quantize(Decimal("0.01")),
                           start - timedelta(days=age), due_days, **extra)

    return {
        "slow": (invoice("1", "1840.00", 40, 14),),
        "never": (invoice("1", "2950.00", 45, 14), invoice("2", "615.50", 38, 14)),
        "partial": (invoice("1", "1200.00", 35, 14, paid=Decimal("600.00")),),
        "credit": (invoice("1", "980.00", 30, 14, credited=Decimal("121.00")),),
        "no-email": (invoice("1", "145.00", 30, 14),),
        "on-time": (invoice("1", "320.00", 3, 14),),
        "dispute": (invoice("1", "410.00", 33, 14),),
        "promise": (invoice("1", "760.00", 44, 30),),
        "arrangement": (invoice("1", "3600.00", 50, 30),),
        "first-reminder": (invoice("1", "1275.00", 28, 14), invoice("2", "430.00", 20, 14)),
    }[key]


def demo_book(index: int, start: date) -> Book:
    """The book of the `index`th platform (0, 1, 2, …): the same story, other names and amounts."""
    scale = _scale(index)
    debtors = []
    for key, name, kind, country, domain, street, postcode, city, kvk, vat, person in _DEBTORS:
        slug = f"{key}-{index}"
        shown = name if index == 0 else f"{name.split(' ')[0]} {_TOWNS[index % len(_TOWNS)]} {name.split(' ', 1)[1]}" \
            if kind == "business" else f"{_FIRST[index % len(_FIRST)]} {name.split(' ', 1)[1]}"
        email = None if domain is None else (
            f"debiteuren@{domain}" if kind == "business" else f"{shown.split()[0].lower()}.{index}@{domain}")
        debtors.append(BookDebtor(
            key=slug, name=shown, kind=kind, country=country, email=email,  # type: ignore[arg-type]
            street=street, postcode=postcode, city=city, phone=f"+31 20 555 {index}{len(debtors):03d}",
            kvk=kvk, vat_number=vat, contact_person=person,
            invoices=tuple(_rekey(i, slug) for i in _invoices(key, start, scale)),
        ))
    return Book(organisation=_ORGANISATIONS[index % len(_ORGANISATIONS)], debtors=tuple(debtors))


SALE_EVERY = 7
"""Days between two new customers' orders (the first on the demo's first day)."""
SALE_TERM = 14
"""The payment term of a new order, in days."""

# (name, street, postcode, city, KvK, VAT, net amount) of the customers who order during the demo, taken in turn
_NEW_CUSTOMERS = (
    ("Fietsenmakerij Spaak B.V.", "Spoorstraat 9", "2011 KA", "Haarlem", "34567890", "NL006789012B01", "1480.00"),
    ("Kantoorinrichting Hoek B.V.", "Markt 14", "5211 JX", "'s-Hertogenbosch", "16123987", "NL007890123B01",
     "2260.00"),
    ("Bloemisterij Tulp V.O.F.", "Lisserweg 201", "2165 AS", "Lisserbroek", "28114455", "NL008901234B01", "640.00"),
    ("Koffiebranderij Boon B.V.", "Oudegracht 88", "3511 AV", "Utrecht", "30221144", "NL009012345B01", "1915.00"),
    ("Loodgietersbedrijf Straal", "Vismarkt 3", "9711 KR", "Groningen", "02233445", "NL010123456B01", "870.00"),
    ("Reclamebureau Blik B.V.", "Stationsplein 5", "6811 KL", "Arnhem", "09112233", "NL011234567B01", "3120.00"),
)


def new_sale(index: int, day: int, today: date) -> Book | None:
    """The order a new customer places on `day` of the demo in the `index`th platform's book (one every
    `SALE_EVERY` days, invoiced that day with a 14-day term), or None on the other days."""
    if day % SALE_EVERY:
        return None
    number = day // SALE_EVERY
    name, street, postcode, city, kvk, vat, net = _NEW_CUSTOMERS[(number + index) % len(_NEW_CUSTOMERS)]
    key = f"sale-{index}-{number}"
    domain = name.split()[0].lower()
    debtor = BookDebtor(
        key=key, name=name, kind="business", country="NL", email=f"administratie@{domain}.example", street=street,
        postcode=postcode, city=city, phone=f"+31 30 555 {index}{number:03d}", kvk=kvk, vat_number=vat,
        invoices=(BookInvoice(f"{key}-1", (Decimal(net) * _scale(index)).quantize(Decimal("0.01")), today, SALE_TERM),),
    )
    return Book(organisation=_ORGANISATIONS[index % len(_ORGANISATIONS)], debtors=(debtor,))


def sale_behaviour(day: int) -> Behaviour:
    """How the customer who ordered on `day` pays: most within the term; every third one only once two reminders
    reached it (the notice before the due date and the first reminder, or two reminders where the platform refuses
    the notice before the due date)."""
    if (day // SALE_EVERY) % 3 == 2:
        return Behaviour(pays_after_reminders=2)
    return Behaviour(pays_on_day=day + SALE_TERM - 2)


def _scale(index: int) -> Decimal:
    """The `index`th platform's amounts: the same story, each book a tenth larger than the one before."""
    return Decimal(1) + Decimal(index) / 10


_TOWNS = ("Noord", "Zuid", "West")
_FIRST = ("Sanne", "Daan", "Noor")


def _rekey(invoice: BookInvoice, slug: str) -> BookInvoice:
    return BookInvoice(f"{slug}-{invoice.key.rsplit('-', 1)[1]}", invoice.net, invoice.issued, invoice.due_days,
                       invoice.vat_rate, invoice.currency, invoice.paid, invoice.credited)


def behaviours(index: int) -> dict[str, Behaviour]:
    """Each invoice's behaviour by its book key (invoices not named are never paid)."""
    i = index
    return {
        f"slow-{i}-1": Behaviour(pays_after_reminders=2),
        f"first-reminder-{i}-1": Behaviour(pays_after_reminders=1),
        f"first-reminder-{i}-2": Behaviour(pays_after_reminders=1),
        f"partial-{i}-1": Behaviour(pays_after_reminders=1),
        f"credit-{i}-1": Behaviour(pays_on_day=20 + i),
        f"on-time-{i}-1": Behaviour(pays_on_day=9 + i),
        f"dispute-{i}-1": Behaviour(dispute=True),
        f"promise-{i}-1": Behaviour(promise_day=12 + i),
        f"arrangement-{i}-1": Behaviour(instalment_days=(7, 37, 67)),
    }
