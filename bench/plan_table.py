"""Benchmark: `dunning plan` as a table against `dunning plan --json`, for 5,000 actions, stdout piped.

    .venv/bin/python bench/plan_table.py [--actions N]

Builds a SQLite store with N debtors, each with one invoice 15 days overdue (one reminder each), then times both
commands as a user runs them (a fresh process each, best of three) and prints the ratio. The table should take
about the time of the JSON: sorting, totals and formatting are small next to planning itself.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

from connector.models import Debtor, Invoice
from connector.store import Store
from providers.base import SyncPage

AS_OF = "2026-10-20"
PAGE = 500


def build(folder: Path, count: int) -> Path:
    db = folder / "store.sqlite"
    with Store.open(f"sqlite:///{db}") as store:
        store.ensure_connection("acme", "moneybird", "T1")
        for start in range(0, count, PAGE):
            ids = range(start, min(start + PAGE, count))
            debtors = tuple(
                Debtor(connection="acme", platform_id=f"D{i}", name=f"Debiteur {i:05d} B.V.", kind="business",
                       emails=("debiteuren@example.nl",), version="1")
                for i in ids
            )
            invoices = tuple(
                Invoice(connection="acme", platform_id=f"I{i}", number=f"2026-{i:06d}", debtor_id=f"D{i}",
                        issue_date=date(2026, 9, 5), due_date=date(2026, 10, 5), currency="EUR",
                        total=Decimal("4405.44"), amount_paid=Decimal(0), outstanding=Decimal("4405.44"),
                        status="open", last_modified=datetime(2026, 9, 5, tzinfo=UTC), version="1")
                for i in ids
            )
            store.write_sync_page("acme", SyncPage(debtors=debtors, invoices=invoices))
    config = folder / "dunning.toml"
    config.write_text(f'[store]\nurl = "sqlite:///{db}"\n\n[[connections]]\nname = "acme"\nprovider = "moneybird"\n'
                      'tenant = "T1"\nclient_id = "abc"\n', encoding="utf-8")
    return config


def timed(config: Path, *extra: str) -> tuple[float, int]:
    command = [str(Path(sys.executable).parent / "dunning"), "--config", str(config), "plan", "--as-of", AS_OF, *extra]
    best, lines = float("inf"), 0
    for _ in range(3):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        best = min(best, time.perf_counter() - started)
        lines = done.stdout.count("\n")
    return best, lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--actions", type=int, default=5000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        config = build(Path(folder), args.actions)
        json_seconds, json_lines = timed(config, "--json")
        table_seconds, table_lines = timed(config)
    print(f"plan --json: {json_lines} lines in {json_seconds:.2f} s")
    print(f"plan table:  {table_lines} lines in {table_seconds:.2f} s")
    print(f"table / json: {table_seconds / json_seconds:.2f}")


if __name__ == "__main__":
    main()
