"""Repository tooling that runs before anything is installed (standard library only)."""
