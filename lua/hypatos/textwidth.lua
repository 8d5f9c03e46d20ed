--- How many terminal columns text takes, for aligned columns: the `hypatos`
-- command's `table` format and examples/quickstart.lua.
--
-- A character is one column, except: East Asian wide and fullwidth characters
-- (CJK ideographs, kana, Hangul syllables, fullwidth forms) and the common
-- emoji blocks take two; combining marks (`e` + U+0301 is one `é`), zero-width
-- spaces and joiners, variation selectors and control characters take none.
-- This is a compact version of what `wcwidth` answers (Unicode's
-- East_Asian_Width W/F and general categories Mn/Me/Cf), without a library: a
-- terminal with other fonts may differ for rare characters. A byte that is not
-- part of valid UTF-8 counts as one column (the command escapes such bytes
-- before it measures them). Plain Lua: runs on Lua 5.1–5.4 and LuaJIT (no
-- `utf8` library).
-- @module hypatos.textwidth

local byte, sub, rep = string.byte, string.sub, string.rep
local floor = math.floor

local M = {}

-- Code point ranges two columns wide (sorted, not overlapping).
local WIDE = {
  { 0x1100, 0x115F }, { 0x231A, 0x231B }, { 0x2329, 0x232A }, { 0x23E9, 0x23EC }, { 0x23F0, 0x23F0 },
  { 0x23F3, 0x23F3 }, { 0x25FD, 0x25FE }, { 0x2614, 0x2615 }, { 0x2648, 0x2653 }, { 0x267F, 0x267F },
  { 0x2693, 0x2693 }, { 0x26A1, 0x26A1 }, { 0x26AA, 0x26AB }, { 0x26BD, 0x26BE }, { 0x26C4, 0x26C5 },
  { 0x26CE, 0x26CE }, { 0x26D4, 0x26D4 }, { 0x26EA, 0x26EA }, { 0x26F2, 0x26F3 }, { 0x26F5, 0x26F5 },
  { 0x26FA, 0x26FA }, { 0x26FD, 0x26FD }, { 0x2705, 0x2705 }, { 0x270A, 0x270B }, { 0x2728, 0x2728 },
  { 0x274C, 0x274C }, { 0x274E, 0x274E }, { 0x2753, 0x2755 }, { 0x2757, 0x2757 }, { 0x2795, 0x2797 },
  { 0x27B0, 0x27B0 }, { 0x27BF, 0x27BF }, { 0x2B1B, 0x2B1C }, { 0x2B50, 0x2B50 }, { 0x2B55, 0x2B55 },
  { 0x2E80, 0x303E }, { 0x3041, 0x33FF }, { 0x3400, 0x4DBF }, { 0x4E00, 0x9FFF }, { 0xA000, 0xA4CF },
  { 0xA960, 0xA97F }, { 0xAC00, 0xD7A3 }, { 0xF900, 0xFAFF }, { 0xFE10, 0xFE19 }, { 0xFE30, 0xFE6F },
  { 0xFF00, 0xFF60 }, { 0xFFE0, 0xFFE6 }, { 0x16FE0, 0x16FE4 }, { 0x17000, 0x18CFF }, { 0x1B000, 0x1B2FF },
  { 0x1F004, 0x1F004 }, { 0x1F0CF, 0x1F0CF }, { 0x1F18E, 0x1F18E }, { 0x1F191, 0x1F19A },
  { 0x1F200, 0x1F251 }, { 0x1F300, 0x1F320 }, { 0x1F32D, 0x1F335 }, { 0x1F337, 0x1F37C },
  { 0x1F37E, 0x1F393 }, { 0x1F3A0, 0x1F3CA }, { 0x1F3CF, 0x1F3D3 }, { 0x1F3E0, 0x1F3F0 },
  { 0x1F3F4, 0x1F3F4 }, { 0x1F3F8, 0x1F43E }, { 0x1F440, 0x1F440 }, { 0x1F442, 0x1F4FC },
  { 0x1F4FF, 0x1F53D }, { 0x1F54B, 0x1F54E }, { 0x1F550, 0x1F567 }, { 0x1F57A, 0x1F57A },
  { 0x1F595, 0x1F596 }, { 0x1F5A4, 0x1F5A4 }, { 0x1F5FB, 0x1F64F }, { 0x1F680, 0x1F6C5 },
  { 0x1F6CC, 0x1F6CC }, { 0x1F6D0, 0x1F6D2 }, { 0x1F6D5, 0x1F6D7 }, { 0x1F6DC, 0x1F6DF },
  { 0x1F6EB, 0x1F6EC }, { 0x1F6F4, 0x1F6FC }, { 0x1F7E0, 0x1F7EB }, { 0x1F7F0, 0x1F7F0 },
  { 0x1F90C, 0x1F93A }, { 0x1F93C, 0x1F945 }, { 0x1F947, 0x1F9FF }, { 0x1FA70, 0x1FAFF },
  { 0x20000, 0x2FFFD }, { 0x30000, 0x3FFFD },
}

