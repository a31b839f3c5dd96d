"""The report says when each connection was last synced, and warns where that is before the report's date: figures
as of a later day would silently miss the payments made since."""

from __future__ import annotations

import html as html_lib
import re
from datetime import UTC, date, datetime
from pathlib import Path

from connector.escalation.policy import Policy
from connector.report import build_report
from connector.store import Store
from tests.connector.conftest import FixedClock


def _synced(html: str) -> dict[str, tuple[bool, str]]:
    """Connection → (marked behind, the text shown)."""
    found = re.findall(r'<dd data-figure="synced" data-connection="([^"]+)"( class="behind")?>(.*?)</dd>', html, re.S)
    return {name: (bool(behind), html_lib.unescape(text.strip())) for name, behind, text in found}


def _report(store: Store, tmp_path: Path, as_of: date, lang: str = "en", connection: str | None = None) -> str:
    out = tmp_path / f"report-{as_of}-{lang}-{connection}.html"
    build_report(store, Policy(), as_of, out, store_url="sqlite:///books.sqlite",
                 made_at=datetime(2026, 12, 4, 9, 0, tzinfo=UTC), connection=connection, lang=lang)  # type: ignore[arg-type]
    return out.read_text(encoding="utf-8")


def test_each_connection_shows_its_last_sync_and_a_sync_before_the_report_date_is_flagged(tmp_path: Path) -> None:
    clock = FixedClock()
    with Store.open(f"sqlite:///{tmp_path / 'books.sqlite'}", clock=clock) as store:
        for name in ("acme", "beta", "gamma"):
            store.ensure_connection(name, "fake", name.upper())
        clock.now = datetime(2026, 12, 3, 6, 0, tzinfo=UTC)
        store.mark_synced("acme")
        clock.now = datetime(2026, 12, 4, 6, 0, tzinfo=UTC)
        store.mark_synced("beta")

        today = _synced(_report(store, tmp_path, date(2026, 12, 4)))
        assert today["acme"][0] and "3 December 2026 06:00 UTC" in today["acme"][1] and "run `dunning sync`" in today["acme"][1]
        assert today["beta"] == (False, "4 December 2026 06:00 UTC")
        assert today["gamma"][0] and today["gamma"][1].startswith("never")

        # as of the day of acme's sync, nothing is missing from it
        assert _synced(_report(store, tmp_path, date(2026, 12, 3)))["acme"] == (False, "3 December 2026 06:00 UTC")
        # in Dutch, and only the connection asked for
        dutch = _synced(_report(store, tmp_path, date(2026, 12, 4), lang="nl", connection="acme"))
        assert list(dutch) == ["acme"] and "voer eerst `dunning sync` uit" in dutch["acme"][1]
