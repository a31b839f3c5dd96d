"""Delivery: planned actions → outbox rows → the platforms (or our mail server, a letter, a task), exactly once.

The public surface:
- `send_all` (what `dunning send` runs), `deliver_connection` (one connection's day, for `dunning run`) and its per-row `Outcome` and per-connection `Summary`;
- `queue_confirmation` (an arrangement or promise confirmed in writing; called by the case book);
- `open_tasks` / `complete_task` (`dunning tasks`, `dunning task done`), `close_settled` (tasks whose invoices closed) and `reopen_unsettled` (those with work again).
"""

from connector.delivery.confirmations import queue_confirmation
from connector.delivery.run import deliver_connection, send_all
from connector.delivery.outcome import Outcome, Summary
from connector.delivery.tasks import Task, TaskError, close_settled, complete_task, open_tasks, reopen_unsettled

__all__ = ["Outcome", "deliver_connection", "Summary", "Task", "TaskError", "close_settled", "complete_task", "open_tasks", "queue_confirmation", "reopen_unsettled", "send_all"]
