"""Contract: simulator answers and adapter requests against Moneybird's OpenAPI shapes.

`moneybird_openapi_shapes.json` is our own reduced encoding of the OpenAPI description (see its `$comment` for the
source and versions): property names and types, with `unevaluatedProperties: false` where the description has it,
so a field the simulator invents or an adapter request the platform would not accept fails here.
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from jsonschema import Draft202012Validator, FormatChecker

from providers.base import ConnectionSettings, ReminderRequest
from providers.moneybird import MoneybirdProvider
from providers.moneybird.simulator import MoneybirdSimulator

SHAPES = json.loads((Path(__file__).parent / "moneybird_openapi_shapes.json").read_text())
FILTER_KEYS = {"state", "period", "reference", "contact_id", "recurring_sales_invoice_id", "workflow_id",
               "created_after", "updated_after"}
STATES = {"all", "draft", "scheduled", "open", "pending_payment", "late", "reminded", "paid", "uncollectible"}


def check(instance: Any, shape: str) -> None:
    schema = {"$schema": SHAPES["$schema"], "$defs": SHAPES["$defs"], "$ref": f"#/$defs/{shape}"}
    errors = sorted(Draft202012Validator(schema, format_checker=FormatChecker()).iter_errors(instance), key=str)
    assert not errors, f"{shape}: " + "; ".join(f"{list(e.absolute_path)}: {e.message}" for e in errors[:5])


def operation_for(method: str, path: str) -> str | None:
    """The OpenAPI path template this request matches (`{format}` is `.json` or nothing)."""
    relative = path.removeprefix("/api/v2")
    for operation in SHAPES["operations"]:
        pattern = re.escape(operation["path"]).replace(re.escape("{format}"), r"(\.json)?")
        pattern = re.sub(r"\\\{[a-z_]+\\\}", r"\\d+", pattern)
        if operation["method"] == method and re.fullmatch(pattern, relative):
            return operation["path"]
    return None


class Recording(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.requests: list[httpx.Request] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        request.read()
        self.requests.append(request)
        return self.inner.handle_request(request)


@pytest.fixture
def api(sim: MoneybirdSimulator) -> httpx.Client:
    answer = sim.oauth.grant_tokens("dunning-app", scope="sales_invoices settings")
    return httpx.Client(transport=sim.transport(), base_url=f"https://moneybird.com/api/v2/{sim.administration_id}/",
                        headers={"Authorization": f"Bearer {answer['access_token']}"})


def test_simulator_answers_have_moneybirds_shapes(sim, api):
    invoice = sim.invoices_in("late")[0]
    sim.partial_payment(invoice.id, "5.00")
    listing = api.get("sales_invoices/synchronization.json", params={"filter": "state:late"}).json()
    records = api.post("sales_invoices/synchronization.json", json={"ids": [r["id"] for r in listing][:100]}).json()
    contacts = api.get("contacts/synchronization.json").json()
    full_contacts = api.post("contacts/synchronization.json", json={"ids": [c["id"] for c in contacts][:100]}).json()

    check(listing, "synchronization_response")
    check(contacts, "synchronization_response")
    for record in records:
        check(record, "sales_invoice_response")
    for record in full_contacts:
        check(record, "contact_response")
    for record in api.get("sales_invoices.json", params={"filter": "state:all", "per_page": 100}).json():
        check(record, "sales_invoice_response")
    check(api.get(f"sales_invoices/{invoice.id}.json").json(), "sales_invoice_response")
    for record in httpx.Client(transport=sim.transport(), headers=api.headers).get(
            "https://moneybird.com/api/v2/administrations.json").json():
        check(record, "administration_response")
    for workflow in api.get("workflows.json").json():
        check(workflow, "workflow_response")
    for style in api.get("document_styles.json").json():
        check(style, "document_style_response")
    check(api.get("identities/default.json").json(), "identity_response")


def test_simulator_writes_and_errors_have_moneybirds_shapes(sim, api):
    invoice = sim.invoices_in("late")[0]

    note = api.post(f"sales_invoices/{invoice.id}/notes.json", json={"note": {"note": "Gebeld", "todo": False}})
    paused = api.post(f"sales_invoices/{invoice.id}/pause.json", json={})
    blank = api.post(f"sales_invoices/{invoice.id}/notes.json", json={"note": {"note": ""}})
    missing = api.get("sales_invoices/12345.json")
    bad_filter = api.get("sales_invoices.json", params={"filter": "state:nope"})

    assert note.status_code == 201 and paused.status_code == 201
    check(note.json(), "note_response")
    check(paused.json(), "sales_invoice_response")
    check(api.get(f"sales_invoices/{invoice.id}.json").json()["notes"][0], "note_response")
    assert blank.status_code == 422
    check(blank.json(), "non_symbolic_error")
    for error in (missing, bad_filter):
        check(error.json(), "symbolic_error")


def test_adapter_requests_follow_the_documented_operations_and_bodies(sim, tokens, books):
    recording = Recording(sim.transport())
    provider = MoneybirdProvider.connect(
        ConnectionSettings(name="acme-moneybird", provider="moneybird", tenant=sim.administration_id,
                           client_id="dunning-app", client_secret="s3cret-app-value"),
        tokens=tokens, transport=recording, clock=sim.clock.time, sleep=sim.clock.sleep,
    )
    contact = sim.new_contact(company_name="Transport De Vries B.V.", email="info@devries.example")
    late = [sim.new_invoice(contact.id, state="late", invoice_date=sim.today - timedelta(days=d)) for d in (40, 50)]

    provider.list_tenants()
    books.apply(provider.sync(books.state()))
    sim.change_contact(next(iter(books.debtors)), phone="020 123 4567")
    books.apply(provider.sync(books.state()))
    invoices = tuple(books.invoices[i.id] for i in late)
    provider.send_reminder(ReminderRequest(step="first_reminder", debtor=books.debtors[contact.id], invoices=invoices,
                                           message="Beste klant,", idempotency_key="contract-key-1"))
    provider.send_reminder(ReminderRequest(step="letter", debtor=books.debtors[contact.id], invoices=invoices[:1],
                                           message="Beste klant,", idempotency_key="contract-key-2", delivery="post"))
    provider.add_note(invoices[0], "Gebeld", idempotency_key="contract-key-3")
    provider.find_note(invoices[0], "contract-key-3")
    provider.fetch_pdf(invoices[0])
    provider.warnings()

    bodies: dict[str, list[Any]] = {}
    api_requests = [r for r in recording.requests if r.url.host == "moneybird.com"]
    for request in api_requests:
        operation = operation_for(request.method, request.url.path)
        assert operation, f"{request.method} {request.url.path} is not a documented Moneybird operation"
        assert request.url.path.endswith(".json")
        assert request.headers["Authorization"].startswith("Bearer ")
        if request.content:
            assert request.headers["Content-Type"] == "application/json"
            bodies.setdefault(f"{request.method} {operation}", []).append(json.loads(request.content))
        if operation.endswith("sales_invoices/synchronization{format}") and request.method == "GET":
            terms = dict(t.split(":", 1) for t in request.url.params["filter"].split(","))
            assert set(terms) <= FILTER_KEYS and set(terms["state"].split("|")) <= STATES
    for body in bodies["POST /{administration_id}/sales_invoices/synchronization{format}"]:
        check(body, "synchronization_request")
        assert len(body["ids"]) <= 100
    for body in bodies["POST /{administration_id}/contacts/synchronization{format}"]:
        check(body, "synchronization_request")
    for body in bodies["POST /{administration_id}/sales_invoices/send_reminders{format}"]:
        check(body, "send_reminders_request")
    for body in bodies["POST /{administration_id}/sales_invoices/{sales_invoice_id}/notes{format}"]:
        check(body, "note_request")
    signed = [r for r in recording.requests if r.url.host == sim.storage_host]
    assert len(signed) == 1 and "Authorization" not in signed[0].headers
