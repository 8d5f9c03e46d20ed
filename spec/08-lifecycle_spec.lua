-- Client and call lifecycle: close, use after close, <close>, garbage collection.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

describe("client lifecycle", function()
  it("closes idempotently and raises on use after close", function()
    local c = helpers.client()
    c:close()
    c:close()
    assert.equal("hypatos.Client(closed)", tostring(c))
    assert.has_error(function() c:request("GET", "/u") end, "hypatos.Client is closed")
    assert.has_error(function() c:token() end, "hypatos.Client is closed")
    assert.has_error(function() c:rate_limit() end, "hypatos.Client is closed")
    assert.has_error(function() c:prepare("GET", "/u") end, "hypatos.Client is closed")
    assert.has_error(function() c.users:get("x") end, "hypatos.Client is closed")
  end)

  it("closes at the end of a <close> scope", function()
    local chunk = assert(load([[
      local helpers = ...
      local kept
      do
        local c <close> = helpers.client()
        kept = c
      end
      return kept
    ]]))
    local c = chunk(helpers)
    assert.equal("hypatos.Client(closed)", tostring(c))
  end)

  it("is collected, and its calls too", function()
    local weak = setmetatable({}, { __mode = "v" })
    do
      local c = helpers.client()
      weak.client = c
      weak.call = c:prepare("GET", "/u")
      weak.users = c.users
    end
    collectgarbage()
    collectgarbage()
    assert.is_nil(weak.client)
    assert.is_nil(weak.call)
    assert.is_nil(weak.users)
  end)

  it("closes calls idempotently", function()
    local c = helpers.client()
    local call = c:prepare("GET", "/u")
    call:close()
    call:close()
    assert.has_error(function() call:step(1) end, "hypatos.Call is closed")
  end)

  it("refuses a call step after the call finished", function()
    local c = helpers.client()
    local call = c:prepare("GET", "/u")
    call:step(1000)
    call:step(1000, helpers.token_response())
    local act = call:step(1000, helpers.json(200, {}))
    assert.equal("done", act.type)
    assert.has_error(function() call:step(1000) end, "hypatos: the call is finished")
  end)

  it("does not allow closing a client from inside one of its calls", function()
    local c
    c = helpers.server_client and hypatos.new(helpers.opts({ base_url = "http://127.0.0.1:9/v2",
      max_retries = 0, on_request = function() c:close() end }))
    local ok, err = pcall(c.request, c, "GET", "/u")
    assert.is_false(ok)
    assert.matches("cannot be closed while one of its calls runs", err)
    assert.equal("hypatos.Client(http://127.0.0.1:9/v2, client_id=id)", tostring(c))
  end)

  it("does not allow closing a client from a hook or its token cache while a prepared call steps (issue 7.1)",
    function()
      for _, where in ipairs({ "on_request", "on_response", "token_cache" }) do
        local c, refused
        local function try_close()
          local ok, err = pcall(c.close, c)
          if not ok then refused = err end
        end
        local extra = { max_retries = 0 }
        if where == "token_cache" then
          extra.token_cache = { get = function() try_close() end, set = function() end }
        else
          extra[where] = try_close
        end
        c = helpers.client(extra)
        local rec = helpers.call(c, "GET", "/u", nil, { helpers.token_response(), helpers.json(200, { ok = true }) })
        assert.equal("done", rec.result.type, where)
        assert.matches("cannot be closed while one of its calls runs", refused, 1, true)
        assert.equal("done", helpers.call(c, "GET", "/u", nil, { helpers.json(200, {}) }).result.type)
        c:close() -- between steps it closes
        assert.has_error(function() c:prepare("GET", "/u") end, "hypatos.Client is closed")
      end
    end)

  it("keeps working after a hook raised", function()
    local fail = true
    local c = hypatos.new(helpers.opts({ base_url = "http://127.0.0.1:9/v2", max_retries = 0,
      on_request = function() if fail then error("boom") end end }))
    assert.has_error(function() c:request("GET", "/u") end)
    fail = false
    local v, err = c:request("GET", "/u")
    assert.is_nil(v)
    assert.equal("network", err.kind)
  end)
end)

