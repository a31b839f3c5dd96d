"""Each shipped agency format, read back with the reader an agency would use, field by field, for a realistic
business case and a consumer case — interest and costs to the cent, the 14-day letter's evidence, the documents,
the manifest's hashes and formula neutralising."""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import jsonschema
import openpyxl
import pytest

from connector.handoff import export_cases, load_format
from connector.handoff.formats import case_schema
from connector.store import Store

from .conftest import AS_OF, LETTER_BODY, PdfPlatform, config_for

# Business B1: 1,000.00 outstanding since the due date 2026-06-20; 210.00 of it paid on 2026-07-20.
# Commercial interest (art. 6:119a): 10.15 % until 30 June, 10.40 % from 1 July 2026, each day / 365.
#   1,000.00: 10 days x 10.15 % + 92 days (1 Jul - 30 Sep) x 10.40 % = 2.78082 + 26.21370
#   210.00 (paid 20 Jul): 10 days x 10.15 % + 20 days x 10.40 % = 0.58397 + 1.19671
#   together 30.77521 -> 30.78 (rounded once, at the end)
B_INTEREST = Decimal("30.78")
B_COSTS = Decimal("150.00")  # max(40, 15 % of 1,000.00)
# Consumer C1: 800.00 due 2026-07-01; 200.00 paid 28 Aug (within the 14-day term), 100.00 on 10 Sep (after it).
# Statutory interest (art. 6:119) 4 % in 2026, from 2 July:
#   500.00: 91 days = 4.98630 · 200.00 (to 28 Aug): 58 days = 1.27123 · 100.00 (to 10 Sep): 71 days = 0.77808
#   together 7.03562 -> 7.04
C_INTEREST = Decimal("7.04")
C_COSTS = Decimal("90.00")  # 15 % of the 600.00 unpaid when the term ended on 5 Sep (the later 100.00 does not count)


def _export(book: Store, tmp_path: Path, agency: str, **kwargs: Any) -> Any:
    config = config_for(tmp_path, agency=agency)
    return export_cases(book, config, load_format(agency), AS_OF, out_dir=config.handoff_dir,
                        fetch_pdf=PdfPlatform(), **kwargs)


