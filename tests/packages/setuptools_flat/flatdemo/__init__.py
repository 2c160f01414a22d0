"""Fixture: a flat-layout package next to the project's locks."""

GREETING = "hello from a flat layout"
