--- Fuzz target: JSON decode → encode round trip (hypatos.json_decode and
-- hypatos.json_encode). The input is JSON text. Decoding ends with a value or
-- `nil, message`; a decoded value either encodes (and then decodes back to the
-- same value, and encodes again to the same text) or raises a documented
-- "json: …" error (too deep, not UTF-8, infinite numbers).
local core = require "hypatos.core"

local array_mt = core.array_mt

--- Deep equality of decoded values (array marks included).
local function same(a, b, depth)
  if a == b then return true end
  if type(a) ~= "table" or type(b) ~= "table" or depth > 200 then return false end
  if getmetatable(a) ~= getmetatable(b) and (getmetatable(a) == array_mt or getmetatable(b) == array_mt) then
    return false
  end
  for k, v in pairs(a) do
    if not same(v, b[k], depth + 1) then return false end
  end
  for k in pairs(b) do
    if a[k] == nil then return false end
  end
  return true
end

return function(data)
  local v, err = core.json_decode(data)
  if v == nil then
    assert(type(err) == "string", "json_decode failed without a message")
    return
  end
  local ok, text = pcall(core.json_encode, v)
  if not ok then
    assert(type(text) == "string" and text:find("^json: "), "json_encode raised: " .. tostring(text))
    return
  end
  local w, err2 = core.json_decode(text)
  assert(w ~= nil, "the encoder's output does not decode: " .. tostring(err2) .. " in " .. text)
  assert(same(v, w, 0), "the round trip changed the value: " .. text)
  assert(core.json_encode(w) == text, "encoding is not stable: " .. text)
end
