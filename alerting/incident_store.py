"""Moved to agent.state.sqlite_alerting: an alias until every test imports the new path."""

import sys

import agent.state.sqlite_alerting as _moved

sys.modules[__name__] = _moved
