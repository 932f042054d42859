"""Temporal activities: everything a workflow asks the world to do."""
