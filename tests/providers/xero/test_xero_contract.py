"""Contract: every request the adapter makes and every answer the simulator gives, checked against Xero's own
OpenAPI specs (`xero_accounting.yaml`, `xero-identity.yaml` in ../shared/specs, loaded once per module).

Where the spec does not describe what the real platform does, the exchange is mapped or skipped on purpose:
- the PDF: the spec describes it as `GET /Invoices/{InvoiceID}/pdf` with `x-path: /Invoices/{InvoiceID}`, i.e. the
  invoice itself asked for with `Accept: application/pdf` (what the adapter does); it is validated as that operation;
- `/connections`: the identity spec spells the path `/Connections`; Xero's paths are case-insensitive and the docs,
  the SDKs and providers.md use `/connections`: validated as `/Connections`;
- Xero's error answers other than 400 (401 TokenExpired/AuthorizationUnsuccessful, 403, 404, 429, 503) are not in
  the spec at all: their bodies are checked against providers.md in the respx and end-to-end tests instead;
- the token endpoint is not an operation of either spec: its answer is checked against the identity spec's
  `AccessToken` schema;
- `/connections` dates: Xero writes `createdDateUtc`/`updatedDateUtc` as `2019-12-07T18:46:19.5165400` (seven
  fraction digits, no zone; the spec's own example), which is not the RFC 3339 `date-time` its schema declares. The
  simulator answers like Xero; the test checks that shape and validates the rest with a `Z` appended;
- OAuth2 security is not validated by openapi-core (no provider for oauth2); the bearer header is asserted here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, replace
from pathlib import Path

import httpx
import jsonschema
import pytest
import yaml
from openapi_core import Config, OpenAPI
from openapi_core.datatypes import RequestParameters
from openapi_core.templating.responses.exceptions import ResponseNotFound
from werkzeug.datastructures import Headers, ImmutableMultiDict

from providers.base import ReminderRequest, SyncState, Token
from providers.errors import ReminderRefused
from providers.xero import XeroProvider
from providers.xero.simulator import XeroSimulator

pytestmark = pytest.mark.filterwarnings("ignore:Unsupported scheme type:UserWarning")

SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs"
"""The platforms' specs, in the steering folder beside the checkout (CI lays a copy there too)."""
XERO_CONNECTION_DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}$")
XERO = "https://api.xero.com"


@pytest.fixture(scope="module")
def accounting() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero_accounting.yaml"), config=Config(spec_validator_cls=None))


@pytest.fixture(scope="module")
def identity() -> OpenAPI:
    return OpenAPI.from_file_path(str(SPECS / "xero-identity.yaml"))


@dataclass
class SpecRequest:
    """An httpx request in openapi-core's Request protocol, moved onto the spec's host."""

    host_url: str
    path: str
    method: str
    parameters: RequestParameters
    content_type: str
    body: bytes | None

    @classmethod
    def of(cls, request: httpx.Request) -> SpecRequest:
        path = request.url.path
        if path.startswith("/connections"):
            path = "/Connections" + path.removeprefix("/connections")
        if request.headers.get("Accept") == "application/pdf":
            path += "/pdf"
        content_type = request.headers.get("Content-Type", "")
        return cls(XERO, path, request.method.lower(), RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers(list(request.headers.items())), cookie=ImmutableMultiDict(), path={}),
            content_type.split(";")[0].strip().lower(), request.content or None)


@dataclass
class SpecResponse:
    status_code: int
    headers: Headers
    content_type: str
    data: bytes | None

    @classmethod
    def of(cls, response: httpx.Response) -> SpecResponse:
        content_type = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
        return cls(response.status_code, Headers(list(response.headers.items())), content_type,
                   response.content or None)


class Recording(httpx.BaseTransport):
    """Keeps every exchange that passes through to the simulator."""

    def __init__(self, inner: httpx.BaseTransport) -> None:
        self.inner = inner
        self.exchanges: list[tuple[httpx.Request, httpx.Response]] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        response.read()
        self.exchanges.append((request, response))
        return response


Exchange = tuple[httpx.Request, httpx.Response]