def test_generic_json_validates_against_its_schema_and_carries_the_whole_dossier(book: Store, tmp_path: Path) -> None:
    result = _export(book, tmp_path, "generic-json")
    assert result.ok and result.path is not None
    document = json.loads((result.path / "cases.json").read_text("utf-8"))
    jsonschema.Draft202012Validator(case_schema(), format_checker=jsonschema.FormatChecker()).validate(document)
    assert document["format"] == "dunning-case/1" and document["as_of"] == "2026-09-30"
    business, consumer = sorted(document["cases"], key=lambda c: c["debtor"]["id"])

    assert business["creditor"] == {
        "name": "Acme Installaties B.V.",
        "address": {"lines": ["Damrak 1"], "street": "Damrak 1", "postal_code": "1012 LG", "city": "Amsterdam",
                    "region": None, "country": "NL"},
        "coc_number": "87654321", "vat_number": "NL004495445B01", "iban": "NL91ABNA0417164300", "bic": None,
        "email": "debiteuren@acme.nl", "phone": "+31 20 123 4567",
    }
    assert business["debtor"] == {
        "id": "B1", "name": "Bakkerij De Vries B.V.", "kind": "business", "contact_person": "Anna de Vries",
        "email": "debiteuren@example.nl", "emails": ["debiteuren@example.nl"], "phone": "020 555 0101",
        "address": {"lines": ["Keizersgracht 1"], "street": "Keizersgracht 1", "postal_code": "1015 CJ",
                    "city": "Amsterdam", "region": None, "country": "NL"},
        "coc_number": "12345678", "vat_number": "NL123456789B01", "language": "nl",
    }
    reference = business["reference"]
    assert business["invoices"] == [{
        "id": "IB1", "number": "2026-0101", "reference": "Broodovens onderhoud", "issue_date": "2026-05-21",
        "due_date": "2026-06-20", "currency": "EUR", "original": "1210.00", "paid": "210.00",
        "outstanding": "1000.00", "days_past_due": 102, "interest": str(B_INTEREST), "status": "late",
        "document": f"documents/{reference}/invoice-2026-0101.pdf",
    }]
    claim = business["claim"]
    assert (claim["principal"], claim["interest"], claim["costs"]) == ("1000.00", str(B_INTEREST), str(B_COSTS))
    assert claim["total"] == str(Decimal("1000.00") + B_INTEREST + B_COSTS)
    assert "art. 6:96 lid 4 BW: max(EUR 40.00" in claim["costs_basis"] and "EUR 1,000.00" in claim["costs_basis"]
    assert "art. 6:119a" in claim["interest_basis"]
    assert business["notice_of_default"] == {"sent_on": "2026-08-05", "pay_by": "2026-08-19",
                                             "channel": "platform_mail"}
    assert business["consumer_letter"] is None
    assert [(r["on"], r["step"], r["status"]) for r in business["reminders"]] == [
        ("2026-06-21", "reminder_1", "sent"), ("2026-06-26", "reminder_2", "sent"),
        ("2026-07-01", "final_reminder", "sent"), ("2026-07-06", "call", "task"),
        ("2026-07-20", "written_reminder", "sent"), ("2026-08-05", "notice_of_default", "sent"),
    ]
    assert business["reminders"][0]["receipt"] == {"reference": "ref-k-b-r1", "sent_at": None,
                                                   "recipients": ["debiteuren@example.nl"],
                                                   "detail": "sent by the platform"}
    assert business["holds"] == [{"kind": "dispute", "invoice": "2026-0101", "since": "2026-06-28", "until": None,
                                  "ended_on": "2026-06-30", "reason": "says ovens not serviced"}]
    assert business["payments"] == [{"invoice": "2026-0101", "on": "2026-07-20", "amount": "210.00"}]
    assert business["notes"] == [{"invoice": "2026-0101", "on": "2026-07-07",
                                  "text": "=HYPERLINK(\"http://evil\") promised to pay"}]  # JSON is data: verbatim
    assert business["summary"]["reminder_count"] == 5 and business["summary"]["last_reminder_on"] == "2026-08-05"

    assert consumer["debtor"] == {
        "id": "C1", "name": "J. Jansen", "kind": "consumer", "contact_person": None, "email": "j.jansen@example.nl",
        "emails": ["j.jansen@example.nl"], "phone": "+31 6 1234 5678",
        "address": {"lines": ["Dorpsstraat 12"], "street": "Dorpsstraat 12", "postal_code": "1234 AB",
                    "city": "Hoorn", "region": None, "country": "NL"},
        "coc_number": None, "vat_number": None, "language": None,
    }
    assert [(r["on"], r["step"], r["status"], r["invoices"]) for r in consumer["reminders"]] == [
        ("2026-07-02", "reminder_1", "sent", ["2026-0102"]), ("2026-07-07", "reminder_2", "sent", ["2026-0102"]),
        ("2026-07-31", "written_reminder", "sent", ["2026-0102"]),
        ("2026-08-20", "notice_of_default", "sent", ["2026-0102"]),
    ]
    assert consumer["holds"] == [] and consumer["notes"] == []
    # the 2026 consumer rate is in the table unconfirmed (domain.md: verify): the agency is told, never left to trust it
    [unsure] = consumer["warnings"]
    assert "not yet confirmed by a publication (4 % from 2026-01-01)" in unsure
    assert consumer["documents"] == [{"kind": "invoice", "invoice": "2026-0102",
                                      "file": f"documents/{consumer['reference']}/invoice-2026-0102.pdf"}]
    assert consumer["invoices"][0] | {"document": None} == {
        "id": "IC1", "number": "2026-0102", "reference": None, "issue_date": "2026-06-01", "due_date": "2026-07-01",
        "currency": "EUR", "original": "800.00", "paid": "300.00", "outstanding": "500.00", "days_past_due": 91,
        "interest": str(C_INTEREST), "status": "late", "document": None,
    }
    claim = consumer["claim"]
    assert (claim["principal"], claim["interest"], claim["costs"]) == ("500.00", str(C_INTEREST), str(C_COSTS))
    assert claim["total"] == str(Decimal("500.00") + C_INTEREST + C_COSTS)
    assert "EUR 600.00 unpaid when the 14-day letter's term ended (2026-09-05)" in claim["costs_basis"]
    letter = consumer["consumer_letter"]
    assert letter == {
        "sent_on": "2026-08-20", "channel": "platform_mail", "invoices": ["2026-0102"],
        "text": "Laatste aanmaning: factuur 2026-0102\n" + LETTER_BODY, "stated_costs": "120.00",
        "receipt": {"reference": f"ref-{'acme:reminder:C1:notice_of_default'}", "sent_at": "2026-08-20T08:15:00+00:00",
                    "recipients": ["j.jansen@example.nl"], "detail": "sent by the platform"},
        "letter": None, "presumed_receipt": "2026-08-22", "term_end": "2026-09-05", "term_passed": True,
        "valid": True, "problems": [],
    }
    assert consumer["notice_of_default"] == {"sent_on": "2026-08-20", "pay_by": "2026-09-05",
                                             "channel": "platform_mail"}
    assert consumer["arrangements"] == [{
        "invoice": "2026-0102", "agreed_on": "2026-07-10", "ended_on": "2026-07-27", "down_payment": None,
        "instalments": [{"due": "2026-07-20", "amount": "400.00"}, {"due": "2026-08-20", "amount": "400.00"}],
    }]
    assert [p["amount"] for p in consumer["payments"]] == ["200.00", "100.00"]


