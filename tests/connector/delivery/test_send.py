"""`dunning send` against the three simulators: every due reminder once, recorded on the platform, never twice."""

from __future__ import annotations

from collections import Counter
from types import SimpleNamespace

from tests.connector.delivery.conftest import planned, send


def mails(kit: SimpleNamespace) -> Counter[tuple[str, tuple[str, ...]]]:
    return Counter((p.connection, m.invoice_ids) for p in kit.world.places for m in p.simulator.sent_mail())


def test_each_due_reminder_goes_out_once_and_a_second_send_mails_nothing(kit: SimpleNamespace) -> None:
    due = [a for a in planned(kit.config, kit.store, kit.world.today) if a.channel.value == "platform_mail"]
    assert due

    first = send(kit)
    second = send(kit)

    print([ (l["connection"], l["status"], l["reason"]) for l in first])
    sent = [line for line in first if line["status"] == "sent"]
    assert sent
    assert all(count == 1 for count in mails(kit).values())
    assert not [line for line in second if line["status"] == "sent"]
    assert sum(len(p.simulator.sent_mail()) for p in kit.world.places) == len(mails(kit))
