"""HTTP transports: sockets, pools and deadlines, and the one map of their errors."""
