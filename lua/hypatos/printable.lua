--- Text from a server made safe to show on a terminal: every control character
-- written as visible text, so that an answer cannot set the window title, change
-- colours, move the cursor or clear the screen (ESC, CSI, OSC, BEL, …).
--
--     C0 controls and DEL (bytes 00–1F, 7F)   → \x1B, \x07, \x7F   (`keep` may spare some)
--     C1 controls U+0080–U+009F (C2 80–C2 9F) → \u009B, \u0085
--     bytes that are not UTF-8                → \xE9, \xFF
--
-- Everything else, printable ASCII and valid UTF-8 (`Jürgen`, `€`, `😀`), is
-- left as it is; a backslash too (the result is for reading, not a reversible
-- encoding). Used for the `hypatos` command's table, CSV, error and progress
-- lines, the `debug` lines (`hypatos.debuglog`) and the cells `hypatos.csv`
-- writes. Runs on Lua 5.4 and LuaJIT.
-- @module hypatos.printable

local byte, char, find, format, sub, concat = string.byte, string.char, string.find, string.format, string.sub,
  table.concat

local M = {}

-- Bytes that need a look: C0, DEL and every byte of a multi-byte sequence.
local SPECIAL = "[%z\1-\31\127-\255]"

-- Mask of the first byte's payload, by sequence length.
local LEAD = { [2] = 32, [3] = 16, [4] = 8 }

--- The length and code point of the UTF-8 sequence starting at byte j (lead byte c), or nil.
-- Refuses what `hypatos.json.encode` refuses: overlong forms, surrogates, beyond U+10FFFF.
-- @tparam string s
-- @tparam integer j
-- @tparam integer c the byte at j (0x80 or more)
-- @treturn[1] integer length
-- @treturn[1] integer code point
-- @treturn[2] nil
local function sequence(s, j, c)
  local len = c >= 0xF0 and 4 or c >= 0xE0 and 3 or c >= 0xC2 and 2 or 0
  if len == 0 or c > 0xF4 then return nil end
  local cp = c % LEAD[len]
  for k = 1, len - 1 do
    local d = byte(s, j + k)
    if not d or d < 0x80 or d > 0xBF then return nil end
    cp = cp * 64 + d % 64
  end
  if (len == 3 and (cp < 0x800 or (cp >= 0xD800 and cp <= 0xDFFF))) or (len == 4 and (cp < 0x10000 or cp > 0x10FFFF))
  then
    return nil
  end
  return len, cp
end

--- A string with its control characters and invalid bytes written as visible text
-- (see the module's table); the same string when there is nothing to escape.
-- @tparam string s
-- @tparam[opt] string keep C0 control characters to leave as they are (e.g. `"\t\r\n"`)
-- @treturn string
function M.escape(s, keep)
  if not find(s, SPECIAL) then return s end
  local out, i, n = {}, 1, #s
  while i <= n do
    local j = find(s, SPECIAL, i)
    if not j then
      out[#out + 1] = sub(s, i)
      break
    end
    if j > i then out[#out + 1] = sub(s, i, j - 1) end
    local c = byte(s, j)
    if c < 0x80 then
      out[#out + 1] = (keep and find(keep, char(c), 1, true)) and char(c) or format("\\x%02X", c)
      i = j + 1
    else
      local len, cp = sequence(s, j, c)
      if not len then
        out[#out + 1] = format("\\x%02X", c)
        i = j + 1
      else
        out[#out + 1] = cp <= 0x9F and format("\\u%04X", cp) or sub(s, j, j + len - 1)
        i = j + len
      end
    end
  end
  return concat(out)
end

return M
