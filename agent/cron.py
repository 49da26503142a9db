"""Moved to core.cron: an alias until every test imports the new path."""

import sys

import core.cron as _moved

sys.modules[__name__] = _moved
