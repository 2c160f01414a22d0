"""`python -m reprobuild` is the same as the `repro-build` console script."""

from reprobuild.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
