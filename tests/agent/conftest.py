"""Tests of agent/: config loading, the runtime and the daemon (often as a real `vaktpost
run` subprocess), readiness, history and the report.
"""
