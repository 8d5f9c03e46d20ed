-- Text from a server made safe for terminals (issue 16.3): hypatos.printable.escape and the
-- lines of hypatos.debuglog. The `hypatos` command's own output is checked end to end in spec/80.
local printable = require "hypatos.printable"
local debuglog = require "hypatos.debuglog"
local helpers = require "spec.helpers"

local escape = printable.escape

describe("printable.escape", function()
  it("leaves printable ASCII and valid UTF-8 as they are (the same string)", function()
    for _, s in ipairs({ "", "plain text", "J\195\188rgen Gr\195\182\195\159e \226\130\172 \240\159\152\128",
      "\194\160nbsp \194\191 \195\191 \196\128 \239\191\189", [[back\slash \x1B]] }) do
      assert.equal(s, escape(s))
    end
  end)

  it("writes C0 controls and DEL as \\xNN, C1 controls as \\u00NN", function()
    assert.equal("\\x1B]0;pwned\\x07", escape("\27]0;pwned\7"))
    assert.equal("\\x1B[31mred\\x1B[0m", escape("\27[31mred\27[0m"))
    assert.equal("\\x00\\x01\\x09\\x0A\\x0D\\x1F\\x7F", escape("\0\1\t\n\r\31\127"))
    assert.equal("a\\u009B2Jb\\u0080\\u0085\\u009F", escape("a\194\1552Jb\194\128\194\133\194\159"))
    for cp = 0x80, 0x9f do assert.equal(("\\u%04X"):format(cp), escape(utf8.char(cp))) end
    for b = 0, 31 do assert.equal(("\\x%02X"):format(b), escape(string.char(b))) end
  end)

  it("keeps the C0 controls it is asked to keep", function()
    assert.equal("a\tb\r\nc\\x1B", escape("a\tb\r\nc\27", "\t\r\n"))
    assert.equal("a\\x09b", escape("a\tb", "\n"))
  end)

  it("writes each byte that is not UTF-8 as \\xNN and goes on after it", function()
    assert.equal("caf\\xE9", escape("caf\233"))
    assert.equal("\\xC0\\xAF", escape("\192\175"))                       -- overlong "/"
    assert.equal("\\xED\\xA0\\x80", escape("\237\160\128"))              -- a surrogate
    assert.equal("\\xF4\\x90\\x80\\x80", escape("\244\144\128\128"))     -- beyond U+10FFFF
    assert.equal("\\xE2\\x82", escape("\226\130"))                        -- cut short
    assert.equal("\\xFF\195\188\\xC2", escape("\255\195\188\194"))
    assert.equal("\\x80\\x9B", escape("\128\155"))                        -- C1 bytes alone (not UTF-8)
  end)

  it("gives the same results in LuaJIT", function()
    local dir, rm = helpers.tmpdir()
    helpers.write(dir .. "/esc.lua", [[
      local escape = require("hypatos.printable").escape
      for _, s in ipairs({ "J\195\188rgen \226\130\172", "\27]0;x\7\194\155\127", "caf\233\192\175\226\130",
        "\t\r\n", "=1+1", "-12.5", "-1e+300", "@x", "\244\144\128\128\240\159\152\128" }) do
        io.write(escape(s), "|", escape(s, "\t\r\n"), "\n")
      end
    ]])
    local function out(lua, cpath)
      local p = io.popen(("LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='%s' %s %s/esc.lua 2>&1"):format(cpath,
        lua, dir))
      local text = p:read("a")
      p:close()
      return text
    end
    local jit, lua54 = out("luajit", "build/luajit/?.so;;"), out("lua5.4", "build/5.4/?.so;;")
    rm()
    assert.matches("^J\195\188rgen \226\130\172|", lua54)
    assert.equal(lua54, jit)
  end)
end)

describe("debuglog lines", function()
  it("escape control characters from the server (a rate-limit header, an error text)", function()
    local line = debuglog.line({ method = "GET", url = "http://127.0.0.1/v2/users", attempt = 1, status = 200,
      elapsed = 0.01, headers = { ["X-RateLimit-Remaining"] = "7\27]0;pwned\7\194\1552J" } })
    assert.equal("hypatos: debug GET http://127.0.0.1/v2/users -> 200 (attempt 1, 10.0 ms, "
      .. "rate-limit remaining 7\\x1B]0;pwned\\x07\\u009B2J)", line)
    line = debuglog.line({ method = "GET", url = "http://h/x", attempt = 2, error = "bad\27[2J\r\nthing", code = 7 })
    assert.equal("hypatos: debug GET http://h/x -> error: bad\\x1B[2J\\x0D\\x0Athing (curl 7) (attempt 2)", line)
  end)
end)
