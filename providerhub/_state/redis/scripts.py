"""The Lua scripts the Redis state runs, each atomic on the keys of one Cluster slot, and how
they are sent (by SHA1, loaded at the first ``NOSCRIPT``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

STATE = """
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function state(now)
  local h = redis.call('HMGET', KEYS[1], 'failures', 'open_until', 'last_error')
  local open_until = tonumber(h[2] or '0')
  local open = 0
  local left = 0
  if open_until > 0 then
    open = 1
    left = open_until - now
  end
  return {tonumber(h[1] or '0'), open, left, redis.call('EXISTS', KEYS[2]), h[3] or ''}
end
"""


READ = STATE + "return state(now_ms())"


# ARGV: token, early (0/1), probe_ttl ms. Returns {kind, state...}: kind 0 refused,
# 1 an ordinary claim, 2 the probe.
ACQUIRE = (
    STATE
    + """
local now = now_ms()
local open_until = tonumber(redis.call('HGET', KEYS[1], 'open_until') or '0')
local kind = 1
if open_until > 0 then
  if redis.call('EXISTS', KEYS[2]) == 1 then
    kind = 0
  elseif open_until > now then
    if ARGV[2] == '1' then kind = 1 else kind = 0 end
  elseif redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[3], 'NX') then
    kind = 2
  else
    kind = 0
  end
end
local s = state(now)
return {kind, s[1], s[2], s[3], s[4], s[5]}
"""
)


# ARGV: token ('' for none), error name, auth (0/1), threshold, cooldown ms, max ms, ttl ms.
FAILURE = (
    STATE
    + """
local now = now_ms()
local failures = redis.call('HINCRBY', KEYS[1], 'failures', 1)
redis.call('HSET', KEYS[1], 'last_error', ARGV[2])
local was_probe = false
if ARGV[1] ~= '' and redis.call('GET', KEYS[2]) == ARGV[1] then
  redis.call('DEL', KEYS[2])
  was_probe = true
end
if was_probe or failures >= tonumber(ARGV[4]) or ARGV[3] == '1' then
  local period = tonumber(redis.call('HGET', KEYS[1], 'period') or '0')
  if period > 0 then
    period = math.min(period * 2, tonumber(ARGV[6]))
  else
    period = tonumber(ARGV[5])
  end
  redis.call('HSET', KEYS[1], 'period', period, 'open_until', now + period)
end
redis.call('PEXPIRE', KEYS[1], ARGV[7])
return state(now)
"""
)


# KEYS[1] the probe key; ARGV[1] the token: give the probe back only if this claim holds it.
RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""


# KEYS[1] the sorted set of admissions, KEYS[2] the hash of tokens per second (a field per
# second, in ms, plus 't', their total, and 'o', the oldest second).
# ARGV: rpm (-1: none), tpm (-1: none), window ms, a unique member. Returns {wait, n,
# used}: wait 0 when the request is admitted (and counted), else the ms to wait; n the
# requests in the window and used the tokens (-1 where not counted), which the limiter
# keeps as its mirror of the shared counts (RedisLimiter.headroom).
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local rpm = tonumber(ARGV[1])
local tpm = tonumber(ARGV[2])
local window = tonumber(ARGV[3])
local used = -1
if tpm >= 0 then
  -- 't' is the total of the buckets, 'o' the oldest bucket: a look at two fields, unless
  -- a bucket has left the window (once a second at most), when the buckets are recounted.
  local h = redis.call('HMGET', KEYS[2], 't', 'o')
  used = tonumber(h[1] or '0')
  local oldest = tonumber(h[2] or '-1')
  if oldest >= 0 and oldest + 1000 <= now - window then
    local buckets = redis.call('HGETALL', KEYS[2])
    used = 0
    oldest = -1
    for i = 1, #buckets, 2 do
      local f = buckets[i]
      if f ~= 't' and f ~= 'o' then
        local at = tonumber(f)
        if at + 1000 <= now - window then
          redis.call('HDEL', KEYS[2], f)
        else
          used = used + tonumber(buckets[i + 1])
          if oldest < 0 or at < oldest then oldest = at end
        end
      end
    end
    if oldest < 0 then
      redis.call('HDEL', KEYS[2], 't', 'o')
    else
      redis.call('HSET', KEYS[2], 't', used, 'o', oldest)
    end
  end
  if used >= tpm then
    local buckets = redis.call('HGETALL', KEYS[2])
    local live = {}
    for i = 1, #buckets, 2 do
      if buckets[i] ~= 't' and buckets[i] ~= 'o' then
        table.insert(live, {tonumber(buckets[i]), tonumber(buckets[i + 1])})
      end
    end
    table.sort(live, function(a, b) return a[1] < b[1] end)
    for _, e in ipairs(live) do
      used = used - e[2]
      if used < tpm then return {math.max(1, e[1] + 1000 + window - now), -1, tpm} end
    end
    return {window, -1, tpm}
  end
end
if rpm >= 0 then
  redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
  local n = redis.call('ZCARD', KEYS[1])
  if n >= rpm then
    local edge = redis.call('ZRANGE', KEYS[1], n - rpm, n - rpm, 'WITHSCORES')
    return {math.max(1, tonumber(edge[2]) + window - now), rpm, used}
  end
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], window)
  return {0, n + 1, used}
end
return {0, -1, used}
"""


# KEYS[1] the hash of tokens per second; ARGV: tokens, window ms.
SPEND = """
local t = redis.call('TIME')
local second = tonumber(t[1]) * 1000
redis.call('HINCRBY', KEYS[1], second, ARGV[1])
redis.call('HINCRBY', KEYS[1], 't', ARGV[1])
redis.call('HSETNX', KEYS[1], 'o', second)
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]) + 1000)
return 0
"""


def hash_tag(kind: str, name: str) -> str:
    """A hash tag for one provider's or client key's keys: they share one Cluster slot.
    A name that could close the tag early is written by its hash instead."""
    if "{" in name or "}" in name or not name.isprintable():
        import hashlib

        name = "sha1-" + hashlib.sha1(name.encode()).hexdigest()
    return "{" + kind + ":" + name + "}"


class Script:
    """A Lua script, run by its SHA1 and loaded into Redis at the first ``NOSCRIPT`` (on a
    cluster, into every primary): redis-py's ``Script`` without the client it wants when
    made, as a cluster's client is made only at the first command (see :class:`Link`)."""

    def __init__(self, text: str) -> None:
        import hashlib

        from redis.exceptions import NoScriptError

        self.text = text
        self.sha = hashlib.sha1(text.encode()).hexdigest()
        self._missing = NoScriptError

    def __call__(self, *, keys: Sequence[str], args: Sequence[object] = (), client: Any) -> Any:
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except self._missing:
            client.script_load(self.text)
            return client.evalsha(self.sha, len(keys), *keys, *args)

    async def acall(self, *, keys: Sequence[str], args: Sequence[object] = (), client: Any) -> Any:
        """The same, awaited: ``client`` is an :class:`_AsyncConnections` (or
        :class:`_InThreads`)."""
        try:
            return await client.evalsha(self.sha, len(keys), *keys, *args)
        except self._missing:
            await client.script_load(self.text)
            return await client.evalsha(self.sha, len(keys), *keys, *args)
