"""Sans-IO codecs: wire dialects encoded and decoded with no I/O."""
