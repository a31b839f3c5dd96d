"""Agency formats are data, checked when the config is loaded: a wrong file is refused naming the file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from connector.config import ConfigError, load_config
from connector.handoff.formats import FieldType, load_format, shipped_formats, source_paths

CONFIG = """
[handoff]
agency = "{agency}"
"""


def _load(tmp_path: Path, format_text: str | None, agency: str = "agency-x.toml", extra: str = "") -> object:
    if format_text is not None:
        (tmp_path / "agency-x.toml").write_text(format_text, encoding="utf-8")
    config = tmp_path / "dunning.toml"
    config.write_text(CONFIG.format(agency=agency) + extra, encoding="utf-8")
    return load_config(config)


def test_the_shipped_formats_load_and_cover_what_the_issue_asks() -> None:
    assert {"generic-json", "generic-csv", "incasso-nl"} <= set(shipped_formats())
    assert load_format("generic-csv").rows == "invoice" and load_format("generic-csv").file_type == "csv"
    assert load_format("incasso-nl").file_type == "xlsx"
    assert load_format("generic-json").columns == ()
    assert source_paths()["debtor.address.postal_code"] is FieldType.TEXT
    assert source_paths()["invoice.outstanding"] is FieldType.MONEY
    assert source_paths()["consumer_letter.term_end"] is FieldType.DATE


def test_an_own_format_file_next_to_the_config_is_used(tmp_path: Path) -> None:
    config = _load(tmp_path, 'file_type = "csv"\ndelimiter = ";"\ndecimal_separator = ","\n'
                             '[[columns]]\nname = "Naam"\nsource = "debtor.name"\nrequired = true\n')
    assert load_format(config.handoff.agency, base_dir=tmp_path).delimiter == ";"  # type: ignore[attr-defined]


def test_an_unknown_source_path_is_refused_at_config_load_naming_the_file_and_key(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, 'file_type = "csv"\n[[columns]]\nname = "A"\nsource = "debtor.name"\n'
                        '[[columns]]\nname = "Postcode"\nsource = "debtor.adress.postal_code"\n')
    (problem,) = caught.value.problems
    assert problem.startswith(f"handoff.agency: {tmp_path / 'agency-x.toml'}: columns[1]: ")
    assert "unknown source path 'debtor.adress.postal_code'" in problem and "debtor.address.postal_code" in problem


@pytest.mark.parametrize(("text", "expected"), [
    ('file_type = "pdf"\n', "file_type: Input should be 'csv', 'json' or 'xlsx'"),
    ('file_type = "csv"\ndecimal_separator = ";"\n[[columns]]\nname = "A"\nsource = "reference"\n',
     "decimal_separator: Input should be '.' or ','"),
    ('file_type = "csv"\n[[columns]]\nname = "A"\nsource = "reference"\nrequired = "yes"\n',
     "columns[0].required: Input should be a valid boolean"),
    ('file_type = "csv"\n[[columns]]\nname = "A"\nsource = "invoice.number"\n', "needs rows = \"invoice\""),
    ('file_type = "csv"\n', "a csv format needs at least one [[columns]] table"),
    ('file_type = "json"\nencoding = "klingon"\n', "encoding: unknown encoding 'klingon'"),
    ('file_type = "json"\ncolour = "red"\n', "colour: unknown key (check the spelling)"),
    ('file_type = "json"\ndate_format = "yesterday"\n', "date_format: 'yesterday' is not a date format"),
    ('file_type = "json"\nrequire = ["debtor.iban"]\n', "require: unknown source path(s) 'debtor.iban'"),
    ("file_type = ", "not valid TOML"),
])
def test_a_bad_format_file_is_refused_with_the_key(tmp_path: Path, text: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        _load(tmp_path, text)
    assert expected in caught.value.problems[0] and str(tmp_path / "agency-x.toml") in caught.value.problems[0]


def test_an_unknown_agency_name_lists_the_shipped_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="handoff.agency: unknown agency format 'acme-incasso'; shipped: .*csv"):
        _load(tmp_path, None, agency="acme-incasso")


def test_an_upload_needs_a_key_file_and_an_sftp_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="upload_key: give the private key file"):
        _load(tmp_path, None, agency="generic-csv", extra='upload = "sftp://acme@agency.example/in"\n')
    with pytest.raises(ConfigError, match="handoff.upload: must look like sftp://user@host/path"):
        _load(tmp_path, None, agency="generic-csv", extra='upload = "ftp://agency.example/in"\nupload_key = "k"\n')
    with pytest.raises(ConfigError, match="must not carry a password"):
        _load(tmp_path, None, agency="generic-csv",
              extra='upload = "sftp://acme:secret@agency.example/in"\nupload_key = "k"\n')
