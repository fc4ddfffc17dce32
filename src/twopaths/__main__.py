"""``python -m twopaths`` is the same as the ``twopaths`` console script."""

from twopaths.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
