"""`python -m poolkeeper` is the same as the `poolkeeper` console script."""

from poolkeeper.cli import main

if __name__ == "__main__":
    main()
