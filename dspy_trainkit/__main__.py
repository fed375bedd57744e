"""`python -m dspy_trainkit` runs the `trainkit` command line, for when the console script is not on PATH."""

from .cli.entry import main

if __name__ == "__main__":
    main()
