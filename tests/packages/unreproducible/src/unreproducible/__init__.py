"""unreproducible fixture."""
