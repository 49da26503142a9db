"""The state store: one interface (interface.py), SQLite as the embedded default."""
