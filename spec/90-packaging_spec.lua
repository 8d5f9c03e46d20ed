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

  it("installs the hypatos command, which runs from the tree with the installed modules", function()
    local srv = helpers.start_server()
    local dir, rm = helpers.tmpdir()
    finally(function() rm(); srv:stop() end)
    local function sh(cmd)
      local p = io.popen(cmd .. " 2>&1")
      local out = p:read("a")
      return p:close(), out
    end
    local ok, out = sh(("luarocks --lua-version=5.4 --tree=%s make --deps-mode=none " ..
      "rockspec/hypatos-scm-1.rockspec"):format(dir))
    assert.is_true(ok, out)
    -- from another directory, with nothing of the checkout on the paths
    local env = ("cd / && env -i PATH='%s' HYPATOS_BASE_URL='%s' HYPATOS_CLIENT_ID='%s' HYPATOS_CLIENT_SECRET='%s' ")
      :format(os.getenv("PATH"), srv.url, srv.client_id, srv.client_secret)
    ok, out = sh(env .. dir .. "/bin/hypatos --help")
    assert.is_true(ok, out)
    assert.matches("^Usage: hypatos ", out)
    ok, out = sh(env .. dir .. "/bin/hypatos users list --format jsonl")
    assert.is_true(ok, out)
    local n = 0
    for line in out:gmatch("[^\n]+") do
      assert.matches('^{.*"id":"%x+"', line)
      n = n + 1
    end
    local c = helpers.server_client(srv)
    assert.equal(c.users:list({ limit = 1 }).totalCount, n)
    -- the installed local server and hypatos.testing (no checkout on the paths)
    ok, out = sh(("cd / && env -i PATH='%s' LUA_PATH='%s/share/lua/5.4/?.lua;%s/share/lua/5.4/?/init.lua;;' "
      .. "LUA_CPATH='%s/lib/lua/5.4/?.so;;' lua5.4 -e 'local t = require \"hypatos.testing\"; "
      .. "local s = assert(t.start()); io.write(package.searchpath(\"hypatos.mock.launcher\", package.path), \" \", "
      .. "t.client(s).companies:list().data[1].name); t.stop(s)'"):format(os.getenv("PATH"), dir, dir, dir))
    assert.is_true(ok, out)
    assert.equal(dir .. "/share/lua/5.4/hypatos/mock/launcher.lua Hypatos Demo GmbH", out)
  end)

  -- luarocks --lua-version=5.1 after a 5.4 build: the Makefile keys its build
  -- directory by LUA_INCDIR, so the 5.4 object is never installed into the 5.1
  -- tree, and the module built on the 5.1 API runs in LuaJIT and in lua5.1.
  it("builds for --lua-version=5.1 after a 5.4 build; the result runs in luajit and lua5.1", function()
    local srv = helpers.start_server()
    local dir54, rm54 = helpers.tmpdir()
    local dir, rm = helpers.tmpdir()
    finally(function() rm(); rm54(); srv:stop() end)
    local function sh(cmd)
      local p = io.popen(cmd .. " 2>&1")
      local out = p:read("a")
      return p:close(), out
    end
    local ok, out = sh(("luarocks --lua-version=5.4 --tree=%s make --deps-mode=none " ..
      "rockspec/hypatos-scm-1.rockspec"):format(dir54))
    assert.is_true(ok, out)
    ok, out = sh(("luarocks --lua-version=5.1 --tree=%s make --deps-mode=none " ..
      "rockspec/hypatos-scm-1.rockspec"):format(dir))
    assert.is_true(ok, out)
    local script = dir .. "/call.lua"
    helpers.write(script, [[
      local h = require "hypatos"
      local c = h.new{}
      local n = 0
      for _ in c.users:each{ limit = 7 } do n = n + 1 end
      io.write(n, " users")
      c:close()
    ]])
    local env = ("LUA_PATH='%s/share/lua/5.1/?.lua;%s/share/lua/5.1/?/init.lua;;' " ..
      "LUA_CPATH='%s/lib/lua/5.1/?.so;;' HYPATOS_BASE_URL='%s' HYPATOS_CLIENT_ID='%s' " ..
      "HYPATOS_CLIENT_SECRET='%s' "):format(dir, dir, dir, srv.url, srv.client_id, srv.client_secret)
    for _, lua in ipairs({ "luajit", "lua5.1" }) do
      ok, out = sh(env .. lua .. " " .. script)
      assert.is_true(ok, lua .. ": " .. out)
      assert.matches("^%d+ ", out, nil, false)
      assert.is_true(tonumber(out:match("^(%d+)")) > 7, lua .. " paged through every user: " .. out)
    end
    -- luajit has no package.searchpath: the 5.1 core is the one under the 5.1 tree
    ok, out = sh(env .. "lua5.1 -e 'require \"hypatos\"; " ..
      "for p in package.cpath:gmatch(\"[^;]+\") do local f = p:gsub(\"?\", \"hypatos/core\"); " ..
      "local h = io.open(f) if h then h:close() io.write(f) break end end'")
    assert.is_true(ok, out)
    assert.equal(dir .. "/lib/lua/5.1/hypatos/core.so", out)
  end)
end)

