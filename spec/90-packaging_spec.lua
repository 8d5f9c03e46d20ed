-- The rockspec builds and installs offline, and the installed module works.
local helpers = require "spec.helpers"

describe("rockspec", function()
  it("builds and installs with luarocks make --deps-mode=none", function()
    local dir, rm = helpers.tmpdir()
    local p = io.popen(("luarocks --lua-version=5.4 --tree=%s make --deps-mode=none " ..
      "rockspec/hypatos-scm-1.rockspec 2>&1"):format(dir))
    local out = p:read("a")
    local built = p:close()
    assert.is_true(built, out)
    local check = ("LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' LUA_CPATH='%s/lib/lua/5.4/?.so;;' " ..
      "lua5.4 -e 'local h = require \"hypatos\"; io.write(h.VERSION, \" \", package.searchpath(\"hypatos.core\", package.cpath))' 2>&1")
      :format(dir, dir, dir)
    p = io.popen(check)
    out = p:read("a")
    local ran = p:close()
    rm()
    assert.is_true(ran, out)
    assert.matches("^%d+%.%d+%.%d+ " .. dir:gsub("%p", "%%%0") .. "/lib/lua/5%.4/hypatos/core%.so$", out)
  end)
end)
