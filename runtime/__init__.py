"""Composition root: settings, embedded services, logging and the `evpower` CLI."""
