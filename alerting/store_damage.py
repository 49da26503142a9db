"""Moved to agent.state.damage: an alias until every test imports the new path."""

import sys

import agent.state.damage as _moved

sys.modules[__name__] = _moved
