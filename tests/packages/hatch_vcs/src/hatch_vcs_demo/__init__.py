"""hatch-vcs fixture."""
