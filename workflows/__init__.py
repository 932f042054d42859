"""Temporal workflows: ChargingSession, TopUp and maintenance. Deterministic code only."""
