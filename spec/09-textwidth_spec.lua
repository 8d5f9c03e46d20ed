-- hypatos.textwidth: terminal columns of text (issue 18: `make demo` and `--format table`
-- shifted columns after `Jürgen`, `Zoë`); the same on LuaJIT (the examples run there).
local tw = require "hypatos.textwidth"

describe("textwidth.width", function()
  it("counts characters, not bytes", function()
    assert.equal(0, tw.width(""))
    assert.equal(14, tw.width("Jürgen Fischer"))
    assert.equal(3, tw.width("Zoë"))
    assert.equal(1, tw.width("€"))
    assert.equal(4, tw.width("Ωλίγ"))
  end)

  it("counts East Asian wide characters and emoji as two columns", function()
    assert.equal(8, tw.width("山田太郎"))
    assert.equal(6, tw.width("請求書"))
    assert.equal(4, tw.width("ｱｲ") + tw.width("カ")) -- halfwidth katakana: 1 each; katakana: 2
    assert.equal(10, tw.width("김민준 Kim"))
    assert.equal(4, tw.width("ＡＢ"))              -- fullwidth forms
    assert.equal(2, tw.width("😀"))
  end)

  it("gives combining marks, zero-width characters and controls no width", function()
    assert.equal(3, tw.width("Zoe\204\136"))          -- e + U+0308 COMBINING DIAERESIS
    assert.equal(1, tw.width("e\204\129\204\163"))     -- two marks on one base
    assert.equal(2, tw.width("a\226\128\139b"))        -- U+200B ZERO WIDTH SPACE
    assert.equal(1, tw.width("\226\157\164\239\184\143")) -- U+2764 + VARIATION SELECTOR-16: 1 + 0
    assert.equal(2, tw.width("a\27b"))
  end)

  it("counts a byte that is not UTF-8 as one column", function()
    assert.equal(4, tw.width("caf\233"))
    assert.equal(3, tw.width("\255\254a"))
  end)
end)

describe("textwidth.pad and cut", function()
  it("pads to a number of columns", function()
    assert.equal("Jürgen    |", tw.pad("Jürgen", 10) .. "|")
    assert.equal("山田太郎  |", tw.pad("山田太郎", 10) .. "|")
    assert.equal("Zoe\204\136       |", tw.pad("Zoe\204\136", 10) .. "|")
    assert.equal("longer than", tw.pad("longer than", 4))
  end)

  it("cuts at the end, or at the start for a path, with …", function()
    assert.equal("short", tw.cut("short", 10))
    assert.equal("abcdefghi…", tw.cut("abcdefghijklmnop", 10))
    assert.equal("…hijklmnop", tw.cut("abcdefghijklmnop", 10, "left"))
    assert.equal("山田太郎…", tw.cut("山田太郎山田太郎", 10))  -- 8 + 1: a wide character is not split
    assert.equal(9, tw.width(tw.cut("山田太郎山田太郎", 10)))
    assert.equal("…/dir/a-file-name.pdf", tw.cut("/home/someone/dir/a-file-name.pdf", 21, "left"))
    assert.equal("Zoe\204\136…", tw.cut("Zoe\204\136 Tanaka", 4)) -- the mark stays with its e
    assert.equal("…b\204\136c", tw.cut("xab\204\136c", 3, "left"))
    assert.equal("…c", tw.cut("xab\204\136c", 2, "left"))      -- no mark without its b
  end)

  it("runs on LuaJIT too (no utf8 library)", function()
    local p = io.popen("luajit -e 'package.path = \"lua/?.lua;\" .. package.path; "
      .. "local tw = require \"hypatos.textwidth\"; "
      .. "io.write(tw.width(\"J\\195\\188rgen \\229\\177\\177\\231\\148\\176\"), \" \", "
      .. "tw.cut(\"abcdef\", 4, \"left\"))' 2>&1")
    local out = p:read("a")
    p:close()
    assert.equal("11 …def", out)
  end)
end)
