-- The LuaJIT build (OpenResty's interpreter) loads and makes a call.
local helpers = require "spec.helpers"

describe("LuaJIT build", function()
  local srv
  lazy_setup(function() srv = helpers.start_server() end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("loads in luajit and lists companies from the local server", function()
    local script = [[
      local hypatos = require "hypatos"
      local c = hypatos.new{ client_id = os.getenv("ID"), client_secret = os.getenv("SECRET"),
                             base_url = os.getenv("URL") }
      local page, meta = c.companies:list()
      assert(page, tostring(meta))
      local v = hypatos.json.decode('{"n": 3, "a": []}')
      io.write(jit and jit.version or "no jit", "|", #page.data, "|", page.totalCount, "|",
        hypatos.json.encode(v), "|", tostring(c):match("^hypatos.Client"), "\n")
      c:close()
    ]]
    local dir, rm = helpers.tmpdir()
    helpers.write(dir .. "/smoke.lua", script)
    local cmd = ("ID=%s SECRET=%s URL=%s LUA_PATH='lua/?.lua;lua/?/init.lua;;' " ..
      "LUA_CPATH='build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;' luajit %s/smoke.lua 2>&1")
      :format(srv.client_id, srv.client_secret, srv.url, dir)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    rm()
    assert.is_true(ok, out)
    assert.matches("^LuaJIT 2%.1[^|]*|3|3|{\"a\":%[%],\"n\":3}|hypatos.Client\n$", out)
  end)

  it("runs client:map with the libcurl multi driver", function()
    local script = [[
      local hypatos = require "hypatos"
      local c = hypatos.new{ client_id = os.getenv("ID"), client_secret = os.getenv("SECRET"),
                             base_url = os.getenv("URL") }
      local ids = {}
      for u in c.users:each() do ids[#ids + 1] = u.id end
      local results, errors = c:map(ids, function(id) return c.users:get(id) end, { concurrency = 6 })
      local ok = 0
      for i = 1, results.n do if results[i] and results[i].id == ids[i] then ok = ok + 1 end end
      io.write(ok, "/", results.n, "/", c:stats().token_requests, "\n")
      c:close()
    ]]
    local dir, rm = helpers.tmpdir()
    helpers.write(dir .. "/map.lua", script)
    local cmd = ("ID=%s SECRET=%s URL=%s LUA_PATH='lua/?.lua;lua/?/init.lua;;' " ..
      "LUA_CPATH='build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;' luajit %s/map.lua 2>&1")
      :format(srv.client_id, srv.client_secret, srv.url, dir)
    local p = io.popen(cmd)
    local out = p:read("a")
    local ok = p:close()
    rm()
    assert.is_true(ok, out)
    assert.equal("57/57/1\n", out)
  end)
end)
