"""The Redis side of the counter store: one Lua script that runs a whole batch.

Kept in a Python module (not a ``.lua`` file) so it ships with the package whatever the
packaging does with data files. ``memory.py`` implements the same arithmetic; a change
here needs the same change there (the contract suite catches a difference).

Calling convention: ``KEYS[i]`` is the stored key of op ``i``; ``ARGV[1]`` is ``''`` (use
the server clock, ``TIME``) or a time in epoch seconds sent only by a store opened with
``allow_time_override=True`` (tests); ``ARGV[2]`` is the JSON list of encoded ops (see
``redis_store._encode``). The reply is a JSON list with one list per op — JSON rather
than a Redis array because Redis truncates Lua numbers to integers.

Times are written as ``%.6f`` strings (microseconds) so sorted-set scores and stored
expiries do not depend on Lua's 14-digit number formatting; bucket indices as ``%.0f``.
"""

from __future__ import annotations

import hashlib

__all__ = ["SCRIPT", "SCRIPT_SHA"]

SCRIPT = r"""
-- Before Redis 5 a script reading TIME must replicate its effects, not itself.
if redis.replicate_commands then redis.replicate_commands() end

local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end

-- A key outlives the last moment it can matter by this much (ms), as memory.py does.
local GRACE_MS = 1000

local function fmt_time(x) return string.format('%.6f', x) end
local function to_ms(x) return math.ceil(x * 1000) end

local function rate_read(key)
  local flat = redis.call('HGETALL', key)
  local w, k, buckets = nil, nil, {}
  for j = 1, #flat, 2 do
    local f = flat[j]
    if f == 'w' then w = tonumber(flat[j + 1])
    elseif f == 'k' then k = tonumber(flat[j + 1])
    else buckets[#buckets + 1] = {f, tonumber(flat[j + 1])} end
  end
  return w, k, buckets
end

-- Sum of the current bucket and the k before it; stale = fields older than that.
local function rate_total(w, k, buckets)
  local current = math.floor(now / (w / k))
  local oldest = current - k
  local total, stale = 0, {}
  for _, b in ipairs(buckets) do
    if tonumber(b[1]) < oldest then stale[#stale + 1] = b[1] else total = total + b[2] end
  end
  return total, current, stale
end

local ops = cjson.decode(ARGV[2])
local out = {}
for i, op in ipairs(ops) do
  local key = KEYS[i]
  local kind = op[1]
  if kind == 'h' then
    local w, k, limit, cost, peek = op[2], op[3], op[4], op[5], op[6]
    local sw, sk, buckets = rate_read(key)
    -- A policy change moved the window: old buckets mean nothing in the new one.
    local fresh = (sw ~= w or sk ~= k)
    if fresh then buckets = {} end
    local total, current, stale = rate_total(w, k, buckets)
    local over = limit >= 0 and total + cost > limit
    if peek == 1 or over then
      out[i] = {total, over and 1 or 0, 0}
    else
      if fresh then
        redis.call('DEL', key)
      elseif #stale > 0 then
        redis.call('HDEL', key, unpack(stale))
      end
      redis.call('HINCRBY', key, string.format('%.0f', current), cost)
      redis.call('HSET', key, 'w', string.format('%.17g', w), 'k', k)
      redis.call('PEXPIRE', key, to_ms(w * (1 + 1 / k)) + GRACE_MS)
      out[i] = {total + cost, 0, 1}
    end
  elseif kind == 'c' then
    local sw, sk, buckets = rate_read(key)
    if sw == nil or sk == nil then
      out[i] = {0, 0}
    else
      out[i] = {(rate_total(sw, sk, buckets)), sw}
    end
  elseif kind == 'd' then
    local w, cap, has_member, member = op[2], op[3], op[4], op[5]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt_time(now - w))
    local added = 0
    if has_member == 1 then
      added = redis.call('ZADD', key, fmt_time(now), member)
      local n = redis.call('ZCARD', key)
      if n > cap then redis.call('ZREMRANGEBYRANK', key, 0, n - cap - 1) end
      redis.call('PEXPIRE', key, to_ms(w) + GRACE_MS)
    end
    out[i] = {redis.call('ZCARD', key), added}
  elseif kind == 'a' then
    local lease_id, limit, ttl = op[2], op[3], op[4]
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt_time(now))
    local held = redis.call('ZSCORE', key, lease_id)
    local n = redis.call('ZCARD', key)
    local granted = 0
    if held or n < limit then
      redis.call('ZADD', key, fmt_time(now + ttl), lease_id)
      if not held then n = n + 1 end
      granted = 1
      local top = redis.call('ZRANGE', key, -1, -1, 'WITHSCORES')
      redis.call('PEXPIRE', key, to_ms(tonumber(top[2]) - now) + GRACE_MS)
    end
    out[i] = {granted, n}
  elseif kind == 'r' then
    redis.call('ZREMRANGEBYSCORE', key, '-inf', fmt_time(now))
    local removed = redis.call('ZREM', key, op[2])
    out[i] = {removed, redis.call('ZCARD', key)}
  elseif kind == 'f' then
    local ttl, value = op[2], op[3]
    redis.call('HSET', key, 'v', value, 'x', fmt_time(now + ttl))
    redis.call('PEXPIRE', key, to_ms(ttl))
    out[i] = {1, value, ttl}
  elseif kind == 'g' then
    local v = redis.call('HMGET', key, 'v', 'x')
    if v[1] and v[2] and tonumber(v[2]) > now then
      out[i] = {1, v[1], tonumber(v[2]) - now}
    else
      out[i] = {0}
    end
  elseif kind == 'L' then
    local items = redis.call('ZRANGEBYSCORE', key, '(' .. fmt_time(now), '+inf', 'WITHSCORES')
    local res = {#items / 2}
    for j = 1, #items, 2 do
      res[#res + 1] = items[j]
      res[#res + 1] = tonumber(items[j + 1]) - now
    end
    out[i] = res
  elseif kind == 'D' then
    out[i] = {redis.call('ZCARD', key)}
  else
    return redis.error_reply('fs_plugin counters: unknown op ' .. tostring(kind))
  end
end
return cjson.encode(out)
"""

SCRIPT_SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()
