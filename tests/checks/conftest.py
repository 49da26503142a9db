"""Tests of checks/: each check type against real servers on loopback (TLS, DNS, NTP, ICMP
in a namespace, restic, borg, NUT, Prometheus, Alertmanager).
"""
