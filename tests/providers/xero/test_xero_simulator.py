"""The simulator behaves like Xero where the adapter relies on it: OAuth, headers, filters, limits, errors."""

from __future__ import annotations

import base64
import hashlib
import re
from datetime import timedelta
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from providers.xero.simulator import DEFAULT_SCOPE, XeroSimulator

REDIRECT = "http://localhost:8765/callback"


def api(sim: XeroSimulator, **headers: str) -> httpx.Client:
    token = sim.grant()["access_token"]
    return httpx.Client(transport=sim.transport(), base_url="http://xero.sim", headers={
        "Authorization": f"Bearer {token}", "Xero-tenant-id": sim.org.tenant_id, "Accept": "application/json",
        **headers})


def test_authorization_code_with_pkce_then_rotating_refresh_with_a_30_minute_grace(sim: XeroSimulator) -> None:
    http = httpx.Client(transport=sim.transport(), base_url="http://xero.sim")
    verifier = "v" * 64
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    page = http.get("/identity/connect/authorize", params={
        "response_type": "code", "client_id": "dunning-app", "redirect_uri": REDIRECT, "scope": DEFAULT_SCOPE,
        "state": "s1", "code_challenge": challenge, "code_challenge_method": "S256"})
    assert page.status_code == 200 and 'id="allow"' in page.text and sim.org.name in page.text
    txn = re.search(r'name="txn" value="([^"]+)"', page.text).group(1)
    answer = http.post("/identity/connect/authorize", data={"txn": txn, "decision": "allow",
                                                            "tenant": sim.org.tenant_id})
    query = parse_qs(urlsplit(answer.headers["Location"]).query)
    assert query["state"] == ["s1"]
    basic = httpx.BasicAuth("dunning-app", "app-secret")
    tokens = http.post("/connect/token", auth=basic, data={
        "grant_type": "authorization_code", "code": query["code"][0], "redirect_uri": REDIRECT,
        "code_verifier": verifier}).json()
    assert tokens["expires_in"] == 1800 and tokens["access_token"].count(".") == 2  # a JWT

    first = http.post("/connect/token", auth=basic, data={"grant_type": "refresh_token",
                                                          "refresh_token": tokens["refresh_token"]}).json()
    assert first["refresh_token"] != tokens["refresh_token"]
    sim.clock.advance(29 * 60)  # the spent refresh token may be retried for 30 minutes
    again = http.post("/connect/token", auth=basic, data={"grant_type": "refresh_token",
                                                          "refresh_token": tokens["refresh_token"]})
    assert again.status_code == 200
    sim.clock.advance(2 * 60)
    late = http.post("/connect/token", auth=basic, data={"grant_type": "refresh_token",
                                                         "refresh_token": tokens["refresh_token"]})
    assert late.status_code == 400 and late.json() == {"error": "invalid_grant"}


def test_the_legacy_transactions_scope_is_refused_for_new_apps(sim: XeroSimulator) -> None:
    http = httpx.Client(transport=sim.transport(), base_url="http://xero.sim")
    answer = http.get("/identity/connect/authorize", params={
        "response_type": "code", "client_id": "dunning-app", "redirect_uri": REDIRECT,
        "scope": "offline_access accounting.transactions"})
    assert answer.status_code == 302 and "error=invalid_scope" in answer.headers["Location"]


def test_every_answer_carries_the_limit_headers_and_the_61st_call_in_a_minute_gets_a_429(
    sim: XeroSimulator
) -> None:
    http = api(sim)
    sim.clock.advance(60 - sim.clock.time() % 60)  # the start of a minute
    answers = [http.get("/api.xro/2.0/InvoiceReminders/Settings") for _ in range(61)]

    assert all(a.headers["X-DayLimit-Remaining"].isdigit() for a in answers)
    assert answers[59].status_code == 200 and answers[59].headers["X-MinLimit-Remaining"] == "0"
    refused = answers[60]
    assert refused.status_code == 429
    assert refused.headers["X-Rate-Limit-Problem"] == "minute" and refused.headers["Retry-After"] == "60"


def test_a_wrong_tenant_gets_xeros_403(sim: XeroSimulator) -> None:
    answer = api(sim, **{"Xero-tenant-id": "00000000-0000-0000-0000-000000000000"}).get("/api.xro/2.0/Invoices")
    assert answer.status_code == 403 and answer.json()["Detail"] == "AuthenticationUnsuccessful"


def test_an_expired_token_gets_xeros_401_token_expired(sim: XeroSimulator) -> None:
    http = api(sim)
    sim.clock.advance(31 * 60)
    answer = http.get("/api.xro/2.0/Invoices")
    assert answer.status_code == 401 and answer.json()["Detail"].startswith("TokenExpired: token expired at")


