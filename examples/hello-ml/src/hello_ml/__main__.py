"""`hello-ml`: print the example computation and where CUDA's runtime would come from."""

from __future__ import annotations

import json
import os
import sys

from hello_ml import __version__, checksum


def main() -> int:
    print(
        json.dumps(
            {
                "hello-ml": __version__,
                "python": sys.version.split()[0],
                "checksum": checksum(),
                "PYTHONHASHSEED": os.environ.get("PYTHONHASHSEED"),
            },
            sort_keys=True,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
