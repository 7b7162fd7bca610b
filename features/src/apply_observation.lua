-- weir: apply one observation to one entity's sliding windows, atomically.
-- The same algorithm, cell layout and floating-point operations as features/src/windows.rs
-- (read that file's docs first); the Rust code is the reference.
--
-- The store prepends `local CONFIG = {...}` (windows, lateness, ttl, fingerprint, window
-- base cells) so that per-event arguments are only the event's own.
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
-- Cost: one GET, a handful of struct.unpack at computed offsets, one SETRANGE per run of
-- changed cells (about two per window); the readable hash once per entity per batch.
local t = tonumber(ARGV[1])
local v = tonumber(ARGV[2])
local topic = ARGV[3]
local partition = tonumber(ARGV[4])
local offset = tonumber(ARGV[5])
local last_in_batch = ARGV[6] == '1'
local W = CONFIG.windows
local EMPTY = -9007199254740992
local HEAD, PANE = 3, 3

local s = redis.call('GET', KEYS[1])
if not s then
  local parts = { struct.pack('<dd', CONFIG.fingerprint, -math.huge) }
  local empty_pane = struct.pack('<ddd', EMPTY, 0, 0)
  for _, w in ipairs(W) do
    parts[#parts + 1] = struct.pack('<ddd', EMPTY, 0, 0)
    parts[#parts + 1] = string.rep(empty_pane, w.slots)
  end
  s = table.concat(parts)
  redis.call('SET', KEYS[1], s, 'PX', CONFIG.ttl)
elseif #s < CONFIG.cells * 8 or struct.unpack('<d', s, 1) ~= CONFIG.fingerprint then
  return redis.error_reply('weir state ' .. KEYS[1] .. ' was written under other window settings (layout fingerprint)')
end

-- Cells by 0-based index; writes go to `dirty` and are flushed at the end.
local dirty = {}
local function get(i)
  local x = dirty[i]
  if x == nil then x = struct.unpack('<d', s, i * 8 + 1) end
  return x
end
local function put(i, x) dirty[i] = x end

-- The fence of (topic, partition): entries after the cells.
local fence, fence_at
local pos = CONFIG.cells * 8 + 1
while pos <= #s do
  local n = struct.unpack('<H', s, pos)
  local ftopic = string.sub(s, pos + 2, pos + 1 + n)
  local fpart, foff = struct.unpack('<dd', s, pos + 2 + n)
  if ftopic == topic and fpart == partition then
    fence, fence_at = foff, pos + 2 + n + 8
    break
  end
  pos = pos + 2 + n + 16
end

local status = 'a'
if fence and offset <= fence then
  status = 'r'
else
  if fence_at then
    redis.call('SETRANGE', KEYS[1], fence_at - 1, struct.pack('<d', offset))
  else
    redis.call('APPEND', KEYS[1], struct.pack('<H', #topic) .. topic .. struct.pack('<dd', partition, offset))
  end
  if t < get(1) - CONFIG.lateness then status = 'l' end
end

if status == 'a' then
  for k, w in ipairs(W) do
    local b = CONFIG.bases[k]
    local p = math.floor(t / w.pane_ms)
    local cur = get(b)
    if p > cur then
      if p - cur >= w.panes then
        put(b + 1, 0); put(b + 2, 0)
      else
        local count, sum = get(b + 1), get(b + 2)
        for q = cur - w.panes + 1, p - w.panes do
          local at = b + HEAD + PANE * (q % w.slots)
          if get(at) == q then
            count = count - get(at + 1)
            sum = sum - get(at + 2)
          end
        end
        put(b + 1, count); put(b + 2, sum)
      end
      put(b, p)
    end
    local at = b + HEAD + PANE * (p % w.slots)
    if get(at) < p then
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
  local b = CONFIG.bases[k]
  local pt = math.floor(t / w.pane_ms)
  local cur = get(b)
  local function pane(q)
    local at = b + HEAD + PANE * (q % w.slots)
    if get(at) == q then return get(at + 1), get(at + 2) end
    return nil
  end
  local count, sum
  if pt == cur then
    count, sum = get(b + 1), get(b + 2)
  elseif pt > cur or cur - pt >= w.panes then
    count, sum = 0, 0
    for q = pt - w.panes + 1, pt do
      local n, x = pane(q)
      if n then count = count + n; sum = sum + x end
    end
  else
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

-- Flush the changed cells, one SETRANGE per run of consecutive cells.
local changed = {}
for i in pairs(dirty) do changed[#changed + 1] = i end
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

if last_in_batch then
  local max_t = get(1)
  if max_t > -math.huge then
    local args = {}
    for k2, w in ipairs(W) do
      local b = CONFIG.bases[k2]
      args[#args + 1] = 'count_' .. w.name; args[#args + 1] = string.format('%.17g', get(b + 1))
      args[#args + 1] = 'amount_sum_' .. w.name; args[#args + 1] = string.format('%.17g', get(b + 2))
    end
    args[#args + 1] = 'event_time_max'; args[#args + 1] = string.format('%d', max_t)
    redis.call('HSET', KEYS[2], unpack(args))
    redis.call('PEXPIRE', KEYS[2], CONFIG.ttl)
  end
  redis.call('PEXPIRE', KEYS[1], CONFIG.ttl)
end

return status .. struct.pack('<' .. string.rep('d', #values), unpack(values))
