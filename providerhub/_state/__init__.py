"""What calls learn and share: cooldowns, rate limits, and where they are kept."""
