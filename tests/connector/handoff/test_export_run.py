"""One export run end to end on a store: a case is exported once and then left alone by the planner, `--again`
re-exports it, a case missing required data is held back while the rest go out, nothing is half-written, and the
handoff is recorded (events, notes in the outbox) only once the files reached the agency."""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from connector.escalation import plan_rows
from connector.handoff import export_cases, load_format
from connector.handoff.export import CaseNotFound
from connector.handoff.upload import UploadFailed
from connector.models import EventKind
from connector.store import Store
from providers.base import SyncPage

from ...conftest import make_debtor
from .conftest import AS_OF, LETTER_KEY, PdfPlatform, config_for


def _run(book: Store, tmp_path: Path, agency: str = "generic-json", **kwargs: Any) -> Any:
    config = config_for(tmp_path, agency=agency)
    kwargs.setdefault("fetch_pdf", PdfPlatform())
    return export_cases(book, config, load_format(agency), kwargs.pop("as_of", AS_OF), out_dir=config.handoff_dir,
                        **kwargs)


def _handoffs(book: Store, invoice: str) -> list[Any]:
    return [e for e in book.events("acme", invoice) if e.kind is EventKind.HANDOFF]


def test_a_case_is_exported_once_recorded_on_its_invoices_and_no_longer_planned(book: Store, tmp_path: Path) -> None:
    first = _run(book, tmp_path)
    assert first.ok and [o.status for o in first.outcomes] == ["exported", "exported"]
    assert [(e.on, e.step) for e in _handoffs(book, "IB1")] == [(AS_OF, "handoff")]
    notes = [row for row in book.outbox_pending("acme") if row.kind == "note"]
    assert sorted(n.payload["invoice"] for n in notes) == ["IB1", "IC1"]
    assert all("collection agency" in n.payload["text"] and n.payload["case"] for n in notes)
    assert {c.status for c in book.handoff_cases()} == {"exported"}

    rows = list(book.iter_open_invoices("acme"))
    later = AS_OF + timedelta(days=7)
    assert [a for a in plan_rows(rows, config_for(tmp_path).policy, later)] == []  # no reminder, no second case

    second = _run(book, tmp_path, as_of=later)
    assert second.outcomes == [] and second.path is None
    assert len(_handoffs(book, "IB1")) == 1 and len([r for r in book.outbox_pending("acme") if r.kind == "note"]) == 2


def test_again_re_exports_one_case_without_recording_the_handoff_twice(book: Store, tmp_path: Path) -> None:
    first = _run(book, tmp_path)
    case = next(o.case for o in first.outcomes if o.debtor == "B1")
    again = _run(book, tmp_path, again=case, as_of=AS_OF + timedelta(days=1))
    assert [(o.case, o.status) for o in again.outcomes] == [(case, "exported")]
    assert again.path != first.path and again.path.name == "2026-10-01-generic-json"
    cases = json.loads((again.path / "cases.json").read_text("utf-8"))["cases"]
    assert [c["reference"] for c in cases] == [case] and cases[0]["as_of"] == "2026-10-01"
    assert len(_handoffs(book, "IB1")) == 1
    stored = book.handoff_case(case)
    assert stored is not None and stored.payload["folder"] == str(again.path) and len(stored.payload["exports"]) == 2
    with pytest.raises(CaseNotFound, match="C999999"):
        _run(book, tmp_path, again="C999999")


def test_a_case_missing_required_data_is_held_back_and_the_rest_exported(book: Store, tmp_path: Path) -> None:
    no_city = make_debtor("C1", name="J. Jansen", kind="consumer",
                          address={"lines": ("Dorpsstraat 12",), "country": "NL"})
    book.write_sync_page("acme", SyncPage(debtors=(no_city,)))
    result = _run(book, tmp_path, agency="generic-csv")
    assert not result.ok
    held = next(o for o in result.outcomes if o.debtor == "C1")
    assert held.status == "held_back"
    assert held.missing == ["debtor.address.postal_code (column 'postal_code')",
                            "debtor.address.city (column 'city')"]
    assert held.as_json()["missing"] == held.missing and held.as_json()["status"] == "held_back"
    rows = (result.path / "invoices.csv").read_text("utf-8").splitlines()
    assert len(rows) == 2 and "Bakkerij De Vries" in rows[1]
    assert not (result.path / "documents" / held.case).exists()  # nothing of the held-back case is in the export
    assert _handoffs(book, "IC1") == [] and len(_handoffs(book, "IB1")) == 1
    assert book.handoff_case(held.case).status == "held_back"

    # the bookkeeper completes the address on the platform; the next export sends the same case
    book.write_sync_page("acme", SyncPage(debtors=(make_debtor("C1", name="J. Jansen", kind="consumer"),)))
    retry = _run(book, tmp_path, agency="generic-csv", as_of=AS_OF + timedelta(days=1))
    assert [(o.case, o.status) for o in retry.outcomes] == [(held.case, "exported")]
    assert retry.ok and len(_handoffs(book, "IC1")) == 1


