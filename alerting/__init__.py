"""Incidents, continuity escalation, silences, notification channels, the durable outbox."""
