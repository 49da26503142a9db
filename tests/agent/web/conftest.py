"""Tests of agent/web/: every HTTP route and page (Chromium for the console), auth, CSRF
and limits.
"""