def test_when_every_case_is_held_back_no_folder_is_left(book: Store, tmp_path: Path) -> None:
    def refusing(connection: str) -> Any:
        from providers.errors import PlatformError

        def fetch(invoice: Any) -> bytes:
            raise PlatformError("404 Not Found", connection=connection, status=404)
        return fetch

    result = _run(book, tmp_path, fetch_pdf=refusing)
    assert [o.status for o in result.outcomes] == ["held_back", "held_back"]
    assert result.outcomes[0].missing == ["the PDF of invoice 2026-0101 (the platform answered: acme: 404 Not Found)"]
    assert result.path is None and list((tmp_path / "handoff").iterdir()) == []


def test_a_writer_failure_leaves_no_half_written_export_and_records_nothing(book: Store, tmp_path: Path,
                                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    import connector.handoff.export as export_module

    def broken(*args: Any) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(export_module, "write_data_file", broken)
    with pytest.raises(OSError, match="disk full"):
        _run(book, tmp_path)
    assert list((tmp_path / "handoff").iterdir()) == []
    assert _handoffs(book, "IB1") == [] and book.outbox_pending("acme") == []


def test_zip_gives_one_archive_with_the_manifest(book: Store, tmp_path: Path) -> None:
    import zipfile

    result = _run(book, tmp_path, as_zip=True)
    assert result.path.name == "2026-09-30-generic-json.zip" and oct(result.path.stat().st_mode & 0o777) == "0o600"
    with zipfile.ZipFile(result.path) as archive:
        names = archive.namelist()
        manifest = json.loads(archive.read("2026-09-30-generic-json/manifest.json"))
    assert "2026-09-30-generic-json/cases.json" in names
    assert sorted(f["path"] for f in manifest["files"]) == sorted(
        n.removeprefix("2026-09-30-generic-json/") for n in names if not n.endswith("manifest.json"))
    assert [p.name for p in (tmp_path / "handoff").iterdir()] == [result.path.name]


def test_a_failed_upload_keeps_the_folder_and_leaves_the_cases_open(book: Store, tmp_path: Path) -> None:
    def unreachable(path: Path) -> str:
        raise UploadFailed("upload to sftp://agency@127.0.0.1:1/in failed: Connection refused")

    failed = _run(book, tmp_path, upload=unreachable)
    assert not failed.ok and "Connection refused" in failed.upload_error
    assert failed.path is not None and (failed.path / "cases.json").exists()
    assert _handoffs(book, "IB1") == [] and book.outbox_pending("acme") == []
    assert {c.status for c in book.handoff_cases()} == {"exported"}
    assert all(not c.handed_off and "Connection refused" in c.payload["upload_error"] for c in book.handoff_cases())

    delivered: list[Path] = []
    retry = _run(book, tmp_path, upload=lambda path: delivered.append(path) or f"/in/{path.name}",
                 as_of=AS_OF + timedelta(days=1))
    assert retry.ok and delivered == [retry.path] and retry.uploaded_to == f"/in/{retry.path.name}"
    assert {o.case for o in retry.outcomes} == {o.case for o in failed.outcomes}  # the same cases, offered again
    assert all(o.uploaded for o in retry.outcomes)
    assert {c.status for c in book.handoff_cases()} == {"uploaded"} and len(_handoffs(book, "IB1")) == 1


def test_a_consumer_whose_letter_term_has_not_passed_owes_no_costs_and_the_case_says_why(book: Store,
                                                                                        tmp_path: Path) -> None:
    from connector.config import Creditor
    from connector.handoff.dossier import InvoiceHistory, build_case
    from connector.handoff.export import outbox_evidence

    invoice = book.invoice("acme", "IC1")
    events = book.events("acme", "IC1")
    creditor = Creditor(name="Acme")
    policy = config_for(tmp_path).policy
    evidence = outbox_evidence(book, [InvoiceHistory(invoice, events)])
    within = build_case("C1", creditor, book.debtor("acme", "C1"), [InvoiceHistory(invoice, events)], policy,
                        date(2026, 9, 5), evidence=evidence)
    assert within.claim["costs"] == 0
    assert "the 14-day letter's term ends on 2026-09-05, not yet passed" in within.claim["costs_basis"]
    without = build_case("C1", creditor, book.debtor("acme", "C1"),
                         [InvoiceHistory(invoice, [e for e in events if e.step != "notice_of_default"])], policy, AS_OF,
                         evidence=evidence)
    assert without.claim["costs"] == 0 and "no 14-day letter" in without.claim["costs_basis"]
    unproven = build_case("C1", creditor, book.debtor("acme", "C1"), [InvoiceHistory(invoice, events)], policy, AS_OF)
    assert unproven.claim["costs"] == 0  # the letter's text (in the outbox) was not given: its wording is unproven
    assert "its text is not on record" in unproven.claim["costs_basis"]
    assert unproven.record["consumer_letter"]["valid"] is False


def test_our_posted_14_day_letter_goes_into_the_documents_as_evidence(book: Store, tmp_path: Path) -> None:
    from connector.models import Event

    letter = tmp_path / "letters" / "acme" / "acme-notice.pdf"
    letter.parent.mkdir(parents=True)
    letter.write_bytes(b"%PDF-1.4 our 14-day letter\n%%EOF\n")
    book.append_event("acme", "IC1", Event(kind=EventKind.TASK_CREATED, on=date(2026, 8, 19), data={
        "kind": "letter", "step": "notice_of_default", "letter": "letters/acme/acme-notice.pdf"}))
    result = _run(book, tmp_path)
    document = json.loads((result.path / "cases.json").read_text("utf-8"))
    consumer = next(c for c in document["cases"] if c["debtor"]["id"] == "C1")
    expected = f"documents/{consumer['reference']}/letter-2026-08-19-acme-notice.pdf"
    assert {"kind": "letter", "invoice": "2026-0102", "file": expected} in consumer["documents"]
    assert consumer["consumer_letter"]["letter"] == expected
    assert (result.path / expected).read_bytes() == letter.read_bytes()
    manifest = json.loads((result.path / "manifest.json").read_text("utf-8"))
    assert expected in {f["path"] for f in manifest["files"]}
    assert ("2026-08-19", "notice_of_default", "task", "letter") in {
        (r["on"], r["step"], r["status"], r["channel"]) for r in consumer["reminders"]}


def test_a_14_day_letter_counting_from_its_date_is_void_and_earns_no_costs(book: Store, tmp_path: Path) -> None:
    from connector.store import schema

    with book.engine.begin() as conn:  # the letter as it was sent: "within 14 days of the date of this letter"
        conn.execute(schema.outbox.update().where(schema.outbox.c.idempotency_key == LETTER_KEY).values(payload={
            "action": {"costs_if_unpaid": "120.00"}, "subject": "Aanmaning",
            "body": "Betaal binnen 14 dagen na dagtekening van deze brief, anders betaalt u € 120,00 incassokosten."}))
    result = _run(book, tmp_path)
    consumer = next(o for o in result.outcomes if o.debtor == "C1")
    assert consumer.claim["costs"] == 0
    document = json.loads((result.path / "cases.json").read_text("utf-8"))
    case = next(c for c in document["cases"] if c["debtor"]["id"] == "C1")
    assert case["consumer_letter"]["valid"] is False
    assert case["consumer_letter"]["problems"] == [
        "its text does not give fourteen days counted from the day after receipt"]
    assert "none claimed: invoice 2026-0102: the 14-day letter of 2026-08-20 is not valid" in (
        case["claim"]["costs_basis"])


def test_the_handoff_notes_reach_the_platform_through_the_delivery_once(book: Store, tmp_path: Path) -> None:
    from datetime import UTC, datetime

    from connector.delivery.run import deliver_connection
    from providers.base import Receipt

    from ...conftest import FakeProvider

    notes: list[tuple[str, str, str]] = []

    class Platform(FakeProvider):
        def add_note(self, invoice: Any, text: str, *, idempotency_key: str) -> Receipt:
            notes.append((invoice.platform_id, text, idempotency_key))
            return Receipt(platform_reference=f"note-{len(notes)}", sent_at=datetime.now(UTC))

        def find_note(self, invoice: Any, idempotency_key: str) -> Receipt | None:
            return None

    result = _run(book, tmp_path)
    config = config_for(tmp_path)
    platform = Platform.connect(config.settings("acme"))
    for _ in range(2):  # a second run finds nothing left to write
        deliver_connection(book, config, platform, "acme", [], as_of=AS_OF)
    cases = {o.invoices[0]: o.case for o in result.outcomes}
    assert sorted(notes) == [
        (invoice, f"Dunning Connector: handed to the collection agency (generic-json) on 2026-09-30 as case "
                  f"{cases[invoice]}; no more reminders are sent.", f"handoff:{cases[invoice]}:{invoice}")
        for invoice in ("IB1", "IC1")
    ]
    assert book.outbox_pending("acme") == []
