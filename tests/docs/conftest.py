"""Tests of docs/: every config key, metric family and endpoint is documented (drift
tests).
"""