-- Code point ranges of no width: combining marks, zero-width format characters,
-- variation selectors (sorted, not overlapping).
local ZERO = {
  { 0x0300, 0x036F }, { 0x0483, 0x0489 }, { 0x0591, 0x05BD }, { 0x05BF, 0x05BF }, { 0x05C1, 0x05C2 },
  { 0x05C4, 0x05C5 }, { 0x05C7, 0x05C7 }, { 0x0610, 0x061A }, { 0x061C, 0x061C }, { 0x064B, 0x065F },
  { 0x0670, 0x0670 }, { 0x06D6, 0x06DC }, { 0x06DF, 0x06E4 }, { 0x06E7, 0x06E8 }, { 0x06EA, 0x06ED },
  { 0x0711, 0x0711 }, { 0x0730, 0x074A }, { 0x07A6, 0x07B0 }, { 0x07EB, 0x07F3 }, { 0x0816, 0x082D },
  { 0x0859, 0x085B }, { 0x0898, 0x089F }, { 0x08CA, 0x0902 }, { 0x093A, 0x093A }, { 0x093C, 0x093C },
  { 0x0941, 0x0948 }, { 0x094D, 0x094D }, { 0x0951, 0x0957 }, { 0x0962, 0x0963 }, { 0x0981, 0x0981 },
  { 0x09BC, 0x09BC }, { 0x09C1, 0x09C4 }, { 0x09CD, 0x09CD }, { 0x09E2, 0x09E3 }, { 0x0A01, 0x0A02 },
  { 0x0A3C, 0x0A3C }, { 0x0A41, 0x0A51 }, { 0x0A70, 0x0A71 }, { 0x0A75, 0x0A75 }, { 0x0A81, 0x0A82 },
  { 0x0ABC, 0x0ABC }, { 0x0AC1, 0x0AC8 }, { 0x0ACD, 0x0ACD }, { 0x0AE2, 0x0AE3 }, { 0x0B01, 0x0B01 },
  { 0x0B3C, 0x0B3C }, { 0x0B3F, 0x0B3F }, { 0x0B41, 0x0B44 }, { 0x0B4D, 0x0B4D }, { 0x0B82, 0x0B82 },
  { 0x0BC0, 0x0BC0 }, { 0x0BCD, 0x0BCD }, { 0x0C3E, 0x0C40 }, { 0x0C46, 0x0C56 }, { 0x0CBC, 0x0CBC },
  { 0x0CCC, 0x0CCD }, { 0x0D41, 0x0D44 }, { 0x0D4D, 0x0D4D }, { 0x0E31, 0x0E31 }, { 0x0E34, 0x0E3A },
  { 0x0E47, 0x0E4E }, { 0x0EB1, 0x0EB1 }, { 0x0EB4, 0x0EBC }, { 0x0EC8, 0x0ECE }, { 0x0F18, 0x0F19 },
  { 0x0F35, 0x0F35 }, { 0x0F37, 0x0F37 }, { 0x0F39, 0x0F39 }, { 0x0F71, 0x0F7E }, { 0x0F80, 0x0F84 },
  { 0x102D, 0x1030 }, { 0x1032, 0x1037 }, { 0x1039, 0x103A }, { 0x1160, 0x11FF }, { 0x135D, 0x135F },
  { 0x1712, 0x1714 }, { 0x17B4, 0x17B5 }, { 0x17B7, 0x17BD }, { 0x17C6, 0x17C6 }, { 0x17C9, 0x17D3 },
  { 0x180B, 0x180F }, { 0x1A7F, 0x1A7F }, { 0x1AB0, 0x1AFF }, { 0x1DC0, 0x1DFF }, { 0x200B, 0x200F },
  { 0x202A, 0x202E }, { 0x2060, 0x2064 }, { 0x20D0, 0x20F0 }, { 0x2CEF, 0x2CF1 }, { 0x2DE0, 0x2DFF },
  { 0x302A, 0x302D }, { 0x3099, 0x309A }, { 0xA66F, 0xA672 }, { 0xA674, 0xA67D }, { 0xA69E, 0xA69F },
  { 0xA8E0, 0xA8F1 }, { 0xFB1E, 0xFB1E }, { 0xFE00, 0xFE0F }, { 0xFE20, 0xFE2F }, { 0xFEFF, 0xFEFF },
  { 0x1D167, 0x1D169 }, { 0x1D173, 0x1D182 }, { 0x1E000, 0x1E02A }, { 0xE0001, 0xE007F },
  { 0xE0100, 0xE01EF },
}

