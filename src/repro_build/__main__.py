"""`python -m repro_build` is the same as the `repro-build` console script."""

from repro_build.cli.main import main

if __name__ == "__main__":
    raise SystemExit(main())
