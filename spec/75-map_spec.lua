-- spec/75-map_spec.lua — client:map in plain Lua (libcurl multi driver) against the local
-- server: alignment of results and errors, overlap, one shared token, 429/5xx storms, the
-- no-re-send rule for uploads, waits, raising tasks, misuse, and Ctrl-C.
local helpers = require "spec.helpers"

describe("client:map", function()
  local srv, c, user_ids
  lazy_setup(function()
    srv = helpers.start_server()
    local c0 = helpers.server_client(srv)
    user_ids = {}
    for u in c0.users:each() do user_ids[#user_ids + 1] = u.id end
    c0:close()
  end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv, { backoff_base = 0.02 })
  end)
  after_each(function() c:close() end)

  local function first(n)
    local out = {}
    for i = 1, n do out[i] = user_ids[(i - 1) % #user_ids + 1] end
    return out
  end

  it("aligns results and errors with the items: a 404 at item 5 is errors[5]", function()
    local ids = first(12)
    ids[5] = "ffffffffffffffffffffffff"
    local results, errors = c:map(ids, function(id) return c.users:get(id) end, { concurrency = 4 })
    assert.equal(12, #results)
    assert.equal(12, #errors)
    assert.equal(12, results.n)
    for i = 1, 12 do
      if i == 5 then
        assert.is_nil(results[5])
        assert.equal(404, errors[5].status)
      else
        assert.equal(ids[i], results[i].id, "item " .. i)
        assert.is_nil(errors[i]) -- a success: its meta is no error
      end
    end
  end)

  it("overlaps: 40 calls with 0.1 s latency at concurrency 8 take well under 40 × 0.1 s", function()
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = 0.1, count = -1 }
    local t0 = helpers.now()
    local results = c:map(first(40), function(id) return c.users:get(id) end, { concurrency = 8 })
    local took = helpers.now() - t0
    srv:control("DELETE", "/_mock/faults")
    for i = 1, 40 do assert.is_table(results[i], "item " .. i) end
    assert.is_true(took < 2, ("40 calls took %.2f s"):format(took)) -- 5 rounds of 0.1 s, not 4 s
  end)

  -- the multi's idle connections are checked before reuse (a stray answer is never read as the
  -- next task's): only a readable idle one is dropped, never one a transfer is using
  it("keeps its connections: 300 calls at concurrency 8 on at most 8 connections, none retried", function()
    -- with some latency, answers arrive while other tasks run: a connection in use is readable
    srv:fault{ path_pattern = "^/v2/users/", kind = "delay", delay = 0.005, count = -1 }
    local results, errors = c:map(first(300), function(id)
      local u, meta = c.users:get(id)
      if not u then return nil, meta end
      return meta.attempts
    end, { concurrency = 8 })
    srv:control("DELETE", "/_mock/faults")
    for i = 1, 300 do assert.equal(1, results[i], tostring(errors[i])) end -- none went again
    local conns, n, api = {}, 0, 0
    for _, e in ipairs(srv:stats().log) do
      if e.path:find("^/v2/users/") then
        api = api + 1
        if not conns[e.connection] then conns[e.connection], n = true, n + 1 end
      end
    end
    assert.equal(300, api)
    assert.is_true(n <= 8, n .. " connections for 8 tasks")
  end)

  it("shares one token: one fetch for 16 tasks, and one refresh after a revoke", function()
    c:map(first(16), function(id) return c.users:get(id) end, { concurrency = 16 })
    assert.equal(1, srv:stats().token_requests)
    srv:revoke()
    local results = c:map(first(16), function(id) return c.users:get(id) end, { concurrency = 16 })
    for i = 1, 16 do assert.is_table(results[i], "item " .. i) end
    assert.equal(2, srv:stats().token_requests)
  end)

  it("shares a refused token fetch: 8 tasks, 1 token request, every task fails auth", function()
    local bad = helpers.server_client(srv, { client_secret = "not-the-secret" })
    local results, errors = bad:map(first(8), function(id) return bad.users:get(id) end, { concurrency = 8 })
    bad:close()
    assert.equal(1, srv:stats().token_requests)
    for i = 1, 8 do
      assert.is_nil(results[i])
      assert.equal("auth", errors[i].kind, "item " .. i)
      assert.equal(401, errors[i].status)
      assert.is_nil(tostring(errors[i]):find("not-the-secret", 1, true))
    end
  end)

  it("keeps the others waiting while the token fetch honours Retry-After: 2 token requests", function()
    srv:fault{ path_pattern = "^/v2/auth/token", kind = "status", status = 503, count = 1,
      headers = { ["Retry-After"] = "1" } }
    local asked = {}
    local hooked = helpers.server_client(srv, { on_request = function(info)
      if info.token_request then asked[#asked + 1] = helpers.now() end
    end })
    local results, errors = hooked:map(first(8), function(id) return hooked.users:get(id) end, { concurrency = 8 })
    hooked:close()
    for i = 1, 8 do assert.is_table(results[i], "item " .. i .. ": " .. tostring(errors[i])) end
    assert.equal(2, srv:stats().token_requests)
    assert.equal(2, #asked)
    assert.is_true(asked[2] - asked[1] >= 0.9, "no task asked for a token before the server's Retry-After")
  end)

  it("stays within the quota: 10 per second, 40 calls at concurrency 16, no 429", function()
    srv:configure{ quota = 10, window = 1 }
    c:token()
    local results, errors = c:map(first(40), function(id) return c.users:get(id) end, { concurrency = 16 })
    for i = 1, 40 do assert.is_table(results[i], "item " .. i .. ": " .. tostring(errors[i])) end
    local st = srv:stats()
    assert.is_nil(st.statuses["429"], "429 answers: " .. tostring(st.statuses["429"]))
    assert.equal(40, st.by_route["GET /v2/users/{id}"])
  end)

  it("rides out 429 storms and 5xx answers", function()
    srv:configure{ quota = 6, window = 1 }
    srv:fault{ { path_pattern = "^/v2/users/", kind = "status", status = 503, count = 3 } }
    local t0 = helpers.now()
    local results, errors = c:map(first(18), function(id) return c.users:get(id) end, { concurrency = 8 })
    for i = 1, 18 do assert.is_table(results[i], "item " .. i .. ": " .. tostring(errors[i])) end
    assert.is_true(helpers.now() - t0 < 10)
  end)

  it("never re-sends an upload that may have reached the server", function()
    srv:fault{ method = "POST", path = "/v2/files", kind = "close", count = 3 }
    local items = {}
    for i = 1, 8 do items[i] = "%PDF-1.4 file " .. i end
    local results, errors = c:map(items, function(data, i)
      return c.files:upload{ data = data, filename = ("f%d.pdf"):format(i) }
    end, { concurrency = 4 })
    local ok, failed = 0, 0
    for i = 1, 8 do
      if results[i] then ok = ok + 1 else
        failed = failed + 1
        assert.equal("network", errors[i].kind)
      end
    end
    assert.equal(5, ok)
    assert.equal(3, failed)
    assert.equal(8, srv:stats().by_route["POST /v2/files"]) -- each sent exactly once
  end)

  it("follows nil, err: the natural one-liner leaves errors[i] nil for every success", function()
    local ids = first(6)
    ids[4] = "ffffffffffffffffffffffff" -- unknown
    local results, errors = c:map(ids, function(id) return c.users:get(id) end)
    for i = 1, 6 do
      if i == 4 then
        assert.is_nil(results[i])
        assert.equal("http", errors[i].kind)
        assert.equal(404, errors[i].status)
      else
        assert.equal(ids[i], results[i].id)
        assert.is_nil(errors[i], "errors[" .. i .. "] holds the success's meta")
      end
    end
    -- on_done sees the same
    local seen = {}
    c:map(ids, function(id) return c.users:get(id) end, { on_done = function(i, _, err) seen[i] = err ~= nil end })
    assert.same({ false, false, false, true, false, false }, seen)
    -- false, err is a failure too; a value with a second value that is no error is a success
    local r2, e2 = c:map({ 1, 2 }, function(i) if i == 1 then return false, "no" end return "yes", "note" end)
    assert.equal(false, r2[1])
    assert.equal("no", e2[1])
    assert.equal("yes", r2[2])
    assert.is_nil(e2[2])
  end)

  it("does not burst before it has seen the quota: a token from a cache, a window nearly used", function()
    srv:configure{ quota = 10, window = 1 }
    local store = {}
    local cache = { get = function(k) return store[k] end, set = function(k, t) store[k] = t end }
    local a = helpers.server_client(srv, { token_cache = cache })
    assert(a:token())
    local t = helpers.now() -- start just after a window begins, and use 7 of its 10
    helpers.hypatos.sleep(math.floor(t) + 1.02 - t)
    for i = 1, 7 do assert(a.users:get(user_ids[i])) end
    local before = srv:stats().statuses["429"] or 0
    local b = helpers.server_client(srv, { token_cache = cache }) -- knows nothing of the quota
    local results, errors = b:map(first(30), function(id) return b.users:get(id) end, { concurrency = 16 })
    for i = 1, 30 do assert.is_table(results[i], tostring(errors[i])) end
    assert.equal(0, b:stats().token_requests)
    assert.equal(before, srv:stats().statuses["429"] or 0, "429s drawn by the new client")
    a:close()
    b:close()
  end)

  it("re-raises what a progress function raised from its task, as a blocking call does", function()
    local dir, cleanup = helpers.tmpdir()
    local path = dir .. "/big.pdf"
    helpers.write(path, "%PDF-1.4\n" .. string.rep("x", 300000))
    local boom = { reason = "the user's own error" }
    local function progress() error(boom) end
    -- blocking: the error comes out of the call itself
    local ok, raised = pcall(function() return c:request("POST", "/files", { body_file = path,
      content_type = "application/pdf", progress = progress }) end)
    assert.is_false(ok)
    assert.equal(boom, raised)
    -- client:map: the task raises that very value, errors[i] holds it
    local results, errors = c:map({ 1, 2 }, function(i)
      if i == 2 then return "fine" end
      return c:request("POST", "/files", { body_file = path, content_type = "application/pdf",
        progress = progress })
    end)
    assert.is_nil(results[1])
    assert.equal(boom, errors[1])
    assert.equal("fine", results[2])
    assert.is_nil(errors[2])
    cleanup()
  end)

  it("streams uploads from paths and downloads to paths", function()
    local dir, cleanup = helpers.tmpdir()
    local items = {}
    for i = 1, 6 do
      items[i] = ("%s/in%d.pdf"):format(dir, i)
      helpers.write(items[i], "%PDF-1.4\n" .. string.rep(("line %d\n"):format(i), 20000))
    end
    local results, errors = c:map(items, function(path, i)
      local f, err = c.files:upload{ path = path }
      if not f then return nil, err end
      local ok, derr = c.files:download(f.id, { path = ("%s/out%d.pdf"):format(dir, i) })
      if not ok then return nil, derr end
      return f.id
    end, { concurrency = 3 })
    for i = 1, 6 do
      assert.is_string(results[i], tostring(errors[i]))
      assert.equal(helpers.read(items[i]), helpers.read(("%s/out%d.pdf"):format(dir, i)))
    end
    cleanup()
  end)

  it("lets documents:wait and paging run inside tasks", function()
    local docs = assert(c.documents:list({ limit = 4 })).data
    local results = c:map(docs, function(d)
      local n = 0
      for _ in c.users:each({ limit = 20 }) do n = n + 1 end
      local doc, err = c.documents:wait(d.id, { timeout = 5, interval = 0.05 })
      if not doc then return nil, err end
      return doc.state .. ":" .. n
    end)
    for i = 1, #docs do assert.equal(docs[i].state .. ":57", results[i]) end
  end)

  it("collects what a task raises, calls on_done per item, and runs one at a time with concurrency 1", function()
    local seen, order, in_flight, most = {}, {}, 0, 0
    local results, errors = c:map({ 1, 2, 3, 4 }, function(x)
      in_flight = in_flight + 1
      most = math.max(most, in_flight)
      local u = c.users:get(user_ids[x])
      in_flight = in_flight - 1
      if x == 3 then error("boom " .. x, 0) end
      return u.id
    end, { concurrency = 1, on_done = function(i, r, e, done, total)
      order[#order + 1] = i
      seen[i] = { r, e, done, total }
    end })
    assert.equal(1, most)
    assert.same({ 1, 2, 3, 4 }, order)
    assert.equal("boom 3", errors[3])
    assert.is_nil(results[3])
    assert.equal(user_ids[4], results[4])
    assert.same({ 4, 4 }, { seen[4][3], seen[4][4] })
  end)

  it("runs its items on at most `concurrency` coroutines, one item after another (Lua 5.2+, LuaJIT)", function()
    local cos, n = {}, 0
    local results = c:map(first(40), function(id)
      local co = coroutine.running()
      if not cos[co] then cos[co], n = true, n + 1 end
      return c.users:get(id)
    end, { concurrency = 4 })
    for i = 1, 40 do assert.equal(first(40)[i], results[i].id) end
    assert.is_true(n <= 4, n .. " coroutines for 40 items at concurrency 4")
  end)

  it("takes a task that yields by itself as that item's error and goes on with the others", function()
    local results, errors = c:map(first(6), function(id, i)
      if i == 2 then coroutine.yield("mine") end
      return c.users:get(id)
    end, { concurrency = 2 })
    assert.equal("hypatos: client:map: fn yielded a value of its own (coroutine.yield inside a task)", errors[2])
    for i = 1, 6 do
      if i ~= 2 then assert.equal(first(6)[i], results[i].id, "item " .. i) end
    end
  end)

  it("runs a resource call of a task straight on the multi: multi:run, client:prepare_op", function()
    local core = require "hypatos.core"
    local op = core.op("GET", "/users/{id}", true)
    local m = core.multi()
    local function drive(call) -- the first attempt is the token request's
      local what, a, b = m:run(call, core.now())
      while what == "send" do
        assert.has_error(function() m:run(call, core.now()) end, "hypatos.Call is being sent by a hypatos.Multi")
        local ended
        repeat ended = m:wait(1) until #ended > 0
        assert.equal(call, ended[1])
        what, a, b = m:run(call, core.now())
      end
      call:close()
      return what, a, b
    end
    local what, user, meta = drive(assert(c:prepare_op(op, user_ids[1])))
    assert.same({ "done", user_ids[1], 200 }, { what, user.id, meta.status })
    assert.equal(1, c:stats().token_requests)
    local failed, err = drive(assert(c:prepare_op(op, "ffffffffffffffffffffffff")))
    assert.same({ "fail", 404 }, { failed, err.status })
    -- the general path: call options, or arguments of other types, give nothing at all
    assert.equal(0, select("#", c:prepare_op(op, user_ids[1], { timeout = 5 })))
    assert.equal(0, select("#", c:prepare_op(op, {})))
    -- bad data: nil, err
    local none, bad = c:prepare_op(op, "")
    assert.is_nil(none)
    assert.equal("invalid", bad.kind)
    m:close()
  end)

  -- libcurl can hand the connection of a transfer that ends to one added before that perform,
  -- within the perform, before the end is read: the multi must not take it for idle then (its
  -- check before reuse would cut the transfer that uses it)
  it("keeps a connection handed over within one perform (multi): A, B and C on one connection", function()
    local core = require "hypatos.core"
    local socket = require "socket"
    local op = core.op("GET", "/users/{id}", true)
    local a_id, b_id, c_id = user_ids[1], user_ids[2], user_ids[3]
    assert(c:token())
    local m = core.multi()
    local function start(id)
      local call = assert(c:prepare_op(op, id))
      assert.equal("send", (m:run(call, core.now())))
      return call
    end
    local function finish(call)
      local what, v, meta = m:run(call, core.now())
      assert.equal("done", what, tostring(v))
      call:close()
      return v, meta
    end
    local ended = {}
    local function wait_for(...) -- until these calls' attempts ended (at most 20 s)
      local t0 = core.now()
      for _, call in ipairs({ ... }) do
        while not ended[call] do
          assert(core.now() - t0 < 20, "the multi's transfers did not end")
          for _, x in ipairs(m:wait(0.1)) do ended[x] = true end
        end
      end
    end
    -- margins wide enough for the suite under valgrind (the server is not slowed down)
    srv:fault{ path_pattern = "^/v2/users/" .. a_id .. "$", kind = "delay", delay = 0.3 }
    local A = start(a_id)
    for _, x in ipairs(m:wait(0.2)) do ended[x] = true end -- A's request goes out; the answer in 0.3 s
    socket.sleep(0.5)           -- …and waits, unread
    local B = start(b_id)       -- B is added; the next perform ends A and starts B
    for _, x in ipairs(m:wait(0)) do ended[x] = true end
    assert.is_true(ended[A], "A's answer was read with B's start")
    finish(A)
    socket.sleep(0.1)           -- B's answer arrives: B's connection is readable
    local C = start(c_id)       -- the check before C takes a connection
    wait_for(B, C)
    local _, bmeta = finish(B)
    local _, cmeta = finish(C)
    m:close()
    assert.equal(1, bmeta.attempts)
    assert.equal(1, cmeta.attempts)
    local conn = {}
    for _, e in ipairs(srv:stats().log) do
      if e.path:find("^/v2/users/") then conn[#conn + 1] = e.connection end
    end
    assert.equal(3, #conn)
    assert.same({ conn[1], conn[1] }, { conn[2], conn[3] }) -- one connection, never cut
  end)

  it("raises for misuse", function()
    assert.has_error(function() c:map("x", print) end, "hypatos: client:map items must be an array (table), got string")
    assert.has_error(function() c:map({}, 5) end, "hypatos: client:map fn must be a function, got number")
    assert.has_error(function() c:map({}, print, { concurency = 2 }) end,
      'hypatos: client:map: unknown option "concurency" (allowed: concurrency, on_done)')
    assert.has_error(function() c:map({}, print, { concurrency = 0 }) end,
      'hypatos: client:map: option "concurrency" must be an integer from 1 to 1000, got 0')
    local r, e = c:map({}, print)
    assert.equal(0, #r)
    assert.equal(0, #e)
  end)

  it("re-raises an error of on_done, stops the other transfers and leaves no file behind", function()
    local dir, cleanup = helpers.tmpdir()
    local ids = {}
    for d in c.documents:each({ limit = 8 }) do ids[#ids + 1] = d.fileId if #ids == 8 then break end end
    -- the first download answers at once, the others only after 3 s: on_done raises after the first
    srv:fault{ path_pattern = "^/v2/files/", kind = "delay", delay = 0, count = 1 }
    srv:fault{ path_pattern = "^/v2/files/", kind = "delay", delay = 3, count = -1 }
    local t0 = helpers.now()
    local ok, err = pcall(c.map, c, ids, function(id, i)
      return c.files:download(id, { path = ("%s/out%d"):format(dir, i) })
    end, { concurrency = 8, on_done = function() error("progress broke", 0) end })
    local took = helpers.now() - t0
    srv:control("DELETE", "/_mock/faults")
    local left = io.popen("ls -A " .. dir):read("a")
    local after = c.users:get(user_ids[1]) -- the client is still usable
    cleanup()
    assert.is_false(ok)
    assert.matches("progress broke", tostring(err))
    assert.is_true(took < 2, ("stopping took %.2f s"):format(took))
    assert.is_nil(left:find("out[2-8]"), "downloads of stopped tasks left: " .. left)
    assert.is_nil(left:find("%.part") or left:find("%.tmp"), "temporary files left: " .. left)
    assert.is_table(after)
  end)

  --- Runs a script in lua5.4 in the background, sends it SIGINT `settle` seconds after its
  -- output shows `marker`, and waits up to 5 s for it to end (then kills it). Returns whether
  -- it ended, the seconds it took after the signal, and its output.
  local function interrupt(script, log, marker, settle)
    local cmd = ("cd %q && " .. helpers.lua_env_words() .. " "
      .. "lua5.4 %q > %q 2>&1 & echo $!"):format(helpers.root or ".", script, log)
    local pid = assert(tonumber(io.popen(cmd):read("l")))
    local t0 = helpers.now()
    while not (helpers.read(log) or ""):find(marker) and helpers.now() - t0 < 10 do
      os.execute("sleep 0.05")
    end
    os.execute("sleep " .. settle)
    os.execute("kill -INT " .. pid)
    local t1 = helpers.now()
    while helpers.alive(pid) and helpers.now() - t1 < 5 do os.execute("sleep 0.05") end
    local gone = not helpers.alive(pid)
    if not gone then os.execute("kill -KILL " .. pid) end
    return gone, helpers.now() - t1, helpers.read(log) or ""
  end

  it("raises hypatos: interrupted on Ctrl-C in its own Lua code too (here on_done's)", function()
    local dir, cleanup = helpers.tmpdir()
    local script = dir .. "/run.lua"
    helpers.write(script, ([[
      local hypatos = require "hypatos"
      local c = hypatos.new{ client_id = %q, client_secret = %q, base_url = %q }
      local ok, err = pcall(c.map, c, { 1, 2 }, function() return c.companies:list() end, {
        on_done = function()
          io.stdout:write("busy\n") io.stdout:flush()
          local t = os.clock()
          while os.clock() - t < 10 do end -- Lua code of the main thread: the interpreter's hook fires here
        end })
      io.stdout:write("caught ", tostring(ok), " ", tostring(err), "\n")
    ]]):format(srv.client_id, srv.client_secret, srv.url))
    local gone, _, log = interrupt(script, dir .. "/log", "busy", 0.3)
    cleanup()
    assert.is_true(gone, "the process did not stop on SIGINT")
    assert.matches("\ncaught false hypatos: interrupted\n$", log)
  end)

  it("stops every transfer on Ctrl-C, raises hypatos: interrupted and leaves no partial download", function()
    local dir, cleanup = helpers.tmpdir()
    srv:fault{ path_pattern = "^/v2/files/", kind = "delay", delay = 5, count = -1 }
    local script = dir .. "/run.lua"
    helpers.write(script, ([[
      local hypatos = require "hypatos"
      local c = hypatos.new{ client_id = %q, client_secret = %q, base_url = %q }
      local ids = {}
      for d in c.documents:each({ limit = 8 }) do ids[#ids + 1] = d.fileId if #ids == 8 then break end end
      io.stdout:write("started\n") io.stdout:flush()
      local ok, err = pcall(c.map, c, ids, function(id, i) return c.files:download(id, { path = %q .. "/out" .. i }) end,
        { concurrency = 8 })
      io.stdout:write("caught ", tostring(ok), " ", tostring(err), "\n")
    ]]):format(srv.client_id, srv.client_secret, srv.url, dir))
    local gone, took, log = interrupt(script, dir .. "/log", "started", 0.5)
    srv:control("DELETE", "/_mock/faults")
    local left = io.popen("ls " .. dir):read("a")
    cleanup()
    assert.is_true(gone, "the process did not stop on SIGINT")
    assert.is_true(took < 2, "stopping took too long")
    assert.matches("\ncaught false hypatos: interrupted\n$", log) -- an error pcall catches
    assert.is_nil(left:find("out"), "partial downloads left: " .. left)
  end)
end)
