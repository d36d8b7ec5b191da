-- Decides one request's limits atomically: every check passes and is reserved, or none is.
-- Mirrors MemoryBackend::admit (src/backend/memory.rs); the two are tested against each other.
-- KEYS: one per check. ARGV: n, out_min, out_max, lease, then 6 per check:
--   kind (1 rate, 2 quota, 3 concurrency), base, per_out, a, b, c
--   rate: a = limit, b = period_us, c = burst
--   quota: a = limit, b = expires_at_us
--   concurrency: a = max, b = lease lifetime in microseconds
-- Reply: {1, out, 0, reports...} admitted; {0, index, retry_us or -1, reports...} denied;
-- {-1, indexes...} quota counters to seed first. Reports are (limit, remaining, reset_us).
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local n = tonumber(ARGV[1])
local out_min = tonumber(ARGV[2])
local out = tonumber(ARGV[3])
local lease = ARGV[4]

local function arg(i, j) return tonumber(ARGV[4 + (i - 1) * 6 + j]) end
local function ceil_div(a, b) return math.ceil(a / math.max(b, 1)) end

-- A rate's bucket is stored as "level at": the level (units times period_us) at time `at`;
-- state[i] holds its level drained to now.
local function drained(key, limit)
  local v = redis.call('GET', key)
  if not v then return 0 end
  local level, at = string.match(v, '^(%d+) (%d+)$')
  if not level then return 0 end
  return math.max(tonumber(level) - math.max(now - tonumber(at), 0) * limit, 0)
end

local state = {}
local missing = {}
for i = 1, n do
  local kind = arg(i, 1)
  if kind == 1 then
    state[i] = drained(KEYS[i], arg(i, 4))
  elseif kind == 2 then
    local used = redis.call('GET', KEYS[i])
    if not used then missing[#missing + 1] = i - 1 else state[i] = tonumber(used) end
  else
    redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', now)
    state[i] = redis.call('ZCARD', KEYS[i])
  end
end
if #missing > 0 then
  local reply = {-1}
  for _, i in ipairs(missing) do reply[#reply + 1] = i end
  return reply
end

local function room(i)
  local kind, a, b, c = arg(i, 1), arg(i, 4), arg(i, 5), arg(i, 6)
  if kind == 1 then
    local free = math.max(c * b - state[i], 0)
    return math.floor(free / math.max(b, 1)), ceil_div(state[i], a), a
  elseif kind == 2 then
    return math.max(a - state[i], 0), math.max(b - now, 0), a
  else
    return math.max(a - state[i], 0), 0, a
  end
end

local function reports(reply)
  for i = 1, n do
    local r, reset, limit = room(i)
    reply[#reply + 1] = limit
    reply[#reply + 1] = r
    reply[#reply + 1] = reset
  end
  return reply
end

for i = 1, n do
  local base, per_out = arg(i, 2), arg(i, 3)
  local r = room(i)
  local fits = -1
  if r >= base then
    if per_out == 0 then fits = out else fits = math.floor((r - base) / per_out) end
  end
  if fits < out_min then
    local retry = -1
    local kind = arg(i, 1)
    if kind == 1 then
      local a, b, c = arg(i, 4), arg(i, 5), arg(i, 6)
      local amount = base + per_out * out_min
      if amount <= c then
        retry = math.max(ceil_div(state[i] + amount * b - c * b, a), 0)
      end
    elseif kind == 3 then
      retry = 1000000
    end
    return reports({0, i - 1, retry})
  end
  out = math.min(out, fits)
end
out = math.max(out, out_min)

for i = 1, n do
  local kind, base, per_out, a, b = arg(i, 1), arg(i, 2), arg(i, 3), arg(i, 4), arg(i, 5)
  local amount = base + per_out * out
  if kind == 1 then
    state[i] = state[i] + amount * b
    redis.call('SET', KEYS[i], string.format('%.0f %.0f', state[i], now), 'PX', ceil_div(state[i], a * 1000) + 1000)
  elseif kind == 2 then
    state[i] = redis.call('INCRBY', KEYS[i], amount)
  else
    redis.call('ZADD', KEYS[i], now + b, lease)
    redis.call('PEXPIRE', KEYS[i], math.floor(b / 1000) + 1000)
    state[i] = state[i] + 1
  end
end
return reports({1, out, 0})
