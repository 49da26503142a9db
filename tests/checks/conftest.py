"""Tests of checks/: each check type against real servers on loopback (TLS, DNS, NTP, ICMP
in a namespace, restic, borg, NUT, Prometheus, Alertmanager).
"""

from tests.backup_fixtures import borg_corrupt, borg_repo, ctx, restic_corrupt, restic_repo
from tests.net_fixtures import pki, targets
from tests.nut_fixtures import nut_server

# The real servers and repositories the check tests share, made once per session
# (a PKI and TLS/HTTP targets, restic and borg repositories, a NUT server).
__all__ = [
    "borg_corrupt",
    "borg_repo",
    "ctx",
    "nut_server",
    "pki",
    "restic_corrupt",
    "restic_repo",
    "targets",
]
