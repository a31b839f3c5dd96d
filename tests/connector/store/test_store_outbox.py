"""The outbox's minimal life cycle: one row per idempotency key, claimed attempts, a final status."""

from __future__ import annotations


def test_the_same_key_gives_the_same_entry(store):
    first = store.outbox_add("acme", "reminder", "acme:I1:reminder-1", {"invoice": "I1"})
    again = store.outbox_add("acme", "reminder", "acme:I1:reminder-1", {"invoice": "changed"})

    assert again == first
    assert [e.id for e in store.outbox_pending("acme")] == [first.id]


def test_claim_counts_attempts_and_completion_ends_pending(store):
    entry = store.outbox_add("acme", "note", "acme:I1:note-0001", {"text": "step 1 sent"})

    claimed = store.outbox_claim(entry.id)
    assert claimed is not None and claimed.attempts == 1
    store.outbox_complete(entry.id, "sent", receipt={"platform_reference": "N-9"})

    assert store.outbox_claim(entry.id) is None
    assert store.outbox_pending() == []
