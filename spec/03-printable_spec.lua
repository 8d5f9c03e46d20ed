-- Text from a server made safe for terminals and spreadsheets (issue 16.3, 16.4):
-- hypatos.printable.escape, the cells hypatos.csv writes (formulas neutralised, controls
-- escaped, {raw = true}), and the lines of hypatos.debuglog. The `hypatos` command's own
-- output is checked end to end in spec/80.
local printable = require "hypatos.printable"
local csv = require "hypatos.csv"
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
      local safe = require("hypatos.csv").safe
      for _, s in ipairs({ "J\195\188rgen \226\130\172", "\27]0;x\7\194\155\127", "caf\233\192\175\226\130",
        "\t\r\n", "=1+1", "-12.5", "-1e+300", "@x", "\244\144\128\128\240\159\152\128" }) do
        io.write(escape(s), "|", escape(s, "\t\r\n"), "|", safe(s), "\n")
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

describe("csv cells", function()
  it("neutralise a leading =, +, -, @, TAB or CR with a ' (OWASP)", function()
    assert.equal("'=HYPERLINK(\"http://evil.example\",\"x\")", csv.safe('=HYPERLINK("http://evil.example","x")'))
    assert.equal("'+1+cmd|' /C calc'!A0", csv.safe("+1+cmd|' /C calc'!A0"))
    assert.equal("'-2+3+cmd|' /C calc'!A0", csv.safe("-2+3+cmd|' /C calc'!A0"))
    assert.equal("'@SUM(A1:A9)", csv.safe("@SUM(A1:A9)"))
    assert.equal("'\t=1", csv.safe("\t=1"))
    assert.equal("'\r=1", csv.safe("\r=1"))
    assert.equal("'+49 30 1234567", csv.safe("+49 30 1234567"))
    assert.equal("'-", csv.safe("-"))
    assert.equal("'=", csv.safe("="))
    -- a formula sign elsewhere is harmless
    for _, s in ipairs({ "", "a=b", " =1", "1+1", "x@example.com", "'quoted", "\n=1" }) do
      assert.equal(s, csv.safe(s))
    end
  end)

  it("leave plain numbers alone, from a number or a string", function()
    for _, s in ipairs({ "-12.5", "-12.50", "+12", "-0", "-.5", "-1.234,56", "-1,5", "-1e+300", "+1E5", "-1.5e-07",
      "12.5", "0" }) do
      assert.equal(s, csv.safe(s))
    end
    assert.equal("-12.5", csv.field(csv.cell(-12.5)))
    assert.equal("-1e+300", csv.field(csv.cell(-1e300)))
    for _, s in ipairs({ "-12.5)", "-1e5+1", "-1-1", "-e5", "--1", "-1 ", "-0x10", "-inf", "-nan", "-1e", "+-1" }) do
      assert.equal("'" .. s, csv.safe(s))
    end
  end)

  it("escape controls but keep TAB, CR and LF inside the cell (quoted)", function()
    assert.equal("\\x1B]0;pwned\\x07 \\u009B2J \\x7F caf\\xE9", csv.safe("\27]0;pwned\7 \194\1552J \127 caf\233"))
    assert.equal('"Hauptstr. 1\r\nBerlin"', csv.field("Hauptstr. 1\r\nBerlin"))
    assert.equal("a\tb", csv.field("a\tb"))
    assert.equal('"\'=1,2"', csv.field("=1,2"))
    assert.equal('"\'=A1&""x"""', csv.field('=A1&"x"'))
    assert.equal("J\195\188rgen", csv.field("J\195\188rgen"))
  end)

  it("line: every cell, header too; {raw = true} writes them as given", function()
    local header = { "id", "=cmd", "\27[31mname" }
    local row = { id = "-1+1", ["=cmd"] = "@x", ["\27[31mname"] = "a\r\nb" }
    assert.equal("id,'=cmd,\\x1B[31mname\r\n", csv.line(header))
    assert.equal("'-1+1,'@x,\"a\r\nb\"\r\n", csv.line(row, header))
    assert.equal("id,=cmd,\27[31mname\r\n", csv.line(header, nil, { raw = true }))
    assert.equal("-1+1,@x,\"a\r\nb\"\r\n", csv.line(row, header, { raw = true }))
    assert.equal("'=1", csv.field("=1", {}))
    assert.equal("=1", csv.field("=1", { raw = true }))
  end)

  it("read back with their ' (parse does not undo it)", function()
    local text = csv.line({ "=1+1", "-5" })
    assert.same({ { "'=1+1", "-5", line = 1 } }, csv.parse(text))
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
