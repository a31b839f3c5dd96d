"""Escalation: the policy, the pure planner, the statutory costs and interest, and the reminder texts."""
