--- A fuzz input read as a stream of choices (the Lua twin of fuzz/bytes.h):
-- past the end every read gives 0 or "", so any input is a complete script.
-- Used by the Lua targets in fuzz/lua/ (run by fuzz/lua_harness.c and by
-- spec/62-fuzz_regressions_spec.lua).
local M = {}
M.__index = M

--- A reader over the string `data`.
function M.new(data)
  return setmetatable({ data = data, pos = 1 }, M)
end

--- The next byte (0 past the end).
function M:u8()
  local b = self.data:byte(self.pos)
  if not b then return 0 end
  self.pos = self.pos + 1
  return b
end

--- A number in [0, n).
function M:pick(n)
  return self:u8() % n
end

--- An element of the list `t`.
function M:one(t)
  return t[self:pick(#t) + 1]
end

--- Up to `max` raw bytes (the length comes from the stream).
function M:bytes(max)
  local n = math.min(self:u8(), max or 255)
  local s = self.data:sub(self.pos, self.pos + n - 1)
  self.pos = self.pos + #s
  return s
end

--- Everything not read yet.
function M:rest()
  local s = self.data:sub(self.pos)
  self.pos = #self.data + 1
  return s
end

--- True when nothing is left.
function M:done()
  return self.pos > #self.data
end

return M
