"""setuptools-pure fixture."""

VALUE = "setuptools"
