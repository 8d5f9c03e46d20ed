-- JSON in and out: exact numbers, empty arrays, integers, clear errors.
local hypatos = require "hypatos"
local enc, dec = hypatos.json.encode, hypatos.json.decode

describe("json.encode", function()
  it("writes objects with sorted keys and arrays in order", function()
    assert.equal('{"a":1,"b":[1,2,3],"c":{"d":true}}', enc({ c = { d = true }, b = { 1, 2, 3 }, a = 1 }))
  end)

  it("writes integers exactly and floats in their shortest exact form", function()
    assert.equal("12345678901234567", enc(12345678901234567))
    assert.equal("0.1", enc(0.1))
    assert.equal("19.0123", enc(19.0123))
    assert.equal("0.30000000000000004", enc(0.1 + 0.2))
    assert.equal("123456789012.345", enc(123456789012.345))
    assert.equal("3", enc(3.0))
    assert.equal("-0.5", enc(-0.5))
    assert.equal("1e+300", enc(1e300))
  end)

  it("writes empty arrays when asked, empty tables as objects", function()
    assert.equal("[]", enc(hypatos.array()))
    assert.equal('{"items":[]}', enc({ items = hypatos.array({}) }))
    assert.equal("{}", enc({}))
    assert.equal("[1,2]", enc(hypatos.array({ 1, 2 })))
  end)

  it("writes null and escapes strings", function()
    assert.equal('{"a":null}', enc({ a = hypatos.null }))
    assert.equal('"q\\"b\\\\n\\nt\\tc\\u0001"', enc('q"b\\n\nt\tc\1'))
    assert.equal('"Größe €"', enc("Größe €"))
  end)

  it("escapes C1 controls (U+0080 to U+009F) and DEL, never writing them raw (issue 16.3)", function()
    assert.equal('"\\u0080a\\u009bb\\u009fc\\u007f"', enc("\u{80}a\u{9b}b\u{9f}c\127"))
    assert.equal('"\\u001b]0;pwned\\u0007 \\u009b31m"', enc("\27]0;pwned\7 \u{9b}31m"))
    -- the same JSON value: decoded back to the same bytes
    local s = "x\u{85}y\u{9b}\u{a0}z"
    assert.equal(s, dec(enc(s)))
    assert.equal('{"k\\u0090":"v"}', enc({ ["k\u{90}"] = "v" }))
    -- the characters just outside the range are written as they are
    assert.equal('"\u{a0}\u{ff}\u{100}ü"', enc("\u{a0}\u{ff}\u{100}ü"))
    for cp = 0x80, 0x9f do
      assert.equal(('"\\u%04x"'):format(cp), enc(utf8.char(cp)))
    end
  end)

  it("writes keys holding NUL in full, never cut at the NUL (issue 7.6)", function()
    assert.equal('{"a":2,"a\\u0000b":1}', enc({ ["a\0b"] = 1, a = 2 }))
    local v = assert(dec('{"id\\u0000x":"secret","id":"public"}'))
    assert.equal('{"id":"public","id\\u0000x":"secret"}', enc(v))
    assert.same(v, dec(enc(v)))
  end)

  it("survives finalizers that add keys to a table while it is written (issue 7.2)", function()
    for _ = 1, 20 do
      local t = {}
      for i = 1, 40 do t["k" .. i] = i end
      for i = 1, 300 do
        setmetatable({}, { __gc = function() for j = 1, 50 do t["z" .. i .. "_" .. j] = j end end })
      end
      local ok, text = pcall(enc, t)
      assert.is_true(ok, tostring(text))
      local back = assert(dec(text))
      for i = 1, 40 do assert.equal(i, back["k" .. i]) end
    end
  end)

  it("refuses what JSON cannot hold, naming where", function()
    assert.has_error(function() enc({ a = { b = 0 / 0 } }) end, "json: NaN or infinity cannot be written as JSON at a.b")
    assert.has_error(function() enc({ 1, 2, nil, 4 }) end)
    assert.has_error(function() enc({ 1, x = 2 }) end, "json: table mixes array items and object keys at top level")
    assert.has_error(function() enc({ f = print }) end, "json: function cannot be written as JSON at f")
    assert.has_error(function() enc({ s = "caf\xe9" }) end, "json: string is not valid UTF-8 at s")
    local t = {}
    t.self = t
    assert.has_error(function() enc(t) end)
  end)
end)

