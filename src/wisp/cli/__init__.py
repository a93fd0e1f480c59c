"""The `wisp` command line: `wisp up` runs the daemon, the other commands talk to its control API."""
