"""Hostile inputs: each test feeds repro-build something an attacker controls and checks it fails closed."""
