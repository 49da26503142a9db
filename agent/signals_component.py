"""Moved to agent.web.signals: an alias until every test imports the new path."""

import sys

import agent.web.signals as _moved

sys.modules[__name__] = _moved