def test_generic_csv_has_one_row_per_invoice_with_neutralised_formulas(book: Store, tmp_path: Path) -> None:
    result = _export(book, tmp_path, "generic-csv")
    with (result.path / "invoices.csv").open(encoding="utf-8", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["invoice_number"] for r in rows] == ["2026-0101", "2026-0102"]
    business, consumer = rows
    assert business | {"case": "", "invoice_pdf": "", "costs_basis": "", "reminder_history": ""} == {
        "case": "", "creditor_name": "Acme Installaties B.V.", "creditor_coc_number": "87654321",
        "creditor_vat_number": "NL004495445B01", "creditor_iban": "NL91ABNA0417164300", "debtor_id": "B1",
        "debtor_name": "Bakkerij De Vries B.V.", "debtor_kind": "business", "contact_person": "Anna de Vries",
        "email": "debiteuren@example.nl", "phone": "020 555 0101", "street": "Keizersgracht 1",
        "postal_code": "1015 CJ", "city": "Amsterdam", "country": "NL", "coc_number": "12345678",
        "vat_number": "NL123456789B01", "invoice_number": "2026-0101", "invoice_reference": "Broodovens onderhoud",
        "issue_date": "2026-05-21", "due_date": "2026-06-20", "currency": "EUR", "original_amount": "1210.00",
        "paid": "210.00", "outstanding": "1000.00", "days_past_due": "102", "interest": "30.78",
        "case_interest": "30.78", "case_costs": "150.00", "costs_basis": "", "case_total": "1180.78",
        "notice_of_default_sent_on": "2026-08-05", "pay_by": "2026-08-19", "consumer_letter_sent_on": "",
        "consumer_letter_presumed_receipt": "", "consumer_letter_term_end": "", "reminder_history": "",
        "holds": "2026-06-28 dispute 2026-0101 (ended 2026-06-30): says ovens not serviced", "arrangements": "",
        "notes": "'2026-07-07 2026-0101: =HYPERLINK(\"http://evil\") promised to pay"[1:], "invoice_pdf": "",
    }
    assert business["case"].startswith("C")
    assert business["invoice_pdf"] == f"documents/{business['case']}/invoice-2026-0101.pdf"
    assert business["reminder_history"].startswith("2026-06-21 reminder_1 (platform_mail); ")
    assert "2026-07-06 call [task]" in business["reminder_history"]
    assert consumer["phone"] == "'+31 6 1234 5678"  # a leading + would make a spreadsheet compute it
    assert (consumer["interest"], consumer["case_costs"], consumer["case_total"]) == ("7.04", "90.00", "597.04")
    assert (consumer["consumer_letter_sent_on"], consumer["consumer_letter_presumed_receipt"],
            consumer["consumer_letter_term_end"]) == ("2026-08-20", "2026-08-22", "2026-09-05")


