"""Moved to agent.web.statuspage: an alias until every test imports the new path."""

import sys

import agent.web.statuspage as _moved

sys.modules[__name__] = _moved
