"""The config file: what a good one gives, and one clear message with its key path per problem."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from connector.config import ConfigError, load_config, parse_config, starter_config, write_starter_config
from connector.escalation.policy import Policy

REPO = Path(__file__).resolve().parents[2]

CONNECTION = """
[[connections]]
name = "acme"
provider = "fake"
tenant = 1234567
client_id = "app-1"
client_secret_env = "ACME_SECRET"
"""


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "dunning.toml"
    path.write_text(text, encoding="utf-8")
    return path


def _problems(raw: dict) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(raw)
    return caught.value.problems


def test_a_minimal_file_gets_the_defaults_anchored_at_its_folder(tmp_path, fake_provider):
    config = load_config(_write(tmp_path, CONNECTION))

    assert config.store_url == f"sqlite:///{tmp_path.resolve() / 'dunning.sqlite'}"
    assert config.handoff_dir == tmp_path.resolve() / "handoff"
    assert config.policy == Policy()
    assert config.creditor is None
    (acme,) = config.connections
    assert acme.tenant == "1234567"  # a TOML number is an id, kept as text
    assert acme.redirect_uri == "http://localhost:8765/callback"


def test_a_config_saved_with_a_utf8_bom_is_read(tmp_path, fake_provider):
    path = tmp_path / "dunning.toml"
    path.write_bytes(b"\xef\xbb\xbf" + CONNECTION.encode())  # as Notepad saves "UTF-8 with BOM"
    assert [c.name for c in load_config(path).connections] == ["acme"]


def test_settings_read_the_secret_from_the_environment_only(tmp_path, fake_provider):
    config = load_config(_write(tmp_path, CONNECTION + 'api_url = "https://sim.test/xero/"\n'))

    settings = config.settings("acme", environ={"ACME_SECRET": "s3cr3t-value"})
    assert settings.client_secret.get_secret_value() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(settings)
    assert (settings.tenant, settings.api_url) == ("1234567", "https://sim.test/xero")

    with pytest.raises(ConfigError) as caught:
        config.settings("acme", environ={})
    assert caught.value.problems == [
        "connections[0].client_secret_env: the environment variable ACME_SECRET is not set "
        "(export it with the client secret of connection acme's app)"
    ]


def test_an_unknown_connection_name_lists_the_known_ones(tmp_path, fake_provider):
    config = load_config(_write(tmp_path, CONNECTION))
    with pytest.raises(ConfigError, match=r"--connection: no connection named 'acmee' \(known: acme\)"):
        config.connection("acmee")


def test_a_missing_file_says_to_run_init(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "nope.toml")
    assert caught.value.problems == [
        f"{tmp_path / 'nope.toml'}: no such config file; run `dunning init` to create a starter config"
    ]


def test_a_toml_syntax_error_names_line_and_column(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(_write(tmp_path, '[store]\nurl = "sqlite:///x.sqlite"\n[creditor\nname = "x"\n'))
    (problem,) = caught.value.problems
    assert problem.startswith(f"{tmp_path / 'dunning.toml'}: not valid TOML: ")
    assert "line 3" in problem and "column" in problem


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (
            {"connections": [{"name": "a", "provider": "sage", "tenant": "t", "client_id": "c"}]},
            "connections[0].provider: must be one of exact, fake, moneybird, xero",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": "t", "client_id": "c", "client_secret": "x"}]},
            "connections[0].client_secret: not allowed, a secret does not belong in this file; export it in an "
            "environment variable and give that variable's name as client_secret_env",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "client_id": "c"}]},
            "connections[0].tenant: is required",
        ),
        (
            {"connections": [{"name": "a b", "provider": "fake", "tenant": "t", "client_id": "c"}]},
            "connections[0].name: use letters, digits, '-', '_' or '.' only (it is used on the command line)",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": "t", "client_id": "c",
                              "client_secret_env": "sk_live_abc def"}]},
            "connections[0].client_secret_env: the NAME of an environment variable (e.g. XERO_CLIENT_SECRET), "
            "not the secret itself",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": "t", "client_id": "c",
                              "api_url": "sim.test"}]},
            "connections[0].api_url: must be an http:// or https:// URL",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": "t", "client_id": "c",
                              "options": {"region": "de"}}]},
            "connections[0].options.region: Input should be 'nl' or 'be'",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": "t", "client_id": "c",
                              "options": {"regio": "nl"}}]},
            "connections[0].options.regio: unknown key (check the spelling)",
        ),
        ({"store": {"url": "mysql://db/x"}}, "store.url: only sqlite:/// and postgresql+psycopg:// URLs are supported"),
        (
            {"store": {"url": "postgresql://db/x"}},  # would pick psycopg2, which is not a dependency
            "store.url: only sqlite:/// and postgresql+psycopg:// URLs are supported",
        ),
        (
            {"store": {"url": "dunning.sqlite"}},
            "store.url: not a database URL (e.g. sqlite:///dunning.sqlite or postgresql+psycopg://user@host/db)",
        ),
        (
            {"creditor": {"name": "Voorbeeld B.V.", "iban": "NL92 ABNA 0417 1643 00"}},
            "creditor.iban: 'NL92 ABNA 0417 1643 00' is not a valid IBAN: its check digits do not match (a typo?)",
        ),
        (
            {"creditor": {"name": "Voorbeeld B.V.", "iban": "12345"}},
            "creditor.iban: '12345' is not an IBAN (e.g. NL91 ABNA 0417 1643 00)",
        ),
        (
            {"creditor": {"name": "Voorbeeld B.V.", "email": "debiteuren"}},
            "creditor.email: 'debiteuren' is not an e-mail address",
        ),
        (
            {"creditor": {"name": "Voorbeeld B.V.", "country": "XX"}},
            "creditor.country: unknown country 'XX' (expected an ISO-3166 alpha-2 code such as NL)",
        ),
        ({"creditor": {"iban": "NL91ABNA0417164300"}}, "creditor.name: is required"),
        ({"policy": {"min_gap_days": -1}}, "policy.min_gap_days: Input should be greater than or equal to 0"),
        (
            {"policy": {"steps": {"reminder_1": {"days": 40}}}},
            "policy.steps.reminder_1: reminder_1 must go out between 0 and 15 days after the due date",
        ),
        (
            {"connections": [{"name": "a", "provider": "fake", "tenant": " ", "client_id": "c"}]},
            "connections[0].tenant: must not be empty",
        ),
        ({"connections": 3}, "connections: must be a list"),
        *[
            (
                {"store": {"url": url}},
                "store.url: names no database file (an in-memory store forgets everything); e.g. "
                "sqlite:///dunning.sqlite",
            )
            for url in ("sqlite:///", "sqlite:///:memory:", "sqlite://")
        ],
        ({"sync": {"full_every_days": -1}}, "sync.full_every_days: Input should be greater than or equal to 0"),
        ({"sync": {"full_every_days": 1.5}}, "sync.full_every_days: Input should be a valid integer"),
        ({"sync": {"full_every": 7}}, "sync.full_every: unknown key (check the spelling)"),
        ({"handoff": {"folder": "x"}}, "handoff.folder: unknown key (check the spelling)"),
        ({"connection": []}, "connection: unknown key (check the spelling)"),
    ],
)
def test_each_problem_gets_one_message_with_its_key_path(fake_provider, raw, expected):
    assert _problems(raw) == [expected]


def test_every_problem_is_reported_at_once_and_duplicates_named(fake_provider):
    problems = _problems(
        {
            "store": {"url": "nonsense"},
            "creditor": {"name": "X", "iban": "NL00ABNA0417164300"},
            "connections": [
                {"name": "acme", "provider": "fake", "tenant": "1", "client_id": "c"},
                {"name": "acme", "provider": "nope", "tenant": "2", "client_id": "c"},
            ],
        }
    )
    assert problems == [
        "connections[1].name: 'acme' is already used by connections[0]",
        "connections[1].provider: must be one of exact, fake, moneybird, xero",
        "store.url: not a database URL (e.g. sqlite:///dunning.sqlite or postgresql+psycopg://user@host/db)",
        "creditor.iban: 'NL00ABNA0417164300' is not a valid IBAN: its check digits do not match (a typo?)",
    ]


def test_the_real_providers_are_the_documented_choices():
    assert _problems({"connections": [{"name": "a", "provider": "sage", "tenant": "t", "client_id": "c"}]}) == [
        "connections[0].provider: must be one of exact, moneybird, xero"
    ]


def test_a_valid_creditor_is_normalised(fake_provider):
    config = parse_config({"creditor": {"name": "Voorbeeld B.V.", "iban": "nl91 abna 0417 1643 00", "country": "be"}})
    assert (config.creditor.iban, config.creditor.country) == ("NL91ABNA0417164300", "BE")


def test_the_starter_config_is_the_example_file_and_loads(tmp_path):
    assert starter_config() == (REPO / "config.example.toml").read_text(encoding="utf-8")
    path = tmp_path / "cfg" / "dunning.toml"
    write_starter_config(path)
    config = load_config(path)
    assert config.connections == () and config.store_url.endswith("/cfg/dunning.sqlite")
    with pytest.raises(ConfigError, match="already exists"):
        write_starter_config(path)


def test_every_commented_setting_in_the_example_is_valid_and_shows_the_default():
    """Uncommenting the documented defaults (store, creditor, policy, handoff) must change nothing in the policy."""
    text = starter_config().split("# --- connections")[0]
    uncommented = re.sub(r"(?m)^# ((?:\[|[a-z_]+ = ).*)$", r"\1", text)
    raw = tomllib.loads(uncommented)

    config = parse_config(raw)
    assert config.policy == Policy()
    assert config.creditor is not None and config.creditor.iban == "NL91ABNA0417164300"
    assert raw["policy"]["steps"]["reminder_1"]["days"] == 1  # the lines were really uncommented


def _sharing(token_key: str, owner_changes: dict | None = None) -> dict:
    owner = {"name": "acme", "provider": "fake", "tenant": "1", "client_id": "app-1"} | (owner_changes or {})
    return {"connections": [owner, {"name": "acme-holding", "provider": "fake", "tenant": "2", "client_id": "app-1",
                                    "token_key": token_key}]}


def test_a_connection_may_share_another_connections_authorisation(fake_provider):
    config = parse_config(_sharing("acme"))
    assert [config.settings(n).token_name for n in ("acme", "acme-holding")] == ["acme", "acme"]


@pytest.mark.parametrize(
    ("token_key", "owner_changes", "expected"),
    [
        ("nobody", {}, "connections[1].token_key: 'nobody' is not another connection in this file"),
        ("acme-holding", {}, "connections[1].token_key: 'acme-holding' is not another connection in this file"),
        ("acme", {"client_id": "app-2"},
         "connections[1].token_key: 'acme' is another platform or app (provider and client_id must match)"),
        ("acme", {"token_key": "acme-holding"},
         "connections[1].token_key: 'acme' itself shares 'acme-holding''s tokens; name that one"),
    ],
)
def test_a_wrong_token_key_is_named(fake_provider, token_key, owner_changes, expected):
    assert expected in _problems(_sharing(token_key, owner_changes))


def test_init_replaces_a_config_whole_or_not_at_all(tmp_path, monkeypatch):
    path = tmp_path / "dunning.toml"
    path.write_text("# mine\n", encoding="utf-8")

    def disk_full(source, target):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("os.replace", disk_full)
    with pytest.raises(ConfigError, match=r"dunning.toml: cannot be written \(No space left on device\)"):
        write_starter_config(path, force=True)
    assert path.read_text(encoding="utf-8") == "# mine\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["dunning.toml"]  # no partial file left behind


def test_init_on_a_folder_says_to_give_a_file(tmp_path):
    with pytest.raises(ConfigError, match=r"is a folder; give the config file's path, e\.g\. .*dunning\.toml"):
        write_starter_config(tmp_path, force=True)


@pytest.mark.parametrize("provider", ["exact", "moneybird", "xero"])
def test_the_example_documents_every_option_of_each_platform(provider):
    from connector import plugins

    documented = set(re.findall(r"(?m)^# # ([a-z_]+) = ", starter_config()))
    assert set(plugins.provider_class(provider).Options.model_fields) <= documented


@pytest.mark.parametrize(
    ("creditor", "expected"),
    [
        ({"vat_number": "NL004495446B01"}, "creditor.vat_number: 'NL004495446B01' is not a valid EU VAT number"),
        ({"country": "BE", "coc_number": "0403.170.702"}, "not a valid Belgian enterprise number"),
        ({"country": "NL", "coc_number": "1234567"}, "not a KvK number (8 digits"),
        ({"email": "debiteuren@acme"}, "creditor.email: 'debiteuren@acme' is not an e-mail address"),
        ({"iban": "NL91 ABNA 0417 1643 01"}, "its check digits do not match"),
    ],
)
def test_creditor_numbers_are_checked_with_python_stdnum_and_the_email_type(creditor, expected):
    (problem,) = _problems({"creditor": {"name": "Acme B.V."} | creditor})
    assert expected in problem


def test_valid_creditor_numbers_pass_and_come_out_compact():
    config = parse_config({"creditor": {"name": "Acme", "country": "BE", "coc_number": "0403.170.701",
                                        "vat_number": "BE 0403.170.701", "iban": "BE68 5390 0754 7034",
                                        "email": "debiteuren@acme.be"}})
    assert (config.creditor.vat_number, config.creditor.iban) == ("BE0403170701", "BE68539007547034")


def test_a_creditor_in_belgium_claims_on_businesses_under_belgian_law_unless_the_policy_says_otherwise(fake_provider):
    assert parse_config({"creditor": {"name": "Voorbeeld BV", "country": "BE"}}).policy.business_law == "BE"
    assert parse_config({"creditor": {"name": "Voorbeeld B.V.", "country": "NL"}}).policy.business_law == "NL"
    assert parse_config({"creditor": {"name": "Voorbeeld BV", "country": "BE"},
                         "policy": {"business_law": "NL"}}).policy.business_law == "NL"
    assert _problems({"policy": {"business_law": "DE"}}) == ["policy.business_law: Input should be 'NL' or 'BE'"]
