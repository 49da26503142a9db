"""Tests of core/: primitives that import nothing of ours (durations, cron, placement,
redaction, the i18n tables).
"""