def test_dutch_agency_xlsx_has_dutch_columns_real_numbers_and_dates(book: Store, tmp_path: Path) -> None:
    result = _export(book, tmp_path, "incasso-nl")
    sheet = openpyxl.load_workbook(result.path / "aanlevering.xlsx")["Aanlevering"]
    header, *rows = [list(row) for row in sheet.iter_rows(values_only=True)]
    assert header[:8] == ["Dossiernummer", "Opdrachtgever", "KvK opdrachtgever", "IBAN opdrachtgever",
                          "Debiteurnummer", "Naam debiteur", "Soort debiteur", "Contactpersoon"]
    business, consumer = (dict(zip(header, row, strict=True)) for row in rows)
    case = business["Dossiernummer"]
    numbers = {key: Decimal(str(business.pop(key))) for key in (
        "Factuurbedrag", "Betaald", "Openstaand", "Wettelijke rente factuur", "Hoofdsom dossier",
        "Wettelijke rente dossier", "Incassokosten", "Totaal vordering")}
    assert numbers == {"Factuurbedrag": Decimal("1210.00"), "Betaald": Decimal("210.00"),
                       "Openstaand": Decimal("1000.00"), "Wettelijke rente factuur": B_INTEREST,
                       "Hoofdsom dossier": Decimal("1000.00"), "Wettelijke rente dossier": B_INTEREST,
                       "Incassokosten": B_COSTS, "Totaal vordering": Decimal("1180.78")}
    assert business == {
        "Dossiernummer": case, "Opdrachtgever": "Acme Installaties B.V.", "KvK opdrachtgever": "87654321",
        "IBAN opdrachtgever": "NL91ABNA0417164300", "Debiteurnummer": "B1", "Naam debiteur": "Bakkerij De Vries B.V.",
        "Soort debiteur": "Bedrijf", "Contactpersoon": "Anna de Vries", "Adres": "Keizersgracht 1",
        "Postcode": "1015 CJ", "Plaats": "Amsterdam", "Land": "NL", "E-mailadres": "debiteuren@example.nl",
        "Telefoonnummer": "020 555 0101", "KvK-nummer": "12345678", "Btw-nummer": "NL123456789B01",
        "Factuurnummer": "2026-0101", "Omschrijving": "Broodovens onderhoud",
        "Factuurdatum": datetime(2026, 5, 21), "Vervaldatum": datetime(2026, 6, 20), "Valuta": "EUR",
        "Dagen over vervaldatum": 102,
        "Grondslag incassokosten": "art. 6:96 lid 4 BW: max(EUR 40.00, the scale of the Besluit vergoeding voor "
        "buitengerechtelijke incassokosten) on the principal of EUR 1,000.00",
        "Datum ingebrekestelling": datetime(2026, 8, 5), "Uiterste betaaldatum": datetime(2026, 8, 19),
        "Veertiendagenbrief verzonden": None, "Veertiendagenbrief ontvangen (vermoed)": None,
        "Einde termijn veertiendagenbrief": None, "Veertiendagenbrief geldig": None,
        "Aantal herinneringen": 5, "Laatste herinnering": datetime(2026, 8, 5),
        "Herinneringshistorie": "2026-06-21 reminder_1 (platform_mail); 2026-06-26 reminder_2 (platform_mail); "
        "2026-07-01 final_reminder (platform_mail); 2026-07-06 call [task]; 2026-07-20 written_reminder "
        "(platform_mail); 2026-08-05 notice_of_default (platform_mail)",
        "Betwisting / betaalbelofte": "2026-06-28 dispute 2026-0101 (ended 2026-06-30): says ovens not serviced",
        "Betalingsregeling": None,
        "Gespreksnotities": '2026-07-07 2026-0101: =HYPERLINK("http://evil") promised to pay',
        "Factuur (pdf)": f"documents/{case}/invoice-2026-0101.pdf",
    }
    assert business["Soort debiteur"] == "Bedrijf" and consumer["Soort debiteur"] == "Particulier"
    assert consumer["Telefoonnummer"] == "'+31 6 1234 5678"
    assert Decimal(str(consumer["Incassokosten"])) == C_COSTS
    assert Decimal(str(consumer["Wettelijke rente dossier"])) == C_INTEREST
    assert consumer["Veertiendagenbrief verzonden"].date() == date(2026, 8, 20)
    assert consumer["Veertiendagenbrief ontvangen (vermoed)"].date() == date(2026, 8, 22)
    assert consumer["Einde termijn veertiendagenbrief"].date() == date(2026, 9, 5)
    assert consumer["Veertiendagenbrief geldig"] == "ja"
    assert sheet["V2"].number_format == "0.00" and sheet["S2"].number_format == "dd-mm-yyyy"
    assert all(cell.data_type != "f" for row in sheet.iter_rows() for cell in row)  # no formula anywhere


