"""Moved to agent.web.csrf: an alias until every test imports the new path."""

import sys

import agent.web.csrf as _moved

sys.modules[__name__] = _moved
