"""Tests of alerting/: the pure incident engine on an injected clock, the outbox,
rotations, drills, significant-incident clocks.
"""
