-- hypatos.cli.compat: the plain-Lua utf8 and tointeger the command uses on Lua 5.1 and LuaJIT
-- answer as Lua 5.4's own do.
local compat = require "hypatos.cli.compat"
local U = compat.utf8_lua

local SAMPLES = {
  "", "plain", "a\0b", "Müller", "€ 12,50", "😀 x", "日本語のテキスト",
  "bad \255 byte", "cut \226\130", "overlong \192\128", "surrogate \237\160\128", "past \244\144\128\128",
  "lone \128 continuation",
}

describe("hypatos.cli.compat", function()
  it("uses the native utf8 where it exists", function()
    assert.equal(utf8, compat.utf8)
  end)

  it("utf8.len, offset, codes, codepoint and char answer as Lua 5.4's", function()
    for _, s in ipairs(SAMPLES) do
      assert.same({ utf8.len(s) }, { U.len(s) }, s)
      for n = 1, #s + 2 do
        assert.equal(utf8.offset(s, n), U.offset(s, n), s .. " " .. n)
      end
      local ok = utf8.len(s) ~= nil
      if ok then
        local a, b = {}, {}
        for p, c in utf8.codes(s) do a[#a + 1] = { p, c } end
        for p, c in U.codes(s) do b[#b + 1] = { p, c } end
        assert.same(a, b, s)
        if #s > 0 then
          assert.same({ utf8.codepoint(s, 1, -1) }, { U.codepoint(s, 1, -1) }, s)
          assert.equal(s, U.char(U.codepoint(s, 1, -1)))
        end
        local n = 0
        for _ in s:gmatch(U.charpattern) do n = n + 1 end
        assert.equal(utf8.len(s), n, s)
      else
        assert.has_error(function() for _ in U.codes(s) do end end)
      end
    end
  end)

  it("tointeger: integral numbers and numeric strings, else nil", function()
    for _, v in ipairs({ 3, 3.0, "42", "1e2", 2.5, "x", -7, 0 }) do
      assert.equal(math.tointeger(v), compat.tointeger_lua(v), tostring(v))
    end
    assert.is_nil(compat.tointeger_lua(math.huge))
    assert.is_nil(compat.tointeger_lua(0 / 0))
    assert.equal(math.tointeger, compat.tointeger)
  end)

  it("succeeded: os.execute's first value in every Lua", function()
    assert.is_true(compat.succeeded(true))
    assert.is_true(compat.succeeded(0))
    assert.is_false(compat.succeeded(nil))
    assert.is_false(compat.succeeded(256))
  end)
end)
