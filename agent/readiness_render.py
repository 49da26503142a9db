"""Moved to agent.web.readiness_render: an alias until every test imports the new path."""

import sys

import agent.web.readiness_render as _moved

sys.modules[__name__] = _moved