describe("secrets", function()
  it("never appear in tostring of a client, a token or an error", function()
    local c = helpers.client({ client_secret = "SECRET-S" })
    local call = c:prepare("GET", "/u")
    call:step(1000)
    call:step(1000, helpers.token_response({ access_token = "SECRET-T" }))
    local act = call:step(1000, helpers.json(403, { title = "Forbidden", detail = "no", status = 403 }))
    local text = tostring(c) .. tostring(act.error)
    for k, v in pairs(act.error) do text = text .. tostring(k) .. tostring(v) end
    assert.is_nil(text:find("SECRET", 1, true))
  end)
end)

describe("core.tmpfile: a download's temporary file (issue 16 §8)", function()
  local core = require "hypatos.core"
  local function mode(path)
    local p = io.popen("stat -c %a " .. path .. " 2>/dev/null")
    local m = p:read("l")
    p:close()
    return m
  end
  local function umask()
    local p = io.popen("sh -c umask")
    local m = tonumber(p:read("l"), 8)
    p:close()
    return m
  end

  it("writes a new file of mode 0600 beside dest; commit puts it in place with a new file's mode", function()
    local dir, cleanup = helpers.tmpdir()
    local f = assert(core.tmpfile(dir .. "/out.pdf"))
    local path = f:path()
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/out%.pdf%.part%-%w%w%w%w%w%w$", path)
    assert.equal("600", mode(path))
    assert.is_true(f:write("abc"))
    assert.is_true(f:write(""))
    assert.is_true(f:write("def"))
    assert.is_nil(helpers.read(dir .. "/out.pdf"))
    assert.is_true(f:commit())
    assert.is_nil(f:path())
    assert.equal("abcdef", helpers.read(dir .. "/out.pdf"))
    assert.is_nil(helpers.read(path))
    assert.equal(("%o"):format(0x1b6 & ~umask()), mode(dir .. "/out.pdf"))
    assert.has_error(function() f:write("x") end, "hypatos.TmpFile is closed")
    assert.has_error(function() f:commit() end, "hypatos.TmpFile is closed")
    f:abort() -- idempotent, and the committed file stays
    assert.equal("abcdef", helpers.read(dir .. "/out.pdf"))
    cleanup()
  end)

  it("takes a new random name every time, never an existing path", function()
    local dir, cleanup = helpers.tmpdir()
    local seen = {}
    for _ = 1, 20 do
      local f = assert(core.tmpfile(dir .. "/out"))
      assert.is_nil(seen[f:path()])
      seen[f:path()] = true
      f:abort()
    end
    cleanup()
  end)

  it("is removed by abort, twice, by garbage collection and at the end of a <close> scope", function()
    local dir, cleanup = helpers.tmpdir()
    local f = assert(core.tmpfile(dir .. "/a"))
    local path = f:path()
    assert.is_true(f:write("x"))
    f:abort()
    f:abort()
    assert.is_nil(helpers.read(path))
    assert.is_nil(f:path())
    f = assert(core.tmpfile(dir .. "/b"))
    path = f:path()
    f = nil -- luacheck: ignore
    collectgarbage()
    collectgarbage()
    assert.is_nil(helpers.read(path))
    local chunk = assert(load([[
      local core, dest = ...
      local f <close> = assert(core.tmpfile(dest))
      return f:path()
    ]]))
    path = chunk(core, dir .. "/c")
    assert.is_nil(helpers.read(path))
    cleanup()
  end)

  it("fails as nil, message when it cannot be created or put in place (the temporary file removed)", function()
    local dir, cleanup = helpers.tmpdir()
    local f, err = core.tmpfile(dir .. "/missing/out")
    assert.is_nil(f)
    assert.matches("^" .. dir:gsub("%p", "%%%0") .. "/missing/out%.part%-XXXXXX: No such file", err)
    assert(os.execute("mkdir " .. dir .. "/isdir && touch " .. dir .. "/isdir/x"))
    f = assert(core.tmpfile(dir .. "/isdir"))
    local path = f:path()
    assert.is_true(f:write("x"))
    local ok, cerr = f:commit()
    assert.is_nil(ok)
    assert.matches("^cannot write output file: ", cerr)
    assert.is_nil(helpers.read(path))
    assert.has_error(function() core.tmpfile("a\0b") end)
    cleanup()
  end)
end)