def test_the_manifest_lists_every_file_with_its_sha256_and_the_case_totals(book: Store, tmp_path: Path) -> None:
    result = _export(book, tmp_path, "generic-json")
    manifest = json.loads((result.path / "manifest.json").read_text("utf-8"))
    on_disk = sorted(p.relative_to(result.path).as_posix() for p in result.path.rglob("*")
                     if p.is_file() and p.name != "manifest.json")
    assert sorted(f["path"] for f in manifest["files"]) == on_disk
    assert len(on_disk) == 3  # cases.json and one invoice PDF per case
    for listed in manifest["files"]:
        content = (result.path / listed["path"]).read_bytes()
        assert listed["sha256"] == hashlib.sha256(content).hexdigest() and listed["bytes"] == len(content)
    assert manifest["totals"] == {"EUR": {"cases": 2, "principal": "1500.00", "interest": "37.82",
                                          "costs": "240.00", "total": "1777.82"}}
    assert {c["debtor"]: c["total"] for c in manifest["cases"]} == {"B1": "1180.78", "C1": "597.04"}
    assert oct(result.path.stat().st_mode & 0o777) == "0o700"
    assert {oct(p.stat().st_mode & 0o777) for p in result.path.rglob("*")} == {"0o700", "0o600"}
    assert {oct(p.stat().st_mode & 0o777) for p in result.path.rglob("*") if p.is_file()} == {"0o600"}


HOSTILE = {"name": "=cmd|' /C calc'!A0", "contact_person": "@SUM(1+1)", "phone": "-2+3",
           "vat_number": "+NL1", "coc_number": "=1+2"}


