"""The benchmark suite (bench/README.md)."""
