"""The routing loop: candidates, claims, retries and fallback."""
