-- weir: apply one observation to one entity's sliding windows, atomically.
-- The same algorithm, cells and floating-point operations as features/src/windows.rs
-- (read that file's docs first); the Rust code is the reference.
--
-- The store prepends `local CONFIG = {...}` (windows, lateness, ttl, fingerprint, header
-- cells and their struct format) so per-event arguments are the event's own.
--
-- KEYS[1]  state hash, binary values:
--            h              the header cells (fingerprint, max_t, per window cur, count
--                           total, sum total) as little-endian doubles
--            3 bytes k, slot / 256, slot % 256
--                           ring slot <slot> of window <k> (1-based): pane index, count,
--                           sum as 3 doubles; a missing field is an empty slot (zeros).
--                           Binary names: `..` of a number calls sprintf, string.char not
--            f:<topic>:<partition>  the replay fence: highest applied offset, as text
-- KEYS[2]  readable feature hash: count_<w>, amount_sum_<w> as of max_t, event_time_max
-- ARGV     1 event time ms, 2 value, 3 fence field, 4 offset,
--          5 "1" when this is the entity's last observation in the batch: then the readable
--            hash is rewritten from the state and both TTLs are refreshed, whatever the
--            status (so a batch cut short by a crash is made whole by its replay)
-- Returns  one bulk string: a status byte ('a' applied, 'r' replayed, 'l' late) followed by
--          the values as of the event time, little-endian doubles.
--
-- Cost per event: one HMGET (header, fence, and the slot of the event's pane in every
-- window), one more HMGET only for the slots that slide out of a window or that an
-- out-of-order answer needs, and one HSET of what changed. Each redis.call and each
-- struct.(un)pack costs about a microsecond here, so the script counts them: no parsing
-- of the whole state, no per-cell round trips. The readable hash once per entity per batch.
local t = tonumber(ARGV[1])
local v = tonumber(ARGV[2])
local fence_field = ARGV[3]
local offset = tonumber(ARGV[4])
local last_in_batch = ARGV[5] == '1'
local W = CONFIG.windows
local EMPTY = -9007199254740992
local HEAD = 3
local function slot_field(k, s) return string.char(k, math.floor(s / 256), s % 256) end

-- Cells: header cells by 0-based index in `header` (index + 1); ring slots by
-- window and slot in `ring[k][slot] = { index, count, sum }`.
local first = { 'h', fence_field }
local panes = {}
for k, w in ipairs(W) do
  panes[k] = math.floor(t / w.pane_ms)
  first[#first + 1] = slot_field(k, panes[k] % w.slots)
end
local got = redis.call('HMGET', KEYS[1], unpack(first))

local header
local fresh = not got[1]
if fresh then
  header = { CONFIG.fingerprint, -math.huge }
  for _ = 1, #W do header[#header + 1] = EMPTY; header[#header + 1] = 0; header[#header + 1] = 0 end
else
  if #got[1] ~= CONFIG.header * 8 then
    return redis.error_reply('weir state ' .. KEYS[1] .. ' was written under other window settings (header size)')
  end
  header = { struct.unpack(CONFIG.header_format, got[1]) }
  if header[1] ~= CONFIG.fingerprint then
    return redis.error_reply('weir state ' .. KEYS[1] .. ' was written under other window settings (layout fingerprint)')
  end
end
local fence = got[2] and tonumber(got[2])

local ring, ring_dirty = {}, {}
local function unpack_slot(bytes)
  if not bytes then return { 0, 0, 0 } end
  local i, c, s = struct.unpack('<ddd', bytes)
  return { i, c, s }
end
for k, w in ipairs(W) do
  ring[k] = { [panes[k] % w.slots] = unpack_slot(got[2 + k]) }
  ring_dirty[k] = {}
end

-- Makes the slots of panes q1..q2 of window k readable (one HMGET for those not yet read).
local function load_panes(k, q1, q2)
  local w = W[k]
  if q2 - q1 + 1 > w.slots then q2 = q1 + w.slots - 1 end
  local want, slots = {}, {}
  for q = q1, q2 do
    local s = q % w.slots
    if ring[k][s] == nil then
      want[#want + 1] = slot_field(k, s)
      slots[#slots + 1] = s
      ring[k][s] = false -- requested
    end
  end
  if #want == 0 then return end
  local values = fresh and {} or redis.call('HMGET', KEYS[1], unpack(want))
  for j, s in ipairs(slots) do ring[k][s] = unpack_slot(values[j]) end
end

-- The pane q of window k if its slot holds it: count, sum.
local function pane(k, q)
  local cell = ring[k][q % W[k].slots]
  if cell[1] == q then return cell[2], cell[3] end
  return nil
end

local status = 'a'
local header_dirty = false
if fence and offset <= fence then
  status = 'r'
elseif t < header[2] - CONFIG.lateness then
  status = 'l'
end

if status == 'a' then
  for k, w in ipairs(W) do
    local b = 2 + HEAD * (k - 1) + 1 -- 1-based: cur, count total, sum total
    local p = panes[k]
    local cur = header[b]
    if p > cur then
      if p - cur >= w.panes then
        header[b + 1] = 0; header[b + 2] = 0
      else
        load_panes(k, cur - w.panes + 1, p - w.panes)
        local count, sum = header[b + 1], header[b + 2]
        for q = cur - w.panes + 1, p - w.panes do
          local n, x = pane(k, q)
          if n then count = count - n; sum = sum - x end
        end
        header[b + 1] = count; header[b + 2] = sum
      end
      header[b] = p
    end
    local s = p % w.slots
    local cell = ring[k][s]
    if cell[1] < p or cell[2] == 0 then cell = { p, 0, 0 } end
    if cell[1] == p then
      cell = { p, cell[2] + 1, cell[3] + v }
      ring[k][s] = cell
      ring_dirty[k][s] = true
      if p > header[b] - w.panes then
        header[b + 1] = header[b + 1] + 1; header[b + 2] = header[b + 2] + v
      end
    end
  end
  if t > header[2] then header[2] = t end
  header_dirty = true
end

-- Count and sum per window as of event time t (see EntityState::values_at).
local values = {}
for k, w in ipairs(W) do
  local b = 2 + HEAD * (k - 1) + 1
  local pt = panes[k]
  local cur = header[b]
  local count, sum
  if pt == cur then
    count, sum = header[b + 1], header[b + 2]
  elseif pt > cur or cur - pt >= w.panes then
    load_panes(k, pt - w.panes + 1, pt)
    count, sum = 0, 0
    for q = pt - w.panes + 1, pt do
      local n, x = pane(k, q)
      if n then count = count + n; sum = sum + x end
    end
  else
    load_panes(k, pt + 1, cur)
    load_panes(k, pt - w.panes + 1, cur - w.panes)
    count, sum = header[b + 1], header[b + 2]
    for q = pt + 1, cur do
      local n, x = pane(k, q)
      if n then count = count - n; sum = sum - x end
    end
    for q = pt - w.panes + 1, cur - w.panes do
      local n, x = pane(k, q)
      if n then count = count + n; sum = sum + x end
    end
    if count == 0 then sum = 0 end
  end
  values[#values + 1] = count
  values[#values + 1] = sum
end

-- Write what changed in one HSET: the fence (even for a late event: its offset was
-- consumed), the header and the written slots.
if status ~= 'r' then
  local args = { fence_field, ARGV[4] }
  if header_dirty then
    args[#args + 1] = 'h'; args[#args + 1] = struct.pack(CONFIG.header_format, unpack(header, 1, CONFIG.header))
  end
  for k, dirty in ipairs(ring_dirty) do
    for s in pairs(dirty) do
      local cell = ring[k][s]
      args[#args + 1] = slot_field(k, s); args[#args + 1] = struct.pack('<ddd', cell[1], cell[2], cell[3])
    end
  end
  redis.call('HSET', KEYS[1], unpack(args))
end
if fresh or last_in_batch then redis.call('PEXPIRE', KEYS[1], CONFIG.ttl) end

if last_in_batch and header[2] > -math.huge then
  local args = {}
  for k, w in ipairs(W) do
    local b = 2 + HEAD * (k - 1) + 1
    args[#args + 1] = w.count_field; args[#args + 1] = string.format('%.17g', header[b + 1])
    args[#args + 1] = w.sum_field; args[#args + 1] = string.format('%.17g', header[b + 2])
  end
  args[#args + 1] = 'event_time_max'; args[#args + 1] = string.format('%d', header[2])
  redis.call('HSET', KEYS[2], unpack(args))
  redis.call('PEXPIRE', KEYS[2], CONFIG.ttl)
end

return status .. struct.pack(CONFIG.values_format, unpack(values))
