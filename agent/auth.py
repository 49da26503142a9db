"""Moved to agent.web.auth: an alias until every test imports the new path."""

import sys

import agent.web.auth as _moved

sys.modules[__name__] = _moved
