"""`python -m meshroom …` runs the same command line as the `meshroom` script."""

from __future__ import annotations

from meshroom.cli import main

main()