def test_a_missing_scope_gets_authorization_unsuccessful(sim: XeroSimulator) -> None:
    token = sim.grant(scope="offline_access accounting.invoices")["access_token"]
    answer = httpx.Client(transport=sim.transport()).get("http://xero.sim/api.xro/2.0/Contacts", headers={
        "Authorization": f"Bearer {token}", "Xero-tenant-id": sim.org.tenant_id, "Accept": "application/json"})
    assert answer.status_code == 401 and answer.json()["Detail"] == "AuthorizationUnsuccessful"


def test_without_accept_json_xero_answers_xml(sim: XeroSimulator) -> None:
    answer = api(sim, Accept="*/*").get("/api.xro/2.0/Invoices")
    assert answer.headers["Content-Type"].startswith("text/xml")


def test_if_modified_since_compares_to_the_second_and_includes_the_boundary(sim: XeroSimulator) -> None:
    invoice = sim.org.open_invoices()[0]
    sim.org.change_invoice(invoice.invoice_id, reference="x")
    changed_at = sim.org.invoices[invoice.invoice_id].updated + timedelta(milliseconds=700)
    sim.org.invoices[invoice.invoice_id].updated = changed_at
    since = changed_at.replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%S")

    answer = api(sim, **{"If-Modified-Since": since}).get("/api.xro/2.0/Invoices")

    assert [i["InvoiceID"] for i in answer.json()["Invoices"]] == [invoice.invoice_id]


def test_paging_envelope_and_page_size_capped_at_1000(sim: XeroSimulator) -> None:
    sim.seed_book(seed=9, open_invoices=1100, contacts=10)
    body = api(sim).get("/api.xro/2.0/Invoices", params={"page": 1, "pageSize": 5000}).json()

    assert body["pagination"]["pageSize"] == 1000 and body["pagination"]["pageCount"] == 2
    assert len(body["Invoices"]) == 1000 and "LineItems" in body["Invoices"][0]
    unpaged = api(sim).get("/api.xro/2.0/Invoices").json()
    assert "pagination" not in unpaged and "LineItems" not in unpaged["Invoices"][0]


def test_a_bad_where_is_a_query_parse_exception(sim: XeroSimulator) -> None:
    answer = api(sim).get("/api.xro/2.0/Invoices", params={"where": 'Typ=="ACCREC"'})
    assert answer.status_code == 400 and answer.json()["Type"] == "QueryParseException"


@pytest.mark.parametrize(("where", "expected"), [
    ('Type=="ACCREC" AND Status=="AUTHORISED"', lambda i: i.type == "ACCREC" and i.status == "AUTHORISED"),
    ('Status=="PAID" OR Status=="VOIDED"', lambda i: i.status in ("PAID", "VOIDED")),
    ('Type=="ACCPAY"', lambda i: i.type == "ACCPAY"),
])
def test_where_filters_select_what_xero_would(sim: XeroSimulator, where: str, expected) -> None:
    body = api(sim).get("/api.xro/2.0/Invoices", params={"where": where}).json()
    assert {i["InvoiceID"] for i in body["Invoices"]} == {
        i.invoice_id for i in sim.org.invoices.values() if expected(i)}


def test_more_than_about_50_ids_make_the_url_too_long(sim: XeroSimulator) -> None:
    ids = ",".join(list(sim.org.contacts)[:40] + [str(n).zfill(36) for n in range(20)])
    assert api(sim).get("/api.xro/2.0/Contacts", params={"IDs": ids}).status_code == 404
    fifty = ",".join(list(sim.org.contacts)[:40])
    assert len(api(sim).get("/api.xro/2.0/Contacts", params={"IDs": fifty}).json()["Contacts"]) == 40


def test_amounts_are_written_with_their_cents(sim: XeroSimulator) -> None:
    text = api(sim).get("/api.xro/2.0/Invoices").text
    assert re.search(r'"AmountPaid": \d+\.\d\d[,}]', text)


def test_the_pdf_is_the_invoice_asked_for_as_pdf_and_there_is_no_pdf_path(sim: XeroSimulator) -> None:
    invoice_id = sim.org.open_invoices()[0].invoice_id
    pdf = api(sim, Accept="application/pdf").get(f"/api.xro/2.0/Invoices/{invoice_id}")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    # the spec's `/Invoices/{InvoiceID}/pdf` is an SDK alias (x-path), not a URL Xero serves
    assert api(sim, Accept="application/pdf").get(f"/api.xro/2.0/Invoices/{invoice_id}/pdf").status_code == 404
