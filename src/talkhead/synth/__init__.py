"""The embedded default: a synthetic studio (procedural head, speaking actor, recording)."""
