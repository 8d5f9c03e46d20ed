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
      "lua5.4 -e 'local h = require \"hypatos\"; require \"hypatos.cosocket\"; io.write(h.VERSION, \" \", package.searchpath(\"hypatos.core\", package.cpath))' 2>&1")
      :format(dir, dir, dir)
    p = io.popen(check)
    out = p:read("a")
    local ran = p:close()
    -- every module of lua/hypatos/ is installed (internal ones too: cosocket, loaded above, needs http1)
    local missing = {}
    p = io.popen("ls lua/hypatos/*.lua")
    for path in p:lines() do
      local f = io.open(dir .. "/share/lua/5.4/hypatos/" .. path:match("[^/]+$"))
      if f then f:close() else missing[#missing + 1] = path end
    end
    p:close()
    rm()
    assert.is_true(ran, out)
    assert.matches("^%d+%.%d+%.%d+ " .. dir:gsub("%p", "%%%0") .. "/lib/lua/5%.4/hypatos/core%.so$", out)
    assert.same({}, missing)
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
      local n, ids = 0, {}
      for u in c.users:each{ limit = 7 } do n = n + 1; ids[n] = u.id end
      -- client:map: one coroutine per item on 5.1 (pcall cannot yield there), workers on LuaJIT
      ids[3] = "ffffffffffffffffffffffff"
      local results, errors = c:map(ids, function(id, i)
        if i == 5 then error("task 5 raised", 0) end
        return c.users:get(id)
      end, { concurrency = 3 })
      for i = 1, n do
        local want = i == 3 and "404" or i == 5 and "task 5 raised" or ids[i]
        local got = results[i] and results[i].id or type(errors[i]) == "table" and tostring(errors[i].status)
          or errors[i]
        if got ~= want then error(("map item %d: %s, not %s"):format(i, tostring(got), want)) end
      end
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

  local root = assert(io.popen("pwd"):read("*l"))

  --- Runs a shell command; returns whether it exited 0, and its output (stdout and stderr).
  local function sh(cmd)
    local p = io.popen(cmd .. " 2>&1")
    local out = p:read("a")
    return p:close(), out
  end

  --- Quotes a string for /bin/sh.
  local function q(s)
    return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
  end

  --- Installs the rock into tree with luarocks --lua-version=version.
  local function install(version, tree)
    local ok, out = sh(("luarocks --lua-version=%s --tree=%s make --deps-mode=none " ..
      "rockspec/hypatos-scm-1.rockspec"):format(version, q(tree)))
    assert.is_true(ok, out)
  end

  --- A copy of an installed command's wrapper that runs it with another interpreter (the
  -- wrapper names the tree's Lua: for a 5.1 tree, lua5.1; LuaJIT runs the same modules).
  local function rewrap(wrapper, from, to, copy)
    local text = assert(helpers.read(wrapper))
    local n
    text, n = text:gsub(from:gsub("%p", "%%%0"), to)
    assert.equal(1, n, text)
    helpers.write(copy, text)
    assert.is_true((sh("chmod +x " .. q(copy))))
  end

  --- Runs an installed command from / with nothing but PATH, the server's three variables
  -- and `extra` (shell words) in its environment; returns ok, output.
  local function command(srv, cmd, args, extra)
    return sh(("cd / && env -i PATH=%s HYPATOS_BASE_URL=%s HYPATOS_CLIENT_ID=%s HYPATOS_CLIENT_SECRET=%s %s %s %s")
      :format(q(os.getenv("PATH")), q(srv.url), q(srv.client_id), q(srv.client_secret), extra or "", q(cmd), args))
  end

  --- `--help`, `users list` (every user), `files upload` of two files (client:map) and the
  -- token file kept between runs, through the installed command `cmd`.
  local function check_command(srv, cmd, home, label)
    local ok, out = command(srv, cmd, "--help")
    assert.is_true(ok, label .. ": " .. out)
    assert.matches("^Usage: hypatos ", out, nil, false, label)
    local c = helpers.server_client(srv)
    local total = c.users:list({ limit = 1 }).totalCount
    local before = srv:stats().token_requests
    for _ = 1, 2 do
      ok, out = command(srv, cmd, "users list --format jsonl", "HOME=" .. q(home))
      assert.is_true(ok, label .. ": " .. out)
      local n = 0
      for line in out:gmatch("[^\n]+") do
        assert.matches('^{.*"id":"%x+"', line, nil, false, label)
        n = n + 1
      end
      assert.equal(total, n, label)
    end
    assert.equal(before + 1, srv:stats().token_requests, label .. ": two runs, one token (the token file)")
    local pdf = root .. "/examples/data/pdfs/invoice-2025-0412.pdf"
    ok, out = command(srv, cmd, "files upload --format jsonl " .. q(pdf) .. " " .. q(pdf))
    assert.is_true(ok, label .. ": " .. out)
    local rows = 0
    for line in out:gmatch("[^\n]+") do
      assert.matches('"fileId":"[%x%-]+"', line, nil, false, label .. ": " .. out)
      rows = rows + 1
    end
    assert.equal(2, rows, label .. ": " .. out)
    c:close()
  end

  -- The rock claims Lua 5.1 (and so LuaJIT): the command it installs there must run there.
  it("installs a command that runs on Lua 5.1 and LuaJIT (a fresh 5.1 tree), and the local server with it", function()
    local srv = helpers.start_server()
    local dir, rm = helpers.tmpdir()
    finally(function() rm(); srv:stop() end)
    install("5.1", dir)
    rewrap(dir .. "/bin/hypatos", "/usr/bin/lua5.1", "/usr/bin/luajit", dir .. "/hypatos-luajit")
    assert.is_true((sh("mkdir " .. q(dir .. "/home51") .. " " .. q(dir .. "/homejit"))))
    check_command(srv, dir .. "/bin/hypatos", dir .. "/home51", "lua5.1")
    check_command(srv, dir .. "/hypatos-luajit", dir .. "/homejit", "luajit")
    assert.truthy(helpers.read(dir .. "/bin/hypatos-5.1"), "installed under its version's name too")
    -- hypatos.testing and the launcher it installs, in lua5.1 and luajit (no checkout on the paths)
    for _, lua in ipairs({ "lua5.1", "luajit" }) do
      local ok, out = sh(("cd / && env -i PATH=%s LUA_PATH=%s LUA_CPATH=%s %s -e %s"):format(q(os.getenv("PATH")),
        q(dir .. "/share/lua/5.1/?.lua;" .. dir .. "/share/lua/5.1/?/init.lua;;"), q(dir .. "/lib/lua/5.1/?.so;;"),
        lua, q('local t = require "hypatos.testing"; local s = assert(t.start()); ' ..
          'io.write(t.client(s).companies:list().data[1].name); t.stop(s)')))
      assert.is_true(ok, lua .. ": " .. out)
      assert.equal("Hypatos Demo GmbH", out, lua)
    end
  end)

  -- luarocks keeps one bin/ per tree: the last install owns `hypatos` (the one before
  -- becomes luarocks' backup `hypatos~`); hypatos-5.4 and hypatos-5.1 always name their own.
  it("5.1 after 5.4 into one tree: every command works, and removing the 5.1 rock leaves the 5.4 one", function()
    local srv = helpers.start_server()
    local dir, rm = helpers.tmpdir()
    finally(function() rm(); srv:stop() end)
    install("5.4", dir)
    install("5.1", dir)
    assert.matches("/usr/bin/lua5%.1", helpers.read(dir .. "/bin/hypatos"))
    assert.is_true((sh("mkdir " .. q(dir .. "/h1") .. " " .. q(dir .. "/h2") .. " " .. q(dir .. "/h3"))))
    check_command(srv, dir .. "/bin/hypatos", dir .. "/h1", "hypatos (5.1, the last install)")
    assert.matches("/usr/bin/lua5%.4", helpers.read(dir .. "/bin/hypatos-5.4") or "(no hypatos-5.4)")
    assert.matches("/usr/bin/lua5%.1", helpers.read(dir .. "/bin/hypatos-5.1") or "(no hypatos-5.1)")
    check_command(srv, dir .. "/bin/hypatos-5.4", dir .. "/h2", "hypatos-5.4")
    check_command(srv, dir .. "/bin/hypatos-5.1", dir .. "/h3", "hypatos-5.1")
    local ok, out = sh(("luarocks --lua-version=5.1 --tree=%s remove hypatos"):format(q(dir)))
    assert.is_true(ok, out)
    assert.is_nil(helpers.read(dir .. "/bin/hypatos-5.1"))
    ok, out = command(srv, dir .. "/bin/hypatos-5.4", "companies list --format jsonl")
    assert.is_true(ok, out)
    assert.matches("Hypatos Demo GmbH", out)
  end)
end)
