"""In-tree backend fixture."""
