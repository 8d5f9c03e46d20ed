--- Fuzz target: hypatos.filename (safe, encode, decode, basename,
-- content_type) on arbitrary bytes. `safe` gives nil or a base name with no
-- path separator, control or Windows-forbidden character, no Unicode bidi or
-- format control, no leading dot or space, at most 255 bytes; `encode` gives a header value of at most
-- MAX_LENGTH printable bytes or `nil, message`; nothing raises.
local filename = require "hypatos.filename"

return function(data)
  local s = filename.safe(data)
  if s ~= nil then
    assert(type(s) == "string" and #s > 0 and #s <= 255, "safe: bad length")
    assert(not s:find("[/\\%z\1-\31\127<>:\"|?*]"), "safe: forbidden byte in " .. ("%q"):format(s))
    assert(not s:find("^[%s%.]") and not s:find("[%s%.]$"), "safe: leading or trailing dot or space")
    assert(not (s:find("\226\128[\139-\143\168-\174]") or s:find("\226\129[\166-\169]") or s:find("\239\187\191")
      or s:find("\216\156")), "safe: a bidi or format control in " .. ("%q"):format(s))
    assert(filename.safe(s) == s, "safe is not idempotent")
  end
  local e, err = filename.encode(data)
  if e ~= nil then
    assert(type(e) == "string" and #e <= filename.MAX_LENGTH, "encode: too long")
    assert(not e:find("[%z\1-\31\127]"), "encode: control byte in the header value")
    local d = filename.decode(e)
    assert(d == nil or type(d) == "string", "decode: not a string")
  else
    assert(type(err) == "string", "encode: nil without a message")
  end
  local d = filename.decode(data)
  assert(d == nil or type(d) == "string", "decode: not a string")
  assert(type(filename.basename(data)) == "string")
  local ct = filename.content_type(data)
  assert(ct == nil or type(ct) == "string")
end
