--- File names in the `X-Hy-Filename` header.
-- The API takes header values in Latin-1 and at most 256 characters. A UTF-8
-- name whose characters all exist in Latin-1 is sent as Latin-1; any other
-- name is percent-encoded (RFC 3986), as integrations do. Bytes that are not
-- UTF-8 are taken to be Latin-1 already. Control characters are refused.
-- `decode` reverses this for downloads: Latin-1 bytes become UTF-8, and a
-- percent-encoded name that decodes to UTF-8 outside Latin-1 is decoded.
-- @module hypatos.filename

local M = {}

M.MAX_LENGTH = 256

--- Code points of a UTF-8 string, or nil when it is not valid UTF-8.
-- (Written out: LuaJIT has no utf8 library.)
local function codepoints(s)
  local t, i, n = {}, 1, #s
  while i <= n do
    local c = s:byte(i)
    local len, cp
    if c < 0x80 then len, cp = 1, c
    elseif c >= 0xC2 and c <= 0xDF then len, cp = 2, c - 0xC0
    elseif c >= 0xE0 and c <= 0xEF then len, cp = 3, c - 0xE0
    elseif c >= 0xF0 and c <= 0xF4 then len, cp = 4, c - 0xF0
    else return nil end
    if i + len - 1 > n then return nil end
    for k = i + 1, i + len - 1 do
      local d = s:byte(k)
      if d < 0x80 or d > 0xBF then return nil end
      cp = cp * 64 + (d - 0x80)
    end
    if (len == 3 and (cp < 0x800 or (cp >= 0xD800 and cp <= 0xDFFF))) or
       (len == 4 and (cp < 0x10000 or cp > 0x10FFFF)) then
      return nil
    end
    t[#t + 1] = cp
    i = i + len
  end
  return t
end

--- UTF-8 bytes of a code point below 256.
local function utf8_latin1(c)
  if c < 0x80 then return string.char(c) end
  return string.char(0xC0 + math.floor(c / 64), 0x80 + c % 64)
end

--- Percent-encodes every byte but RFC 3986 unreserved characters.
local function pct(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- Header value for a file name.
-- @tparam string name
-- @treturn[1] string the header value
-- @treturn[2] nil
-- @treturn[2] string why the name cannot be sent
function M.encode(name)
  if name:find("[%z\1-\31\127]") then
    local shown = name:gsub("[%z\1-\31\127]", function(c) return ("\\x%02X"):format(c:byte()) end)
    return nil, ("file name contains a control character (CR, LF, NUL …): %s"):format(shown)
  end
  if name == "" then return nil, "file name is empty" end
  local value
  local cps = codepoints(name)
  if not cps then
    value = name -- not UTF-8: Latin-1 bytes already
  else
    local latin1, fits = {}, true
    for i, c in ipairs(cps) do
      if c > 255 then fits = false break end
      latin1[i] = string.char(c)
    end
    value = fits and table.concat(latin1) or pct(name)
  end
  if #value > M.MAX_LENGTH then
    return nil, ("file name is longer than %d characters once encoded for the header (%d)")
      :format(M.MAX_LENGTH, #value)
  end
  return value
end

--- UTF-8 file name from a received header value (nil stays nil): Latin-1
-- bytes become UTF-8; a percent-encoded name that decodes to UTF-8 outside
-- Latin-1 is decoded. Never use the result as a path without `safe`.
-- @tparam string|nil value the `X-Hy-Filename` header value
-- @treturn string|nil the name in UTF-8
function M.decode(value)
  if value == nil then return nil end
  if value:find("%%%x%x") then
    local decoded = value:gsub("%%(%x%x)", function(h) return string.char(tonumber(h, 16)) end)
    local cps = codepoints(decoded)
    if cps then
      for _, c in ipairs(cps) do
        if c > 255 then return decoded end
      end
    end
  end
  if not value:find("[\128-\255]") then return value end
  local out = {}
  for i = 1, #value do out[i] = utf8_latin1(value:byte(i)) end
  return table.concat(out)
end

-- UTF-8 of the invisible characters that change how a name displays: the bidi
-- controls U+202A–U+202E, U+2066–U+2069 and U+061C (ARABIC LETTER MARK), the
-- format characters U+200B–U+200F and U+FEFF, and the separators U+2028/U+2029.
-- (`invoice<U+202E>fdp.exe` displays as `invoiceexe.pdf`.)
local INVISIBLE = { "\226\128[\139-\143\168-\174]", "\226\129[\166-\169]", "\239\187\191", "\216\156" }

--- A name from a server (`meta.filename`) reduced to a safe base name, or
-- nil when nothing usable is left. The raw value may be anything a server
-- sends (`../../.bashrc`, `C:\\x`, CR/LF/NUL); never use it as a path
-- without this. Keeps the last component after `/` or `\\`; drops control
-- characters, characters Windows forbids (`<>:"|?*`) and the invisible
-- Unicode bidi and format controls (U+200B–U+200F, U+202A–U+202E,
-- U+2066–U+2069, U+061C, U+FEFF, U+2028/U+2029), which could make
-- `invoice<U+202E>fdp.exe` display as `invoiceexe.pdf`; strips leading dots
-- and spaces (no hidden files, no `..`) and trailing dots and spaces; cuts
-- to 255 bytes at a UTF-8 boundary.
-- @tparam string|nil name
-- @treturn string|nil
function M.safe(name)
  if type(name) ~= "string" then return nil end
  local base = name:match("([^/\\]*)[/\\]*$") or ""
  repeat -- until nothing is dropped: dropping bytes may join the bytes around them into a control
    local dropped
    base, dropped = base:gsub("[%z\1-\31\127<>:\"|?*]", "")
    local n
    for _, pattern in ipairs(INVISIBLE) do
      base, n = base:gsub(pattern, "")
      dropped = dropped + n
    end
  until dropped == 0
  base = base:gsub("^[%s%.]+", ""):gsub("[%s%.]+$", "")
  if #base > 255 then
    local cut = 255
    while cut > 0 and base:byte(cut + 1) and base:byte(cut + 1) >= 0x80 and base:byte(cut + 1) < 0xC0 do
      cut = cut - 1
    end
    base = base:sub(1, cut):gsub("[%s%.]+$", "") -- the cut may leave a trailing dot or space
  end
  if base == "" then return nil end
  return base
end

--- Base name of a path ("dir/a.pdf" → "a.pdf"; trailing slashes ignored).
-- @tparam string path a file path with `/` separators
-- @treturn string the last component
function M.basename(path)
  return path:match("([^/]+)/*$") or path
end

local TYPES = {
  pdf = "application/pdf", jpg = "image/jpeg", jpeg = "image/jpeg", png = "image/png",
  tif = "image/tiff", tiff = "image/tiff", xml = "application/xml",
}

--- Content type of a file name from its extension, case-insensitive: pdf,
-- jpg/jpeg, png, tif/tiff, xml (nil when unknown or no name).
-- @tparam string|nil name a file name
-- @treturn string|nil e.g. "application/pdf"
function M.content_type(name)
  local ext = name and name:match("%.([%w]+)$")
  return ext and TYPES[ext:lower()]
end

return M
