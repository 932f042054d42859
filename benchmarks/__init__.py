"""Load and cost measurements of EvPower's parts, each with a report."""
