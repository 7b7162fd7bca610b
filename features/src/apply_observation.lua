-- weir: apply one observation to one entity's sliding windows, atomically.
-- The same algorithm, cell layout and floating-point operations as features/src/windows.rs
-- (read that file's docs first); the Rust code is the reference.
--
-- The store prepends `local CONFIG = {...}` (windows, lateness, ttl, fingerprint, header
-- cells, total cells, first cell of each ring) so per-event arguments are the event's own.
--
-- KEYS[1]  state string: cells as little-endian doubles, then the replay fences
-- KEYS[2]  readable feature hash: count_<w>, amount_sum_<w> as of max_t, event_time_max
-- ARGV     1 event time ms, 2 value, 3 topic, 4 partition, 5 offset,
--          6 "1" when this is the entity's last observation in the batch: then the readable
--            hash is rewritten from the state and both TTLs are refreshed, whatever the
--            status (so a batch cut short by a crash is made whole by its replay)
-- Returns  one bulk string: a status byte ('a' applied, 'r' replayed, 'l' late) followed by
--          the values as of the event time, little-endian doubles.
--
-- Cost: a GETRANGE of the header (fingerprint, max_t, per window cur and totals), one of
-- the fences, one per ring slot range needed (the event's pane; the panes sliding out),
-- and a SETRANGE per changed run of cells: bytes proportional to what changed, never the
-- whole state (Lua interns every string it sees, so big strings are expensive), and no
-- parsing. The readable hash (HSET + PEXPIRE) once per entity per batch.
local t = tonumber(ARGV[1])
local v = tonumber(ARGV[2])
local topic = ARGV[3]
local partition = tonumber(ARGV[4])
local offset = tonumber(ARGV[5])
local last_in_batch = ARGV[6] == '1'
local W = CONFIG.windows
local EMPTY = -9007199254740992
local HEAD, PANE = 3, 3
local ZERO8 = string.rep('\0', 8)

local H = CONFIG.header
local hdr = redis.call('GETRANGE', KEYS[1], 0, H * 8 - 1)
local fresh = #hdr == 0
-- Header cells by 0-based index + 1. struct.unpack costs about a microsecond a call, so
-- the header is unpacked once, all cells in one call.
local header
if fresh then
  header = { CONFIG.fingerprint, -math.huge }
  for _ = 1, #W do header[#header + 1] = EMPTY; header[#header + 1] = 0; header[#header + 1] = 0 end
elseif #hdr < H * 8 then
  return redis.error_reply('weir state ' .. KEYS[1] .. ' is shorter than the window layout: written under other window settings')
else
  header = { struct.unpack(CONFIG.header_format, hdr) }
  if header[1] ~= CONFIG.fingerprint then
    return redis.error_reply('weir state ' .. KEYS[1] .. ' was written under other window settings (layout fingerprint)')
  end
end

-- Cells by 0-based index: header cells from `header`, ring cells fetched by `load_panes`
-- (one GETRANGE per contiguous run of slots) into `ring`; writes go to `dirty` and are
-- flushed at the end.
local dirty, ring = {}, {}
local function get(i)
  local x = dirty[i]
  if x ~= nil then return x end
  if i < H then return header[i + 1] end
  return ring[i]
end
local function put(i, x) dirty[i] = x end

-- Makes the slots of panes q1..q2 of window k readable with get().
local function load_panes(k, q1, q2)
  local w, rb = W[k], CONFIG.rings[k]
  local n = q2 - q1 + 1
  if n <= 0 then return end
  if n > w.slots then n = w.slots end
  local function fetch(first, count)
    if fresh then
      for j = first, first + count - 1 do
        local at = rb + PANE * j
        if ring[at] == nil then ring[at], ring[at + 1], ring[at + 2] = 0, 0, 0 end
      end
      return
    end
    local bytes = redis.call('GETRANGE', KEYS[1], (rb + PANE * first) * 8, (rb + PANE * (first + count)) * 8 - 1)
    local pos, a, c, x = 1
    for j = first, first + count - 1 do
      a, c, x, pos = struct.unpack('<ddd', bytes, pos)
      local at = rb + PANE * j
      if ring[at] == nil then ring[at], ring[at + 1], ring[at + 2] = a, c, x end
    end
  end
  local s0 = q1 % w.slots
  if s0 + n <= w.slots then
    fetch(s0, n)
  else
    fetch(s0, w.slots - s0)
    fetch(0, n - (w.slots - s0))
  end
end

-- The fence of (topic, partition): entries after the cells.
local fence, fence_at
if not fresh then
  local tail = redis.call('GETRANGE', KEYS[1], CONFIG.cells * 8, -1)
  local pos = 1
  while pos <= #tail do
    local n = struct.unpack('<H', tail, pos)
    local ftopic = string.sub(tail, pos + 2, pos + 1 + n)
    local fpart, foff = struct.unpack('<dd', tail, pos + 2 + n)
    if ftopic == topic and fpart == partition then
      fence, fence_at = foff, CONFIG.cells * 8 + pos - 1 + 2 + n + 8 -- 0-based byte of the offset
      break
    end
    pos = pos + 2 + n + 16
  end
end

local status = 'a'
local fence_changed = false
if fence and offset <= fence then
  status = 'r'
else
  fence_changed = true
  if t < get(1) - CONFIG.lateness then status = 'l' end
end

if status == 'a' then
  for k, w in ipairs(W) do
    local b, rb = 2 + HEAD * (k - 1), CONFIG.rings[k]
    local p = math.floor(t / w.pane_ms)
    local cur = get(b)
    if p > cur then
      if p - cur >= w.panes then
        put(b + 1, 0); put(b + 2, 0)
      else
        local count, sum = get(b + 1), get(b + 2)
        load_panes(k, cur - w.panes + 1, p - w.panes)
        for q = cur - w.panes + 1, p - w.panes do
          local at = rb + PANE * (q % w.slots)
          if get(at) == q then
            count = count - get(at + 1)
            sum = sum - get(at + 2)
          end
        end
        put(b + 1, count); put(b + 2, sum)
      end
      put(b, p)
    end
    load_panes(k, p, p)
    local at = rb + PANE * (p % w.slots)
    if get(at) < p or get(at + 1) == 0 then
      put(at, p); put(at + 1, 0); put(at + 2, 0)
    end
    if get(at) == p then
      put(at + 1, get(at + 1) + 1); put(at + 2, get(at + 2) + v)
      if p > get(b) - w.panes then
        put(b + 1, get(b + 1) + 1); put(b + 2, get(b + 2) + v)
      end
    end
  end
  if t > get(1) then put(1, t) end
end

-- Count and sum per window as of event time t (see EntityState::values_at).
local values = {}
for k, w in ipairs(W) do
  local b, rb = 2 + HEAD * (k - 1), CONFIG.rings[k]
  local pt = math.floor(t / w.pane_ms)
  local cur = get(b)
  local function pane(q)
    local at = rb + PANE * (q % w.slots)
    if get(at) == q then return get(at + 1), get(at + 2) end
    return nil
  end
  local count, sum
  if pt == cur then
    count, sum = get(b + 1), get(b + 2)
  elseif pt > cur or cur - pt >= w.panes then
    load_panes(k, pt - w.panes + 1, pt)
    count, sum = 0, 0
    for q = pt - w.panes + 1, pt do
      local n, x = pane(q)
      if n then count = count + n; sum = sum + x end
    end
  else
    load_panes(k, pt + 1, cur)
    load_panes(k, pt - w.panes + 1, cur - w.panes)
    count, sum = get(b + 1), get(b + 2)
    for q = pt + 1, cur do
      local n, x = pane(q)
      if n then count = count - n; sum = sum - x end
    end
    for q = pt - w.panes + 1, cur - w.panes do
      local n, x = pane(q)
      if n then count = count + n; sum = sum + x end
    end
    if count == 0 then sum = 0 end
  end
  values[#values + 1] = count
  values[#values + 1] = sum
end

-- Write back: a fresh entity first gets the empty layout; then the header in one
-- SETRANGE if it changed, one
-- SETRANGE per run of changed ring cells, and the fence patched in place or appended.
-- Only the bytes that changed travel: a few hundred whatever the window lengths.
if fresh then
  if status ~= 'a' then return redis.error_reply('weir: first observation of ' .. KEYS[1] .. ' was not applied') end
  -- The whole layout, zero-filled by Redis itself (an empty ring slot is all zeros);
  -- the header and the written slots are set just below.
  redis.call('SETRANGE', KEYS[1], CONFIG.cells * 8 - 8, ZERO8)
  redis.call('PEXPIRE', KEYS[1], CONFIG.ttl)
end
local header_dirty, changed = false, {}
for i in pairs(dirty) do
  if i < H then header_dirty = true else changed[#changed + 1] = i end
end
if header_dirty then
  local cells = {}
  for i = 0, H - 1 do cells[i + 1] = get(i) end
  redis.call('SETRANGE', KEYS[1], 0, struct.pack(CONFIG.header_format, unpack(cells)))
end
table.sort(changed)
local k = 1
while k <= #changed do
  local first = changed[k]
  local run = { struct.pack('<d', dirty[first]) }
  while changed[k + 1] == changed[k] + 1 do
    k = k + 1
    run[#run + 1] = struct.pack('<d', dirty[changed[k]])
  end
  redis.call('SETRANGE', KEYS[1], first * 8, table.concat(run))
  k = k + 1
end
if fence_changed then
  if fence_at then
    redis.call('SETRANGE', KEYS[1], fence_at, struct.pack('<d', offset))
  else
    redis.call('APPEND', KEYS[1], struct.pack('<H', #topic) .. topic .. struct.pack('<dd', partition, offset))
  end
end
if last_in_batch and not fresh then redis.call('PEXPIRE', KEYS[1], CONFIG.ttl) end

if last_in_batch then
  redis.call('PEXPIRE', KEYS[1], CONFIG.ttl)
end

if last_in_batch then
  local max_t = get(1)
  if max_t > -math.huge then
    local args = {}
    for k2, w in ipairs(W) do
      local b = 2 + HEAD * (k2 - 1)
      args[#args + 1] = w.count_field; args[#args + 1] = string.format('%.17g', get(b + 1))
      args[#args + 1] = w.sum_field; args[#args + 1] = string.format('%.17g', get(b + 2))
    end
    args[#args + 1] = 'event_time_max'; args[#args + 1] = string.format('%d', max_t)
    redis.call('HSET', KEYS[2], unpack(args))
    redis.call('PEXPIRE', KEYS[2], CONFIG.ttl)
  end
end

return status .. struct.pack('<' .. string.rep('d', #values), unpack(values))
