"""Tests of alerting/channels/: the contract every registered channel passes, and real
SMTP/webhook/command deliveries.
"""
