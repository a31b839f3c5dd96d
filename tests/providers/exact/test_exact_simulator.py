"""The simulator answers as Exact does: OData rules, paging, rate-limit headers, 429s, downloads, mutators."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from providers.exact.simulator import ExactSimulator
from providers.simkit import VirtualClock

from .conftest import DIVISION, REDIRECT

TERMS = f"/api/v1/{DIVISION}/sync/Cashflow/PaymentTerms"
BULK = f"/api/v1/{DIVISION}/bulk/Cashflow/Receivables"


@pytest.fixture
def http(sim: ExactSimulator) -> Iterator[httpx.Client]:
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    access = sim.oauth.grant_tokens("app")["access_token"]
    with httpx.Client(transport=sim.transport(), base_url="https://start.exactonline.nl",
                      headers={"Authorization": f"Bearer {access}", "Accept": "application/json"}) as client:
        yield client


def error(response: httpx.Response) -> str:
    return response.json()["error"]["message"]["value"]


def test_select_is_required(http: httpx.Client) -> None:
    answer = http.get(f"/api/v1/{DIVISION}/cashflow/Receivables", params={"$filter": "Status eq 20"})
    assert answer.status_code == 400
    assert error(answer) == "Please add a $select or a $top=1 statement to the query string."


def test_an_unknown_property_is_a_400_even_without_matches(http: httpx.Client) -> None:
    answer = http.get(f"/api/v1/{DIVISION}/crm/Accounts", params={"$select": "ID,Nme", "$filter": "Name eq 'x'"})
    assert answer.status_code == 400 and "Nme" in error(answer)


def test_a_guid_compared_with_a_number_is_a_type_error(http: httpx.Client) -> None:
    answer = http.get(f"/api/v1/{DIVISION}/crm/Accounts", params={"$select": "ID", "$filter": "ID eq 3"})
    assert error(answer) == ("Operator 'eq' incompatible with operand types 'System.Guid' and 'System.Int32' at "
                             "position 3.")


def test_entity_sets_with_a_sync_twin_need_a_filter(http: httpx.Client) -> None:
    assert http.get(f"/api/v1/{DIVISION}/crm/Accounts", params={"$select": "ID"}).status_code == 400
    assert http.get(BULK, params={"$select": "ID", "$filter": "IsFullyPaid eq false"}).status_code == 400
    assert http.get(BULK, params={"$select": "ID", "$filter": "Status ne 50"}).status_code == 200


def test_sync_endpoints_filter_on_timestamp_only_and_send_it_as_a_string(http: httpx.Client) -> None:
    refused = http.get(TERMS, params={"$select": "ID", "$filter": "Status eq 20"})
    assert refused.status_code == 400
    rows = http.get(TERMS, params={"$select": "ID,Timestamp", "$filter": "Timestamp gt 1L"}).json()["d"]["results"]
    stamps = [row["Timestamp"] for row in rows]
    assert all(isinstance(s, str) for s in stamps) and [int(s) for s in stamps] == sorted(int(s) for s in stamps)


def test_top_within_the_page_answers_a_bare_list(http: httpx.Client) -> None:
    body = http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1", "$top": "2"}).json()
    assert isinstance(body["d"], list) and len(body["d"]) == 2


def test_next_links_are_absolute_and_keep_the_options() -> None:
    sim = ExactSimulator.seeded(division=DIVISION, accounts=5, invoices=1100)
    sim.oauth.register_client("app", "s3cret", [REDIRECT])
    access = sim.oauth.grant_tokens("app")["access_token"]
    with httpx.Client(transport=sim.transport(), headers={"Authorization": f"Bearer {access}",
                                                          "Accept": "application/json"}) as http:
        first = http.get(f"https://start.exactonline.de{BULK}", params={"$select": "ID", "$filter": "Status ne 50"})
        page = first.json()["d"]
        assert len(page["results"]) == 1000
        url = urlsplit(page["__next"])
        assert url.netloc == "start.exactonline.de" and url.path == BULK
        assert parse_qs(url.query)["$filter"] == ["Status ne 50"] and "$skiptoken" in parse_qs(url.query)
        rest = http.get(page["__next"]).json()["d"]
    ids = [r["ID"] for r in page["results"] + rest["results"]]
    assert len(ids) == len(set(ids)) and "__next" not in rest


def test_every_answer_carries_both_limit_families_in_milliseconds(http: httpx.Client, clock: VirtualClock) -> None:
    headers = http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1"}).headers
    assert headers["X-RateLimit-Minutely-Remaining"] == "59" and headers["X-RateLimit-Remaining"] == "4999"
    assert int(headers["X-RateLimit-Minutely-Reset"]) == (int(clock.time()) // 60 + 1) * 60 * 1000


def test_the_61st_call_in_a_minute_gets_an_empty_429_with_the_minute_family_only(http: httpx.Client) -> None:
    for _ in range(60):
        assert http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1"}).status_code == 200
    refused = http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1"})
    assert refused.status_code == 429 and refused.content == b""
    assert "X-RateLimit-Minutely-Reset" in refused.headers and "X-RateLimit-Reset" not in refused.headers
    assert "Retry-After" not in refused.headers


def test_without_accept_json_exact_answers_xml(http: httpx.Client) -> None:
    answer = http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1"}, headers={"Accept": "*/*"})
    assert answer.headers["content-type"].startswith("application/atom+xml")


def test_an_expired_token_gets_a_401_naming_it(http: httpx.Client, sim: ExactSimulator) -> None:
    sim.oauth.expire_access_tokens()
    answer = http.get(TERMS, params={"$select": "ID", "$filter": "Timestamp gt 1"})
    assert answer.status_code == 401 and "expired" in answer.headers["WWW-Authenticate"]


def test_a_download_without_the_bearer_token_is_a_login_page(http: httpx.Client, sim: ExactSimulator) -> None:
    document = next(iter(sim.divisions[DIVISION].documents.values()))
    path = f"/docs/SysAttachment.aspx?ID={document.attachment_id}&Download=1"
    anonymous = httpx.Client(transport=sim.transport(), base_url="https://start.exactonline.nl").get(path)
    assert anonymous.headers["content-type"].startswith("text/html") and b"%PDF" not in anonymous.content
    assert http.get(path).content.startswith(b"%PDF")


def test_receivables_list_is_in_the_division_currency_and_positive(http: httpx.Client) -> None:
    rows = http.get(f"/api/v1/{DIVISION}/read/financial/ReceivablesList",
                    params={"$select": "HID,Amount,CurrencyCode,YourRef"}).json()["d"]["results"]
    gbp = next(r for r in rows if r["YourRef"] == "PO-GBP")
    assert gbp["CurrencyCode"] == "EUR" and gbp["Amount"] == pytest.approx(287.5)


def test_a_partial_payment_splits_the_term(sim: ExactSimulator) -> None:
    invoice = sim.new_invoice(DIVISION, next(iter(sim.divisions[DIVISION].accounts)), "100.00")
    sim.pay(DIVISION, invoice.InvoiceID, "30.00")
    terms = [t for t in sim.divisions[DIVISION].terms.values() if t.TransactionEntryID == invoice.InvoiceID]
    assert sorted((t.Status, abs(t.AmountFC)) for t in terms) == [(20, Decimal("70.00")), (50, Decimal("30.00"))]
    assert len({t.EntryID for t in terms}) == 2


def test_seeding_is_deterministic() -> None:
    one, two = ExactSimulator.seeded(seed=7), ExactSimulator.seeded(seed=7)
    assert [t.ID for t in one.divisions[123456].terms.values()] == [t.ID for t in two.divisions[123456].terms.values()]


def test_a_url_longer_than_6000_characters_is_refused(http: httpx.Client) -> None:
    ids = " or ".join(f"ID eq guid'{uuid.uuid4()}'" for _ in range(120))
    answer = http.get(f"/api/v1/{DIVISION}/crm/Accounts", params={"$select": "ID", "$filter": ids})
    assert answer.status_code == 400 and "6000" in answer.json()["error"]["message"]["value"]
