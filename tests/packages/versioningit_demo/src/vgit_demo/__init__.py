"""Fixture: a package whose version versioningit derives from git."""
