"""Command-line entry points: thin layers over the library."""
