-- weir: apply one observation to one entity's sliding windows, atomically.
-- The same algorithm as features/src/windows.rs (read that file's docs first).
--
-- KEYS[1]  state hash:    panes (w:<window>:<slot> = "<pane>|<count>|<sum>"),
--                         max_t (newest event time), f:<topic>:<partition> (replay fence)
-- KEYS[2]  feature hash:  count_<w>, amount_sum_<w> as of max_t, and event_time_max
-- ARGV     1 event time ms, 2 value, 3 fence field, 4 offset, 5 lateness ms, 6 ttl ms,
--          7 number of windows, then per window: name, pane ms, panes, slots
-- Returns  { status, value... } with values as of the event time, doubles as %.17g text
--          (Lua numbers would be truncated to integers in the reply).
local t = tonumber(ARGV[1])
local v = tonumber(ARGV[2])
local offset = tonumber(ARGV[4])
local lateness = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local nw = tonumber(ARGV[7])

local status = 'applied'
local fence = redis.call('HGET', KEYS[1], ARGV[3])
local max_t = redis.call('HGET', KEYS[1], 'max_t')
if max_t then max_t = tonumber(max_t) end

if fence and offset <= tonumber(fence) then
  status = 'replayed'
else
  redis.call('HSET', KEYS[1], ARGV[3], ARGV[4])
  if max_t and t < max_t - lateness then status = 'late' end
end

local function parse(cell)
  local i, c, s = string.match(cell, '^(-?%d+)|(%d+)|(.+)$')
  return tonumber(i), tonumber(c), tonumber(s)
end

local function fmt(x) return string.format('%.17g', x) end

if status == 'applied' then
  for w = 0, nw - 1 do
    local base = 8 + w * 4
    local pane_ms, slots = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 3])
    local p = math.floor(t / pane_ms)
    local field = 'w:' .. ARGV[base] .. ':' .. string.format('%d', p % slots)
    local cell = redis.call('HGET', KEYS[1], field)
    local idx, c, s = nil, 0, 0
    if cell then idx, c, s = parse(cell) end
    if idx == nil or idx < p then idx, c, s = p, 0, 0 end
    if idx == p then
      redis.call('HSET', KEYS[1], field, string.format('%d', p) .. '|' .. string.format('%d', c + 1) .. '|' .. fmt(s + v))
    end
  end
  if (not max_t) or t > max_t then
    max_t = t
    redis.call('HSET', KEYS[1], 'max_t', string.format('%d', t))
  end
end

local function values_at(tt)
  local out = {}
  for w = 0, nw - 1 do
    local base = 8 + w * 4
    local pane_ms, panes, slots = tonumber(ARGV[base + 1]), tonumber(ARGV[base + 2]), tonumber(ARGV[base + 3])
    local last = math.floor(tt / pane_ms)
    local first = last - panes + 1
    local fields = {}
    for p = first, last do fields[#fields + 1] = 'w:' .. ARGV[base] .. ':' .. string.format('%d', p % slots) end
    local cells = redis.call('HMGET', KEYS[1], unpack(fields))
    local count, sum = 0, 0
    for k = 1, #fields do
      if cells[k] then
        local idx, c, s = parse(cells[k])
        if idx == first + k - 1 then count = count + c; sum = sum + s end
      end
    end
    out[#out + 1] = count
    out[#out + 1] = sum
  end
  return out
end

local at_t = values_at(t)
local reply = { status }
for k = 1, #at_t do reply[#reply + 1] = fmt(at_t[k]) end

if status == 'applied' and max_t then
  local current = at_t
  if max_t ~= t then current = values_at(max_t) end
  local args = {}
  for w = 0, nw - 1 do
    local name = ARGV[8 + w * 4]
    args[#args + 1] = 'count_' .. name; args[#args + 1] = fmt(current[w * 2 + 1])
    args[#args + 1] = 'amount_sum_' .. name; args[#args + 1] = fmt(current[w * 2 + 2])
  end
  args[#args + 1] = 'event_time_max'; args[#args + 1] = string.format('%d', max_t)
  redis.call('HSET', KEYS[2], unpack(args))
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return reply
