"""Moved to agent.web.guard: an alias until every test imports the new path."""

import sys

import agent.web.guard as _moved

sys.modules[__name__] = _moved
