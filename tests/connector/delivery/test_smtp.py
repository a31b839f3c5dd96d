"""The SMTP channel against a real SMTP server (aiosmtpd) on 127.0.0.1 with STARTTLS, started by the test: our text
with the platform's invoice PDF, from the user's address, recorded on the platform; a refused recipient; and Exact's
refusal to re-send a processed invoice, detected once and gone around."""

from __future__ import annotations

import datetime as dt
import ipaddress
import socket
import ssl
from collections.abc import Iterator
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from connector.delivery.smtp import MailConfig, MailRefused, OutgoingMail, SmtpMailer
from connector.store import Store
from connector.sync import sync_all
from tests.connector.delivery.conftest import build, send

REFUSED = "nobody@refused.example"


def _certificate(folder: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = dt.datetime.now(dt.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "smtp.pem", folder / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


class Inbox:
    """Records what the server accepted; refuses one address."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], Message]] = []

    async def handle_RCPT(self, server: SMTP, session: Session, envelope: Envelope, address: str,
                          options: list[str]) -> str:
        if address == REFUSED:
            return "550 5.1.1 no such user here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        self.messages.append((list(envelope.rcpt_tos), message_from_bytes(envelope.original_content or b"")))
        return "250 Message accepted"


def _authenticate(server: SMTP, session: Session, envelope: Envelope, mechanism: str, data: Any) -> AuthResult:
    ok = isinstance(data, LoginPassword) and (data.login, data.password) == (b"debiteuren", b"mail-s3cret")
    return AuthResult(success=ok)


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[SimpleNamespace]:
    cert, key = _certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    inbox = Inbox()
    with socket.socket() as probe:  # a free port (aiosmtpd checks the one it is given by connecting to it)
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=_authenticate, auth_require_tls=True)
    controller.start()
    try:
        yield SimpleNamespace(inbox=inbox, port=port, ca=cert,
                              config={"host": "127.0.0.1", "port": port, "starttls": True, "username": "debiteuren",
                                      "from": "debiteuren@dunning-demo.example", "password_env": "MAIL_PASSWORD",
                                      "ca_file": str(cert), "timeout": 10})
    finally:
        controller.stop()


def _mailer(smtp: SimpleNamespace, **changes: Any) -> SmtpMailer:
    from pydantic import SecretStr

    return SmtpMailer(MailConfig.model_validate(smtp.config | changes), SecretStr("mail-s3cret"))


def test_a_mail_goes_out_over_starttls_with_the_pdf_from_the_users_address(smtp: SimpleNamespace) -> None:
    accepted = _mailer(smtp).send(OutgoingMail(to=("jan@klant.example",), subject="Herinnering factuur 1",
                                               body="Beste Jan,\n", message_id="<dc-key@dunning-connector>",
                                               attachment=b"%PDF-1.4 invoice", attachment_name="invoice-1.pdf"))

    assert accepted == ("jan@klant.example",)
    [(to, message)] = smtp.inbox.messages
    assert to == ["jan@klant.example"] and message["From"] == "debiteuren@dunning-demo.example"
    assert message["Message-ID"] == "<dc-key@dunning-connector>"
    parts = {part.get_content_type(): part for part in message.walk()}
    assert parts["application/pdf"].get_payload(decode=True) == b"%PDF-1.4 invoice"
    assert parts["application/pdf"].get_filename() == "invoice-1.pdf"


def test_a_refused_recipient_is_named_and_the_others_still_get_it(smtp: SimpleNamespace) -> None:
    mailer = _mailer(smtp)
    with pytest.raises(MailRefused, match="refused every recipient.*550"):
        mailer.send(OutgoingMail(to=(REFUSED,), subject="s", body="b", message_id="<a@b>"))
    assert mailer.send(OutgoingMail(to=(REFUSED, "jan@klant.example"), subject="s", body="b",
                                    message_id="<c@d>")) == ("jan@klant.example",)
    assert [to for to, _ in smtp.inbox.messages] == [["jan@klant.example"]]


def test_a_server_certificate_we_do_not_trust_stops_the_mail(smtp: SimpleNamespace) -> None:
    with pytest.raises(MailRefused, match="did not take the mail"):
        _mailer(smtp, ca_file=None).send(OutgoingMail(to=("jan@klant.example",), subject="s", body="b",
                                                      message_id="<e@f>"))
    assert smtp.inbox.messages == []


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_exacts_refusal_to_re_send_is_detected_once_and_our_mail_server_carries_the_reminders(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=["exact"], extra={"mail": smtp.config})
    exact = kit.world.places[0].simulator
    exact.resend_processed = "refuse"  # what an independent Exact answered: 400/500 on a processed invoice
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)

        first = send(kit)
        again = send(kit)

        sent = [line for line in first if line["status"] == "sent"]
        assert sent and exact.sent_mail() == []  # Exact mailed nothing
        assert exact.call_count("*/salesinvoice/PrintedSalesInvoices", "POST") == 1  # refused once, remembered
        assert len(smtp.inbox.messages) == len(sent)
        for to, message in smtp.inbox.messages:
            assert message["From"] == "debiteuren@dunning-demo.example" and to
            assert any(part.get_content_type() == "application/pdf" for part in message.walk())
        notes = [n for n in exact.divisions[int(kit.world.places[0].seeded.tenant)].notes.values()]
        assert all(any(line["key"] in (n.Notes or "") for n in notes) for line in sent)  # recorded on Exact
        assert all(line["recipients"] for line in sent)  # who was really mailed
        assert not [line for line in again if line["status"] == "sent"]
        assert len(smtp.inbox.messages) == len(sent)


def test_the_example_config_documents_every_mail_key() -> None:
    import re

    from connector.config import starter_config

    section = starter_config().split("# [mail]\n", 1)[1].split("\n\n", 1)[0]
    documented = set(re.findall(r"(?m)^# ([a-z_]+) = ", section))
    keys = {field.alias or name for name, field in MailConfig.model_fields.items()}
    assert keys == documented


class Crash(BaseException):
    """Stands for the process dying at this point."""


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("crash_after_note", [False, True])
def test_a_crash_after_our_mail_server_took_the_mail_never_sends_it_again(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, crash_after_note: bool
) -> None:
    import subprocess

    from connector import plugins
    from connector.delivery import claims

    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=["exact"], extra={"mail": smtp.config})
    kit.world.places[0].simulator.resend_processed = "refuse"
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        store.outbox_set_fact("demo-exact", "mailing_refused", "Exact refused to re-send processed invoices")
        finished = subprocess.Popen(["true"])
        finished.wait()
        cls = plugins.provider_class("exact")
        real_note = cls.add_note

        def dying(self: Any, *args: Any, **kwargs: Any) -> Any:
            if crash_after_note:
                real_note(self, *args, **kwargs)
            raise Crash

        with monkeypatch.context() as patch:
            patch.setattr(claims, "claimant", lambda: {"host": socket.gethostname(), "pid": finished.pid, "run": "x"})
            patch.setattr(cls, "add_note", dying)
            with pytest.raises(Crash):
                send(kit)
        assert len(smtp.inbox.messages) == 1
        [row] = store.outbox_rows(status=["sending"])

        send(kit)

        assert len([to for to, m in smtp.inbox.messages if m["Message-ID"] == f"<{row.idempotency_key}@dunning-connector>"]) == 1
        assert store.outbox_by_key(row.idempotency_key).status == "sent"  # the mail was committed before its note


def _message_id(message: Message) -> str:
    return "".join(str(message["Message-ID"]).split())  # a long id comes folded


def _agreed(store: Store, what: str, today: dt.date) -> tuple[Any, Any]:
    from connector import casebook

    invoice = next(i for i, debtor, _ in store.iter_open_invoices() if i.is_collectable and debtor.emails)
    if what == "arrangement":
        half = (invoice.outstanding / 2).quantize(invoice.outstanding)
        casebook.record_arrangement(store, invoice, [f"{today + dt.timedelta(days=30)}:{invoice.outstanding - half}"],
                                    today, down_payment=f"{today + dt.timedelta(days=7)}:{half}")
    else:
        casebook.record_hold(store, invoice, "promise", today, until=today + dt.timedelta(days=10))
    [row] = store.outbox_rows(kind=["confirmation"])
    return invoice, row


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["exact", "moneybird", "xero"])
def test_an_arrangement_is_e_mailed_as_the_letter_to_sign_and_a_task_waits_for_the_signed_copy(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    from connector.delivery import open_tasks

    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=[platform], extra={"mail": smtp.config})
    simulator = kit.world.places[0].simulator
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        invoice, row = _agreed(store, "arrangement", kit.world.today)

        send(kit)
        send(kit)

        [message] = [m for _, m in smtp.inbox.messages if row.idempotency_key in _message_id(m)]
        [pdf] = [part for part in message.walk() if part.get_content_type() == "application/pdf"]
        [task] = [t for t in open_tasks(store) if t.id == row.id]
        assert task.kind == "letter" and "signed copy" in task.reason
        assert pdf.get_payload(decode=True) == Path(str(task.letter)).read_bytes()  # the letter with the signature
        assert not [m for m in simulator.sent_mail() if invoice.platform_id in m.invoice_ids
                    and m.text and "regeling" in m.text.lower()]  # never the platform's mailing: it needs a signature
        provider = kit.connect(kit.config.settings(row.connection))
        assert provider.find_note(invoice, row.idempotency_key) is not None  # recorded on the platform
        assert kit.summaries[0].refused == 0


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("platform", ["moneybird", "xero"])
def test_a_promise_is_confirmed_by_our_mail_server_where_the_platforms_mailing_cannot_carry_it(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch, platform: str
) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=[platform], extra={"mail": smtp.config})
    simulator = kit.world.places[0].simulator
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        invoice, row = _agreed(store, "promise", kit.world.today)
        mailed_before = len(simulator.sent_mail())

        [line] = [line for line in send(kit) if line["key"] == row.idempotency_key]

        assert line["status"] == "sent" and store.outbox_row(row.id).receipt["channel"] == "smtp"
        assert [m for _, m in smtp.inbox.messages if row.idempotency_key in _message_id(m)]
        # Moneybird's send_reminders would count a reminder, Xero's mail carries no text of ours: neither is used
        platform_mails = [m for m in simulator.sent_mail()[mailed_before:] if invoice.platform_id in m.invoice_ids]
        reminders = [r for r in store.outbox_rows(kind=["reminder"], status=["sent"])
                     if invoice.platform_id in r.payload["invoices"]]
        assert len(platform_mails) == len(reminders)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_an_arrangement_mail_a_crash_cut_off_before_its_note_is_noted_and_waits_for_the_signed_copy(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    import subprocess

    from connector.delivery import claims, open_tasks
    from connector.delivery.sender import ConnectionRun

    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=["moneybird"], extra={"mail": smtp.config})
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)
        invoice, row = _agreed(store, "arrangement", kit.world.today)
        finished = subprocess.Popen(["true"])
        finished.wait()
        real_record = ConnectionRun._record

        def dying(self: ConnectionRun, request: Any, *args: Any) -> Any:
            if request.step == "confirmation":
                raise Crash  # the mail is committed as gone out; its note is not written
            return real_record(self, request, *args)

        with monkeypatch.context() as patch:
            patch.setattr(claims, "claimant", lambda: {"host": socket.gethostname(), "pid": finished.pid, "run": "x"})
            patch.setattr(ConnectionRun, "_record", dying)
            with pytest.raises(Crash):
                send(kit)
        assert store.outbox_row(row.id).receipt["phase"] == "mailed"

        send(kit)

        assert len([m for _, m in smtp.inbox.messages if row.idempotency_key in _message_id(m)]) == 1
        [task] = [t for t in open_tasks(store) if t.id == row.id]
        assert task.kind == "letter" and task.letter and Path(task.letter).exists()
        provider = kit.connect(kit.config.settings(row.connection))
        assert provider.find_note(invoice, row.idempotency_key) is not None


def _pre_due_invoice(kit: Any, *, email: str | None) -> Any:
    """A Moneybird invoice due in three days (state `open`): the planner's pre-due note is due today."""
    sim = kit.world.places[0].simulator
    contact = sim.new_contact(company_name="Vroeg BV", email=email, send_invoices_to_email=email)
    return sim.new_invoice(contact.id, invoice_date=kit.world.today - dt.timedelta(days=11), due_days=14)


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_pre_due_note_moneybird_cannot_carry_goes_by_our_mail_server(
    tmp_path: Path, store_url: str, smtp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MAIL_PASSWORD", "mail-s3cret")
    kit = build(tmp_path, store_url, platforms=["moneybird"], extra={"mail": smtp.config})
    sim = kit.world.places[0].simulator
    invoice = _pre_due_invoice(kit, email="inkoop@vroeg.example")
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)

        [line] = [line for line in send(kit, step="pre_due") if invoice.id in line["invoices"]]

        assert line["status"] == "sent" and line["recipients"] == ["inkoop@vroeg.example"]
        assert store.outbox_by_key(line["key"]).receipt["channel"] == "smtp"
        [(to, message)] = [(to, m) for to, m in smtp.inbox.messages if line["key"] in _message_id(m)]
        assert to == ["inkoop@vroeg.example"]
        assert sim.reminders == [] and sim.administration.invoices[invoice.id].state == "open"  # not a reminder there
        provider = kit.connect(kit.config.settings(line["connection"]))
        assert provider.find_note(store.invoice(line["connection"], invoice.id), line["key"]) is not None


@pytest.mark.parametrize("store_url", ["sqlite"], indirect=True)
def test_a_pre_due_note_moneybird_cannot_carry_without_mail_is_a_task_saying_what_to_do(
    tmp_path: Path, store_url: str
) -> None:
    from connector.delivery import open_tasks

    kit = build(tmp_path, store_url, platforms=["moneybird"])
    invoice = _pre_due_invoice(kit, email="inkoop@vroeg.example")
    with Store.open(kit.config.store_url, clock=kit.world.clock.now) as store:
        kit.store = store
        sync_all(kit.config, store, kit.tokens, connect=kit.connect)

        [line] = [line for line in send(kit, step="pre_due") if invoice.id in line["invoices"]]

        assert line["status"] == "task"
        [task] = [t for t in open_tasks(store) if t.id == line["task"]]
        assert task.kind == "refused"
        assert "Moneybird reminds only invoices that are late" in task.reason
        assert "send this pre-due note yourself or set up [mail]" in task.reason