@pytest.fixture(scope="module")
def exchanges(xero_kit) -> list[Exchange]:
    """One session doing everything the adapter does: full sync (contacts paged and by id, leavers by id),
    incremental sync, reminders (e-mail, history, online invoice), a refusal, notes, PDF, tenants, settings, a token
    refresh; plus simulator answers the adapter does not ask for (no `page`, `summaryOnly`, a bad `where`)."""
    from datetime import UTC, datetime

    from providers.simkit import VirtualClock

    sim = XeroSimulator(VirtualClock(datetime(2026, 11, 23, 9, 0, tzinfo=UTC)))
    sim.register_app()
    sim.seed_book(seed=11, open_invoices=150, contacts=70, closed_invoices=10, bills=2)
    recording = Recording(sim.transport())
    tokens = xero_kit.MemoryTokenStore()
    xero: XeroProvider = xero_kit.connect(sim, tokens, transport=recording)

    xero.list_tenants()
    xero.warnings()
    pages = list(xero.sync(SyncState()))
    opened = {i.platform_id: i for p in pages for i in p.invoices}
    debtors = {d.platform_id: d for p in pages for d in p.debtors}
    invoice = next(i for i in opened.values() if sim.org.contacts[i.debtor_id].email)
    sim.clock.advance(60)
    sim.org.pay(next(iter(opened)))
    newcomer = sim.org.add_contact("Nieuw B.V.", email="a@nieuw.example")
    sim.org.add_invoice(newcomer.contact_id, "60.50")
    state = SyncState(cursor=pages[-1].cursor, open_invoices={k: v.version for k, v in opened.items()},
                      debtors={k: v.version for k, v in debtors.items()})
    list(xero.sync(state))
    sim.org.void(list(opened)[3])
    list(xero.sync(state.model_copy(update={"full": True})))
    request = ReminderRequest(step="first_reminder", debtor=debtors[invoice.debtor_id], invoices=(invoice,),
                              message="-", idempotency_key="outbox-0001-first")
    xero.send_reminder(request)
    xero.payment_url(invoice)
    xero.recheck([invoice])
    xero.find_note(invoice, "outbox-0001-first")
    xero.fetch_pdf(invoice)
    sim.org.change_contact(invoice.debtor_id, email=None)
    with pytest.raises(ReminderRefused):
        xero.send_reminder(request.model_copy(update={"idempotency_key": "outbox-0002-first"}))
    sim.oauth.expire_access_tokens()
    xero.warnings()

    http = httpx.Client(transport=recording, base_url="http://xero.sim", headers={
        "Authorization": f"Bearer {tokens.load('acme-xero').access_token.get_secret_value()}",
        "Xero-tenant-id": sim.org.tenant_id, "Accept": "application/json"})
    http.get("/api.xro/2.0/Invoices", params={"where": 'Type=="ACCREC" AND Status=="AUTHORISED"'})
    http.get("/api.xro/2.0/Invoices", params={"page": 2, "pageSize": 100, "summaryOnly": "true"})
    http.get("/api.xro/2.0/Invoices", params={"where": "Foo==1"})
    http.get("/api.xro/2.0/Contacts", params={"summaryOnly": "true", "where": "IsCustomer==true"})
    http.get(f"/api.xro/2.0/Invoices/{invoice.platform_id}")
    xero.close()
    return recording.exchanges


def api_exchanges(exchanges: list[Exchange]) -> list[Exchange]:
    return [(q, r) for q, r in exchanges if q.url.path.startswith(("/api.xro/", "/connections"))]


def spec_for(request: httpx.Request, accounting: OpenAPI, identity: OpenAPI) -> OpenAPI:
    return identity if request.url.path.startswith("/connections") else accounting


def test_the_session_covers_every_endpoint_the_adapter_uses(exchanges: list[Exchange]) -> None:
    seen = {(q.method, q.url.path.rsplit("/", 1)[-1]) for q, _ in api_exchanges(exchanges)}
    assert {("GET", "connections"), ("GET", "Invoices"), ("GET", "Contacts"), ("GET", "Settings"),
            ("POST", "Email"), ("PUT", "History"), ("GET", "History"), ("GET", "OnlineInvoice")} <= seen
    statuses = {r.status_code for _, r in exchanges}
    assert {200, 204, 400, 401} <= statuses


def test_every_adapter_request_conforms_to_the_spec(exchanges: list[Exchange], accounting: OpenAPI,
                                                   identity: OpenAPI) -> None:
    checked = 0
    for request, _ in api_exchanges(exchanges):
        spec_for(request, accounting, identity).validate_request(SpecRequest.of(request))
        assert request.headers["Authorization"].startswith("Bearer ")
        checked += 1
    assert checked >= 20


def test_every_simulator_answer_in_the_spec_conforms_to_it(exchanges: list[Exchange], accounting: OpenAPI,
                                                           identity: OpenAPI, error_schema: dict) -> None:
    checked = undocumented = 0
    for request, response in api_exchanges(exchanges):
        if response.status_code not in (200, 204, 400):
            continue  # not described by the spec (see the module docstring)
        answer = SpecResponse.of(response)
        if request.url.path == "/connections":
            answer = replace(answer, data=zoned_connection_dates(response))
        try:
            spec_for(request, accounting, identity).validate_response(SpecRequest.of(request), answer)
        except ResponseNotFound:
            # the spec documents no 400 for plain reads (a bad `where`): the body is checked as Xero's Error
            assert response.status_code == 400 and request.method == "GET"
            jsonschema.validate(response.json(), error_schema)
            assert response.json()["Type"] == "QueryParseException"
            undocumented += 1
            continue
        checked += 1
    assert checked >= 20 and undocumented == 1


@pytest.fixture(scope="module")
def error_schema() -> dict:
    """The accounting spec's `Error` schema (what a 400 carries), resolvable on its own."""
    spec = yaml.load((SPECS / "xero_accounting.yaml").read_text(), Loader=yaml.CSafeLoader)  # C loader: fast
    schemas = spec["components"]["schemas"]
    return {"$ref": "#/components/schemas/Error", "components": {"schemas": schemas}}


def zoned_connection_dates(response: httpx.Response) -> bytes:
    """Xero's zone-less connection dates, checked for their real shape, then given the `Z` the schema wants."""
    connections = response.json()
    for connection in connections:
        for key in ("createdDateUtc", "updatedDateUtc"):
            assert XERO_CONNECTION_DATE.match(connection[key]), connection[key]
            connection[key] += "Z"
    return json.dumps(connections).encode()


def test_token_answers_match_the_identity_access_token_schema(exchanges: list[Exchange]) -> None:
    schema = yaml.safe_load((SPECS / "xero-identity.yaml").read_text())["components"]["schemas"]["AccessToken"]
    answers = [r for q, r in exchanges if q.url.path == "/connect/token" and r.status_code == 200]
    assert answers, "the session refreshed a token"
    for response in answers:
        body = response.json()
        jsonschema.validate(body, schema)
        assert body["expires_in"] == 1800 and body["token_type"] == "Bearer"
        assert Token.from_response(body).refresh_token is not None
