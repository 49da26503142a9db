"""Faults on purpose, across packages: a full disk, corrupt state, overload, a receiver
that fails, reloads with probes in flight.
"""
