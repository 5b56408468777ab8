"""wm-harness."""
