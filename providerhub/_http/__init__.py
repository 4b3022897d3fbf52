"""Providers that are HTTP endpoints: a codec driven over a transport."""
