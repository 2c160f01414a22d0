"""Path-embedding fixture."""