describe("json.decode", function()
  it("gives integers for integral numbers", function()
    local v = dec('{"totalCount": 3, "price": 2.5, "big": 1e20}')
    assert.equal(math.type and "integer" or "number", math.type and math.type(v.totalCount) or "number")
    assert.equal("3", tostring(v.totalCount))
    assert.equal(2.5, v.price)
  end)

  it("keeps empty arrays as arrays, so they round-trip", function()
    local v = dec('{"normalization": [], "rules": {}, "nested": [[], {"x": [ ]}]}')
    assert.equal('{"nested":[[],{"x":[]}],"normalization":[],"rules":{}}', enc(v))
    assert.equal("[]", enc(dec("[]")))
  end)

  it("keeps strings that look like markers untouched", function()
    local v = dec('{"s": "[]", "t": "a\\"[]"}')
    assert.equal("[]", v.s)
    assert.equal('a"[]', v.t)
  end)

  it("returns nil and a message on bad JSON", function()
    local v, err = dec('{"a": ')
    assert.is_nil(v)
    assert.is_string(err)
  end)

  it("gives null as hypatos.null", function()
    assert.equal(hypatos.null, dec('{"a": null}').a)
  end)

  it("reads in one pass what cjson got wrong: exact integers to 2^63, top-level integers, -0", function()
    assert.equal(9007199254740993, dec("9007199254740993")) -- 2^53 + 1: exact (cjson: rounded)
    assert.equal(math.mininteger, dec("-9223372036854775808"))
    assert.equal("float", math.type(dec("9223372036854775808"))) -- beyond int64: a double
    assert.equal("integer", math.type(dec("3")))
    assert.equal("integer", math.type(dec("1e2"))) -- integral: an integer, as before
    assert.equal(100, dec("1e2"))
    assert.equal(2.5, dec("2.5"))
    local z = dec("-0")
    assert.equal("float", math.type(z))
    assert.equal(-math.huge, 1 / z) -- the sign is kept
  end)

  it("reads every decimal as the nearest double, on the fast path and off it (strtod's answers)", function()
    -- the fast path: up to 15 significant digits and a power of ten within ±22; beyond: strtod
    local texts = { "0.1", "0.3", "2.675", "123.456", "-0.000123", "99.99", "1.5e-7", "7e22", "1e23",
      "123456789012345.6", "1234567890123456.7", "0.1e-22", "4.9e-324", "2.2250738585072014e-308",
      "1.7976931348623157e308", "1e-400", "3.14159265358979323846", "0.30000000000000004",
      "100000000000000000000000e-2", "-7.5E+3" }
    math.randomseed(19)
    for _ = 1, 2000 do -- random amounts and confidences, as the API sends them
      texts[#texts + 1] = ("%d.%0" .. math.random(1, 12) .. "d"):format(math.random(0, 999999),
        math.random(0, 999999999))
    end
    for _, t in ipairs(texts) do
      local want = tonumber(t)
      if want == math.floor(want) and math.abs(want) < 2 ^ 53 then want = math.tointeger(want) end
      assert.equal(want, dec(t), t)
      assert.equal(math.type(want), math.type(dec(t)), t)
    end
    assert.equal(-math.huge, 1 / dec("-0.0e5")) -- a zero keeps its sign
  end)

  it("reads escapes: \\uXXXX, surrogate pairs to UTF-8, and refuses a lone surrogate", function()
    assert.equal("é😀\n\"/", dec('"\\u00e9\\ud83d\\ude00\\n\\"\\/"'))
    local v, err = dec('["\\ud800"]')
    assert.is_nil(v)
    assert.equal("Expected value but found invalid unicode escape code at character 3", err)
    v, err = dec('"\\udc00x"')
    assert.is_nil(v)
    assert.equal("Expected value but found invalid unicode escape code at character 2", err)
  end)

  it("refuses what is not JSON, with cjson's messages and positions", function()
    local cases = {
      ['{"a": '] = "Expected value but found T_END at character 7",
      ["[1,]"] = "Expected value but found T_ARR_END at character 4",
      ['{"a":1,}'] = "Expected object key string but found T_OBJ_END at character 8",
      ["[1 2]"] = "Expected comma or array end but found T_NUMBER at character 4",
      ['{"a" 1}'] = "Expected colon but found T_NUMBER at character 6",
      ["{} x"] = "Expected the end but found invalid token at character 4",
      ["nul"] = "Expected value but found invalid token at character 1",
      ['"\\x"'] = "Expected value but found invalid escape code at character 2",
      -- numbers cjson 2.1.0 let through: not JSON
      ["01"] = "Expected value but found invalid number at character 1",
      ["1."] = "Expected value but found invalid number at character 1",
      ["0x10"] = "Expected value but found invalid number at character 1",
      ["NaN"] = "Expected value but found invalid token at character 1",
      ["-Infinity"] = "Expected value but found invalid number at character 1",
    }
    for text, want in pairs(cases) do
      local v, err = dec(text)
      assert.is_nil(v, text)
      assert.equal(want, err, text)
    end
  end)

  it("stops at 1000 levels of nesting", function()
    assert.is_table(dec(("["):rep(1000) .. ("]"):rep(1000)))
    local v, err = dec(("["):rep(1001) .. ("]"):rep(1001))
    assert.is_nil(v)
    assert.equal("Found too many nested data structures (1001) at character 1001", err)
  end)
end)

describe("json round trip (randomised)", function()
  -- A deterministic generator (no math.random state shared with other specs).
  local seed = 12345
  local function rnd(n)
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed % n
  end
  local ALPHABET = { "a", "Z", "0", " ", "\"", "\\", "/", "\n", "\t", "é", "€", "😀", "[]", "{}", "\1" }
  local function str()
    local t = {}
    for i = 1, rnd(8) do t[i] = ALPHABET[rnd(#ALPHABET) + 1] end
    return table.concat(t)
  end
  local function value(depth)
    local k = rnd(depth > 3 and 5 or 8)
    if k == 0 then return rnd(2) == 0 end
    if k == 1 then return rnd(2000000) - 1000000 end
    if k == 2 then return (rnd(2000000) - 1000000) / (rnd(999) + 1) end
    if k == 3 then return str() end
    if k == 4 then return hypatos.null end
    if k == 5 then return hypatos.array() end
    local t = {}
    if k == 6 then
      for i = 1, rnd(5) + 1 do t[i] = value(depth + 1) end
    else
      for _ = 1, rnd(5) do t["k" .. str()] = value(depth + 1) end
    end
    return t
  end

  it("decode(encode(v)) encodes to the same text, for 500 random values", function()
    for _ = 1, 500 do
      local v = { root = value(0) }
      local text = enc(v)
      local back, err = dec(text)
      assert.is_nil(err)
      assert.equal(text, enc(back))
    end
  end)
end)
