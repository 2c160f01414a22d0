"""The build manifest: every input and output of a build, from which it can be regenerated and verified."""
