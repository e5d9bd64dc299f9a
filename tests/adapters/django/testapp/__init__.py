"""A tiny platform for the shared layer's tests: a hook that records what it is told."""
