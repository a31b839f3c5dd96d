"""Handing cases to a collection agency: the dossier, the agency formats, the export folder and its upload.

- `build_case` (pure): one debtor's case with the dossier agencies ask for, from store data and the legal module;
- `load_format` / `AgencyFormat`: the agency's file as data (`mappings/agencies/*.toml`), checked when loaded;
- `export_cases`: one `dunning export` run (cases due, held back or exported once, recorded, uploaded);
- `upload_export`: SFTP delivery of an export.
"""

from connector.handoff.dossier import Case, InvoiceHistory, build_case
from connector.handoff.export import CaseOutcome, ExportResult, export_cases
from connector.handoff.formats import AgencyFormat, FormatError, load_format, shipped_formats

__all__ = [
    "AgencyFormat",
    "Case",
    "CaseOutcome",
    "ExportResult",
    "FormatError",
    "InvoiceHistory",
    "build_case",
    "export_cases",
    "load_format",
    "shipped_formats",
]
