"""setuptools-scm fixture."""
