"""Moved to agent.state.sqlite: an alias until every test imports the new path."""

import sys

import agent.state.sqlite as _moved

sys.modules[__name__] = _moved
