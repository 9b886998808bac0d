"""`python -m modelyard.cli …`: the same CLI as `modelyard …`."""

from modelyard.cli import main

if __name__ == "__main__":
    main()
