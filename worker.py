"""The worker's entry point: ``python worker.py`` (the same as ``bridge worker``)."""

from bridge.cli import main

if __name__ == "__main__":
    main(["worker"])
