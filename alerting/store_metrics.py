"""Moved to agent.state.metrics: an alias until every test imports the new path."""

import sys

import agent.state.metrics as _moved

sys.modules[__name__] = _moved
