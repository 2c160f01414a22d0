"""flit-pure fixture."""

NAME = "flit"
