"""Moved to core.humanize: an alias until every import uses the new path."""

import sys

import core.humanize as _moved

sys.modules[__name__] = _moved