--- Whether code point cp lies in one of the sorted ranges (binary search).
-- @tparam table ranges `{{first, last}, …}`
-- @tparam integer cp
-- @treturn boolean
local function within(ranges, cp)
  local lo, hi = 1, #ranges
  if cp < ranges[1][1] or cp > ranges[hi][2] then return false end
  while lo <= hi do
    local mid = floor((lo + hi) / 2)
    local r = ranges[mid]
    if cp < r[1] then hi = mid - 1
    elseif cp > r[2] then lo = mid + 1
    else return true end
  end
  return false
end

--- Columns of one code point: 0, 1 or 2.
-- @tparam integer cp a Unicode code point
-- @treturn integer
function M.char_width(cp)
  if cp < 0x20 or (cp >= 0x7F and cp < 0xA0) then return 0 end -- controls
  if cp < 0x300 then return 1 end                                -- Latin, the common case
  if within(ZERO, cp) then return 0 end
  if cp >= 0x1100 and within(WIDE, cp) then return 2 end
  return 1
end

--- The next character of s at byte i: its length in bytes and its code point
-- (a byte that does not start valid UTF-8: length 1, code point nil).
-- @tparam string s
-- @tparam integer i
-- @treturn integer length
-- @treturn integer|nil code point
local function decode(s, i)
  local c = byte(s, i)
  if c < 0x80 then return 1, c end
  local len = c >= 0xF0 and c <= 0xF4 and 4 or c >= 0xE0 and c < 0xF0 and 3 or c >= 0xC2 and c < 0xE0 and 2 or 0
  if len == 0 then return 1, nil end
  local cp = c % (len == 2 and 32 or len == 3 and 16 or 8)
  for k = 1, len - 1 do
    local d = byte(s, i + k)
    if not d or d < 0x80 or d > 0xBF then return 1, nil end
    cp = cp * 64 + d % 64
  end
  if (len == 3 and cp < 0x800) or (len == 4 and (cp < 0x10000 or cp > 0x10FFFF)) then return 1, nil end
  return len, cp
end

--- Columns a string takes on a terminal (see the module's rules).
-- @tparam string s UTF-8 text
-- @treturn integer
function M.width(s)
  if not s:find("[\128-\255%c]") then return #s end -- ASCII without controls: one column a byte
  local w, i, n = 0, 1, #s
  while i <= n do
    local len, cp = decode(s, i)
    w = w + (cp and M.char_width(cp) or 1)
    i = i + len
  end
  return w
end

--- s followed by spaces up to `columns` columns (s itself when as wide or wider).
-- @tparam string s
-- @tparam integer columns
-- @treturn string
function M.pad(s, columns)
  local w = M.width(s)
  if w >= columns then return s end
  return s .. rep(" ", columns - w)
end

--- The longest start (or end) of s that fits in `room` columns, never splitting a
-- character from its combining marks.
-- @tparam string s
-- @tparam integer room
-- @tparam boolean from_end keep the end of s instead of its start
-- @treturn string
local function fit(s, room, from_end)
  local chars, i, n = {}, 1, #s
  while i <= n do -- every character's first byte and width, a combining mark staying with its base
    local len, cp = decode(s, i)
    chars[#chars + 1] = { i, i + len - 1, cp and M.char_width(cp) or 1 }
    i = i + len
  end
  local used = 0
  if from_end then
    local first = #chars + 1
    for k = #chars, 1, -1 do
      if used + chars[k][3] > room then break end
      used, first = used + chars[k][3], k
    end
    while chars[first] and chars[first][3] == 0 do first = first + 1 end -- no mark without its base
    return chars[first] and sub(s, chars[first][1]) or ""
  end
  local last = 0
  for k = 1, #chars do
    if used + chars[k][3] > room then break end
    used, last = used + chars[k][3], k
  end
  while chars[last + 1] and chars[last + 1][3] == 0 do last = last + 1 end -- a base keeps its marks
  return last > 0 and sub(s, 1, chars[last][2]) or ""
end

--- s cut to at most `columns` columns, with "…" where text was removed: at the
-- end, or at the start when `from` is `"left"` (a path keeps its file name).
-- @tparam string s
-- @tparam integer columns at least 1
-- @tparam[opt] string from `"right"` (the default) or `"left"`: the side that is cut
-- @treturn string s itself when it fits
function M.cut(s, columns, from)
  if M.width(s) <= columns then return s end
  if from == "left" then return "…" .. fit(s, columns - 1, true) end
  return fit(s, columns - 1, false) .. "…"
end

return M
