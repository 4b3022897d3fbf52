"""Cooldowns, probes and rate-limit counts shared through Redis, so that every process
and replica pointing at one Redis agrees on them (the ``providerhub[redis]`` extra).

What each call costs, in Redis commands, and why:

- Breaker state is read through a *mirror*: each process re-reads a provider's state at
  most every ``refresh`` seconds (0.25 by default), so a healthy provider costs no Redis
  command per call, and a cooldown opened anywhere is honoured everywhere within
  ``refresh`` plus one round trip. A failure (one script), a success after failures (one
  ``DEL``), claiming the probe and giving it back (one script each) go to Redis at once.
- The half-open probe is a key set with ``SET NX PX`` inside the claiming script: one
  process, one call, probes; the key expires after ``probe_ttl`` should that process die.
- A provider's or client key's rate limit is one script per request that admits and
  counts it atomically (a sorted set of the times requests were let in, and one-second
  buckets of the tokens reported), so two replicas under ``rpm = 5`` let exactly five
  through in any 60 seconds. The tokens answers reported are counted by one more script
  per provider every 50 ms at most, sent from a thread of the limiter's own so that no
  answer waits for it. The script touches the keys it needs: a look at a provider's token
  total costs two hash fields, not the 60 buckets of the window.
- The scripts go straight to connections of redis-py's ``Connection`` class, not through
  its client and pool, whose layers cost twice the round trip (:class:`_Connections`).
- On an event loop (``acreate()``, the gateway) no command blocks the loop: the limiter's
  script and the breaker's claim are awaited over one pipelined connection of the loop's
  own (:class:`_AsyncConnections`); a cooldown is read from the mirror as it is, and a
  mirror older than ``refresh`` is re-read by a task of its own; a failure, a success after
  failures and a probe given back are sent by tasks of their own, which the call does not
  wait for. A thread per command cost several times the CPU of an awaited connection:
  docs/deploy.md has the figures.
- Every script computes with Redis's own clock (``TIME``), so replicas need not agree on
  theirs. Every key carries a hash tag (``{p:NAME}``, ``{c:NAME}``): each script touches
  keys of one slot, as Redis Cluster wants. Every key has a TTL.

When Redis cannot be reached, is too slow (``timeout``) or answers with an error, the hub
goes on with process-local state (the classes this module extends) and says so once in the
log; it tries Redis again at most once a second (``retry_interval``), and shares again as
soon as Redis answers. A Redis fault is never raised to the caller, nor counted against a
provider. While Redis is down, rate limits are counted per process (``fail_closed=False``,
the default) or refuse every rate-limited call (``fail_closed=True``).
"""

from .state import RedisState

__all__ = ["RedisState"]
