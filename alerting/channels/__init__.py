"""Notification channels: one module per YAML `type:`, registered in registry.py."""
