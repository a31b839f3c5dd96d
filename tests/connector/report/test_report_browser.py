"""The report in a real headless Chromium: it loads offline without errors, and its figures are the store's.

Screenshots are kept under tests/artefacts/ (git-ignored) for a person to look at; the path is printed.
"""

from __future__ import annotations

import os
from collections import defaultdict
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from connector.escalation.policy import Policy
from connector.report import build_report
from connector.store import Store, schema
from tests.connector.report.book import AS_OF, BIGGEST, seed

CHROMIUM = "/usr/bin/chromium"
LAUNCH_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", "--no-first-run"]
ARTEFACTS = Path(__file__).resolve().parents[2] / "artefacts"

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def chromium() -> Any:
    if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
        pytest.skip(f"{CHROMIUM} is not installed (Debian package chromium); CI=true makes this a failure")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=LAUNCH_ARGS, headless=True)
        yield browser
        browser.close()


def _expected(store: Store) -> dict[tuple[str, str], dict[str, Any]]:
    """The figures computed straight from the tables, independently of the report's code."""
    i = schema.invoices.c
    d = schema.debtors.c
    with store.engine.connect() as conn:
        rows = conn.execute(select(i.connection, i.currency, i.debtor_id, i.issue_date, i.total, i.outstanding,
                                   i.is_open, i.is_credit_note)).all()
        names = {(row.connection, row.platform_id): row.name for row in conn.execute(select(d.connection,
                                                                                            d.platform_id, d.name))}
    found: dict[tuple[str, str], dict[str, Any]] = defaultdict(
        lambda: {"aging": Decimal(0), "owed": defaultdict(Decimal), "sales": Decimal(0)})
    for row in rows:
        book = found[(row.connection, row.currency)]
        if row.is_open and (row.is_credit_note or row.outstanding > 0):  # a credit note counts against the debt
            owed = -abs(row.outstanding) if row.is_credit_note else row.outstanding
            book["aging"] += owed
            book["owed"][row.debtor_id] += owed
        if AS_OF - timedelta(days=90) < row.issue_date <= AS_OF:
            book["sales"] += -abs(row.total) if row.is_credit_note else row.total
    for (connection, _currency), book in found.items():
        top = max(book["owed"].items(), key=lambda item: item[1])[0]
        book["top"] = names[(connection, top)]
        # no payment in the book is dated after AS_OF, so what is open now was owed on AS_OF
        book["dso"] = (book["aging"] / book["sales"] * 90).quantize(Decimal("0.1"))
    return found


@pytest.mark.parametrize("lang", ["nl", "en"])
def test_the_report_loads_offline_without_errors_and_shows_the_stores_figures(
    chromium, tmp_path, clock, lang, capsys
):
    url = f"sqlite:///{tmp_path / 'store.sqlite'}"
    out = tmp_path / "report.html"
    with Store.open(url, clock=clock) as store:
        seed(store, clock)
        build_report(store, Policy(), AS_OF, out, store_url=url, made_at=clock.now, lang=lang)
        expected = _expected(store)

    page = chromium.new_page()
    problems: list[str] = []
    requests: list[str] = []
    page.on("console", lambda message: problems.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(out.as_uri(), wait_until="load")

    ARTEFACTS.mkdir(exist_ok=True)
    shot = ARTEFACTS / f"report-{lang}.png"
    page.screenshot(path=str(shot), full_page=True)
    with capsys.disabled():
        print(f"\nreport screenshot: {shot}")

    books = page.eval_on_selector_all("section.book[data-connection]", """sections => sections.map(s => ({
        connection: s.dataset.connection, currency: s.dataset.currency,
        aging: s.querySelector('[data-figure=aging-total]').dataset.value,
        agingText: s.querySelector('[data-figure=aging-total]').textContent,
        top: s.querySelector('[data-figure=top-debtor] th').textContent,
        dso: s.querySelector('[data-figure=dso]').dataset.value,
        dsoText: s.querySelector('[data-figure=dso]').textContent,
        charts: s.querySelectorAll('figure svg').length,
        captions: [...s.querySelectorAll('figure')].every(f => f.querySelector('figcaption').textContent.length > 20),
    }))""")
    page.close()

    assert problems == []
    assert requests == [out.as_uri()]  # the page itself, nothing else
    assert {(b["connection"], b["currency"]) for b in books} == set(expected)
    for shown in books:
        want = expected[(shown["connection"], shown["currency"])]
        assert Decimal(shown["aging"]) == want["aging"]
        assert Decimal(shown["dso"]) == want["dso"]
        assert shown["top"] == want["top"]
        assert shown["charts"] >= 1 and shown["captions"]
    acme = next(b for b in books if b["connection"] == "acme")
    assert acme["top"] == BIGGEST
    if lang == "nl":
        assert acme["agingText"] == "€\xa018.434,00" and acme["dsoText"] == "391,7"
    else:
        assert acme["agingText"] == "€18,434.00" and acme["dsoText"] == "391.7"
