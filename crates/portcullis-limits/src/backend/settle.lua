-- Corrects reservations after the call and releases concurrency slots.
-- Mirrors MemoryBackend::settle (src/backend/memory.rs).
-- Takes many requests' settlements at once: the gateway batches those that arrive while one
-- call is in flight.
-- KEYS: n adjustment keys, then m concurrency keys to release.
-- ARGV: n, m, then 5 per adjustment: kind (1 rate, 2 quota), delta, a, b, c
--   (rate: a = limit, b = period_us), then the m leases to release, in KEYS order.
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local m = tonumber(ARGV[2])
local function arg(i, j) return tonumber(ARGV[2 + (i - 1) * 5 + j]) end
local function ceil_div(a, b) return math.ceil(a / math.max(b, 1)) end

for i = 1, n do
  local kind, delta = arg(i, 1), arg(i, 2)
  if kind == 1 then
    -- A rate's bucket: "level at", the level in units times period_us.
    local a, b = arg(i, 3), arg(i, 4)
    local level = 0
    local v = redis.call('GET', KEYS[i])
    if v then
      local l, at = string.match(v, '^(%d+) (%d+)$')
      if l then level = math.max(tonumber(l) - math.max(now - tonumber(at), 0) * a, 0) end
    end
    level = math.max(level + delta * b, 0)
    if level > 0 then
      redis.call('SET', KEYS[i], string.format('%.0f %.0f', level, now), 'PX', ceil_div(level, a * 1000) + 1000)
    else
      redis.call('DEL', KEYS[i])
    end
  elseif kind == 2 then
    -- A counter that is gone (Redis lost it) is seeded again from the ledger, which holds
    -- this usage too: adjusting nothing here is right.
    if redis.call('EXISTS', KEYS[i]) == 1 then
      local used = redis.call('INCRBY', KEYS[i], delta)
      if used < 0 then redis.call('SET', KEYS[i], 0, 'KEEPTTL') end
    end
  end
end
for j = 1, m do
  redis.call('ZREM', KEYS[n + j], ARGV[2 + n * 5 + j])
end
return 1
