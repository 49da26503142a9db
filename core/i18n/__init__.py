"""Every text vaktpost shows people: one table per language (sv.py, en.py), the same
keys in each, and one lookup. How to add a language: docs/i18n.md."""

from core.i18n.lookup import DEFAULT, LANGUAGES, TABLES, text, upper_first, words
from core.i18n.reasons import reason

__all__ = ["DEFAULT", "LANGUAGES", "TABLES", "reason", "text", "upper_first", "words"]
