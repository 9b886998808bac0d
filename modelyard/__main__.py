"""`python -m modelyard …`: the CLI, for places (dvc.yaml) that name the interpreter."""

from modelyard.cli import main

if __name__ == "__main__":
    main()
