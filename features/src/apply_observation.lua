-- weir: apply one observation to one entity's sliding windows, atomically.
-- The same algorithm and answers as features/src/windows.rs (read that file's docs first).
--
-- KEYS[1]  state hash:    panes (w:<window>:<slot> = "<pane>|<count>|<sum>"),
--                         max_t (newest event time), f:<topic>:<partition> (replay fence)
-- KEYS[2]  feature hash:  count_<w>, amount_sum_<w> as of max_t, and event_time_max
-- ARGV     1 event time ms, 2 value, 3 fence field, 4 offset, 5 lateness ms, 6 ttl ms,
--          7 number of windows, then per window: name, pane ms, panes, slots
-- Returns  { status, value... } with values as of the event time, doubles as %.17g text
--          (Lua numbers would be truncated to integers in the reply).
--
-- Cost: one HGETALL of the state (only the panes that exist: few for most entities, at
-- most the ring sizes), one HSET of what changed, one HSET of the readable hash. Panes are
-- summed in pane order, like the Rust code, so both give bit-identical sums.
local t = tonumber(ARGV[1])
local v = tonumber(ARGV[2])
local offset = tonumber(ARGV[4])
local lateness = tonumber(ARGV[5])
local ttl = tonumber(ARGV[6])
local nw = tonumber(ARGV[7])

local function fmt(x) return string.format('%.17g', x) end
local function int(x) return string.format('%d', x) end

-- Window parameters by name and position.
local windows, by_name = {}, {}
for w = 1, nw do
  local base = 8 + (w - 1) * 4
  local win = { name = ARGV[base], pane_ms = tonumber(ARGV[base + 1]), panes = tonumber(ARGV[base + 2]),
                slots = tonumber(ARGV[base + 3]), cells = {} }
  windows[w] = win
  by_name[win.name] = win
end

-- The whole state in one read; pane cells grouped by window and slot.
local state = redis.call('HGETALL', KEYS[1])
local fence, max_t
for k = 1, #state, 2 do
  local field, value = state[k], state[k + 1]
  if field == ARGV[3] then
    fence = tonumber(value)
  elseif field == 'max_t' then
    max_t = tonumber(value)
  else
    local name, slot = string.match(field, '^w:(.+):(%d+)$')
    local win = name and by_name[name]
    if win then
      local i, c, s = string.match(value, '^(-?%d+)|(%d+)|(.+)$')
      win.cells[tonumber(slot)] = { tonumber(i), tonumber(c), tonumber(s) }
    end
  end
end

local status = 'applied'
local writes = {}
if fence and offset <= fence then
  status = 'replayed'
else
  writes[#writes + 1] = ARGV[3]; writes[#writes + 1] = ARGV[4]
  if max_t and t < max_t - lateness then status = 'late' end
end

if status == 'applied' then
  for _, win in ipairs(windows) do
    local p = math.floor(t / win.pane_ms)
    local slot = p % win.slots
    local cell = win.cells[slot]
    if cell == nil or cell[1] < p then cell = { p, 0, 0 } end
    if cell[1] == p then
      cell = { p, cell[2] + 1, cell[3] + v }
      win.cells[slot] = cell
      writes[#writes + 1] = 'w:' .. win.name .. ':' .. int(slot)
      writes[#writes + 1] = int(p) .. '|' .. int(cell[2]) .. '|' .. fmt(cell[3])
    end
  end
  if (not max_t) or t > max_t then
    max_t = t
    writes[#writes + 1] = 'max_t'; writes[#writes + 1] = int(t)
  end
end
if #writes > 0 then redis.call('HSET', KEYS[1], unpack(writes)) end

-- Count and sum per window as of event time tt, panes summed in ascending pane order.
local function values_at(tt)
  local out = {}
  for _, win in ipairs(windows) do
    local last = math.floor(tt / win.pane_ms)
    local first = last - win.panes + 1
    local inside = {}
    for _, cell in pairs(win.cells) do
      if cell[1] >= first and cell[1] <= last then inside[#inside + 1] = cell end
    end
    table.sort(inside, function(a, b) return a[1] < b[1] end)
    local count, sum = 0, 0
    for _, cell in ipairs(inside) do count = count + cell[2]; sum = sum + cell[3] end
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
  for w, win in ipairs(windows) do
    args[#args + 1] = 'count_' .. win.name; args[#args + 1] = fmt(current[w * 2 - 1])
    args[#args + 1] = 'amount_sum_' .. win.name; args[#args + 1] = fmt(current[w * 2])
  end
  args[#args + 1] = 'event_time_max'; args[#args + 1] = int(max_t)
  redis.call('HSET', KEYS[2], unpack(args))
end
redis.call('PEXPIRE', KEYS[1], ttl)
redis.call('PEXPIRE', KEYS[2], ttl)
return reply
