"""Audio: reading and preparing a sequence's microphone, and features aligned to its frames."""
