"""Tests of agent/cli/: the `vaktpost` commands, their output and their one-line errors."""
