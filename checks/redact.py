"""Moved to core.redact: an alias until every import uses the new path."""

import sys

import core.redact as _moved

sys.modules[__name__] = _moved
