"""Tests of bench/: each benchmark runs in a quick mode, so the scripts cannot rot."""
