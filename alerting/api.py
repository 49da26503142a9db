"""Moved to agent.web.alerting: an alias until every test imports the new path."""

import sys

import agent.web.alerting as _moved

sys.modules[__name__] = _moved
