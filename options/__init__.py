"""Command-line options: base (shared), train and test, with the official NeRCo flag names and defaults."""
