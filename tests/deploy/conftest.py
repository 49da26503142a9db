"""Tests of deploy/: Prometheus rules with promtool, Alertmanager configs with amtool, the
Grafana dashboard, containers and compose.
"""