@pytest.mark.parametrize(("agency", "read"), [("generic-csv", "csv"), ("incasso-nl", "xlsx")])
def test_cells_starting_with_a_formula_character_are_neutralised(agency: str, read: str, book: Store,
                                                                 tmp_path: Path) -> None:
    from providers.base import SyncPage

    from ...conftest import make_debtor

    hostile = make_debtor("B1", **HOSTILE)
    book.write_sync_page("acme", SyncPage(debtors=(hostile,)))
    result = _export(book, tmp_path, agency)
    if read == "csv":
        with (result.path / "invoices.csv").open(encoding="utf-8", newline="") as handle:
            row = next(csv.DictReader(handle))
        cells = [row["debtor_name"], row["contact_person"], row["phone"], row["vat_number"], row["coc_number"]]
    else:
        sheet = openpyxl.load_workbook(result.path / "aanlevering.xlsx").active
        header, first = [list(r) for r in sheet.iter_rows(max_row=2, values_only=True)]
        row = dict(zip(header, first, strict=True))
        cells = [row["Naam debiteur"], row["Contactpersoon"], row["Telefoonnummer"], row["Btw-nummer"],
                 row["KvK-nummer"]]
        assert all(cell.data_type != "f" for r in sheet.iter_rows() for cell in r)
    assert cells == ["'" + HOSTILE[key] for key in ("name", "contact_person", "phone", "vat_number", "coc_number")]


def test_tab_and_carriage_return_starts_are_neutralised_too() -> None:
    from connector.handoff.writers import neutralise

    assert [neutralise(t) for t in ("\tx", "\rx", "=x", "+x", "-x", "@x", "x=1", "")] == [
        "'\tx", "'\rx", "'=x", "'+x", "'-x", "'@x", "x=1", ""]


OWN_FORMAT = """
description = "An agency of one's own: one row per case, semicolons, decimal comma, Dutch dates, Windows-1252"
file_type = "csv"
file_name = "dossiers.csv"
encoding = "cp1252"
delimiter = ";"
decimal_separator = ","
date_format = "%d-%m-%Y"
rows = "case"

[[columns]]
name = "Klantnummer"
value = "ACME-0042"

[[columns]]
name = "Dossier"
source = "reference"
required = true

[[columns]]
name = "Soort"
source = "debtor.kind"
values = { business = "B", consumer = "P" }

[[columns]]
name = "Naam"
source = "debtor.name"
max_length = 8

[[columns]]
name = "Facturen"
source = "summary.invoice_numbers"
join = "|"

[[columns]]
name = "Oudste vervaldatum"
source = "summary.oldest_due_date"

[[columns]]
name = "Totaal"
source = "claim.total"

[[columns]]
name = "Rente"
source = "claim.interest"
decimals = 3

[[columns]]
name = "Brief geldig"
source = "consumer_letter.valid"
values = { true = "ja", false = "nee" }

[[columns]]
name = "Termijn tot"
source = "consumer_letter.term_end"
date_format = "%Y%m%d"
"""


def test_an_own_format_file_sets_every_formatting_option(book: Store, tmp_path: Path) -> None:
    (tmp_path / "own.toml").write_text(OWN_FORMAT, encoding="utf-8")
    config = config_for(tmp_path)
    agency = load_format("own.toml", base_dir=tmp_path)
    result = export_cases(book, config, agency, AS_OF, out_dir=config.handoff_dir)
    with (result.path / "dossiers.csv").open(encoding="cp1252", newline="") as handle:
        rows = list(csv.DictReader(handle, delimiter=";"))
    business, consumer = sorted(rows, key=lambda r: r["Soort"])
    assert business == {"Klantnummer": "ACME-0042", "Dossier": business["Dossier"], "Soort": "B", "Naam": "Bakkerij",
                        "Facturen": "2026-0101", "Oudste vervaldatum": "20-06-2026", "Totaal": "1180,78",
                        "Rente": "30,780", "Brief geldig": "", "Termijn tot": ""}
    assert (consumer["Soort"], consumer["Totaal"], consumer["Brief geldig"], consumer["Termijn tot"]) == (
        "P", "597,04", "ja", "20260905")
    assert result.outcomes[0].folder == str(result.path) and not (result.path / "documents").exists()
