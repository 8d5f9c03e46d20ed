-- core.redis: the hypatos.Redis connection (hiredis) of the shared store, against a real
-- redis-server on a loopback port (spec/fixtures/redis_server.lua).
local helpers = require "spec.helpers"
local redis_server = require "spec.fixtures.redis_server"
local socket = require "socket"
local core = require "hypatos.core"

local function elapsed(f)
  local t0 = socket.gettime()
  local a, b = f()
  return socket.gettime() - t0, a, b
end

--- The number of client connections the server has (CLIENT LIST, redis-cli's own included).
local function clients(srv)
  local n = 0
  for _ in srv:cli("CLIENT", "LIST"):gmatch("[^\n]+") do n = n + 1 end
  return n
end

describe("core.redis", function()
  local srv
  lazy_setup(function() srv = assert(redis_server.start()) end)
  lazy_teardown(function() if srv then srv:stop() end end)

  local function conn(extra)
    local o = { port = srv.port }
    for k, v in pairs(extra or {}) do o[k] = v end
    return core.redis(o)
  end

  describe("call", function()
    it("runs PING, SET/GET, INCR and gives Lua values", function()
      local c = conn()
      local v, err = c:call("PING")
      assert.is_nil(err)
      assert.equal("PONG", v)
      v, err = c:call("SET", "spec:k", "hello")
      assert.is_nil(err)
      assert.equal("OK", v)
      assert.equal("hello", c:call("GET", "spec:k"))
      c:call("DEL", "spec:n")
      v = c:call("INCR", "spec:n")
      assert.equal(1, v)
      assert.equal("integer", math.type(v))
      assert.equal(42, c:call("INCRBY", "spec:n", 41))
      c:close()
    end)

    it("gives core.null (hypatos.null) for a nil reply", function()
      local c = conn()
      c:call("DEL", "spec:missing")
      local v, err = c:call("GET", "spec:missing")
      assert.is_nil(err)
      assert.equal(core.null, v)
      assert.equal(require("hypatos").null, v)
      c:close()
    end)

    it("sends numbers exactly and strings as bytes", function()
      local c = conn()
      c:call("SET", "spec:i", 9007199254740993) -- 2^53 + 1: an integer, not a float
      assert.equal("9007199254740993", c:call("GET", "spec:i"))
      c:call("SET", "spec:f", 0.1)
      assert.equal("0.10000000000000001", c:call("GET", "spec:f"))
      c:call("SET", "spec:f", 3.0)
      assert.equal("3", c:call("GET", "spec:f"))
      c:call("SET", "spec:f", -1.5e300)
      assert.equal("-1.5000000000000001e+300", c:call("GET", "spec:f"))
      c:call("SET", "spec:b", "a\0b\r\n\255")
      assert.equal("a\0b\r\n\255", c:call("GET", "spec:b"))
      c:call("SET", "spec:e", "")
      assert.equal("", c:call("GET", "spec:e"))
      local big = ("x"):rep(1024 * 1024)
      assert.equal("OK", c:call("SET", "spec:big", big))
      assert.equal(big, c:call("GET", "spec:big"))
      c:close()
    end)

    it("gives arrays, with core.null for nil elements", function()
      local c = conn()
      c:call("DEL", "spec:list", "spec:none")
      assert.equal(3, c:call("RPUSH", "spec:list", "a", "b", "c"))
      assert.same({ "a", "b", "c" }, c:call("LRANGE", "spec:list", 0, -1))
      assert.same({}, c:call("LRANGE", "spec:none", 0, -1))
      c:call("SET", "spec:k", "v")
      local mget = c:call("MGET", "spec:k", "spec:none")
      assert.equal(2, #mget)
      assert.equal("v", mget[1])
      assert.equal(core.null, mget[2])
      c:close()
    end)

    it("gives nested arrays from EVAL, an error inside one as {err = message}", function()
      local c = conn()
      local v, err = c:call("EVAL",
        "return {1, 'two', {3, {'four', false}}, redis.status_reply('FINE'), redis.error_reply('ERR inner')}", 0)
      assert.is_nil(err)
      assert.same({ 1, "two", { 3, { "four", core.null } }, "FINE", { err = "ERR inner" } }, v)
      assert.equal("integer", math.type(v[3][1]))
      c:close()
    end)

    it("returns nil, \"redis: <message>\" for an error reply and goes on", function()
      local c = conn()
      local v, err = c:call("NOSUCHCOMMAND", "x")
      assert.is_nil(v)
      assert.equal("redis: ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x' ", err)
      c:call("SET", "spec:s", "text")
      v, err = c:call("INCR", "spec:s")
      assert.is_nil(v)
      assert.equal("redis: ERR value is not an integer or out of range", err)
      assert.equal("PONG", c:call("PING"))
      c:close()
    end)

    it("uses the database given by db", function()
      local c = conn({ db = 3 })
      assert.equal("OK", c:call("SET", "spec:db", "three"))
      assert.equal("three", srv:cli("-n", "3", "GET", "spec:db"))
      assert.equal("", srv:cli("-n", "0", "GET", "spec:db"))
      c:close()
      c = conn({ db = 99 })
      local v, err = c:call("PING")
      assert.is_nil(v)
      assert.equal("redis: ERR DB index is out of range", err)
      c:close()
    end)
  end)

  describe("eval", function()
    local SCRIPT = "return {#KEYS, #ARGV, KEYS[1], ARGV[1]}"
    local sha

    lazy_setup(function() sha = srv:cli("SCRIPT", "LOAD", SCRIPT) end)

    it("runs EVALSHA with keys and args", function()
      local c = conn()
      local v, err = c:eval(sha, SCRIPT, { "k1", "k2" }, { 7, "a" })
      assert.is_nil(err)
      assert.same({ 2, 2, "k1", "7" }, v)
      v, err = c:eval(sha, SCRIPT)
      assert.is_nil(err)
      assert.same({ 0, 0 }, v)
      c:close()
    end)

    it("loads the script on NOSCRIPT and runs it (after SCRIPT FLUSH too)", function()
      local c = conn()
      assert.equal("OK", c:call("SCRIPT", "FLUSH"))
      assert.same({ 0 }, c:call("SCRIPT", "EXISTS", sha))
      local v, err = c:eval(sha, SCRIPT, { "k" }, { "a" })
      assert.is_nil(err)
      assert.same({ 1, 1, "k", "a" }, v)
      assert.same({ 1 }, c:call("SCRIPT", "EXISTS", sha))
      assert.equal("OK", c:call("SCRIPT", "FLUSH"))
      v, err = c:eval(sha:upper(), SCRIPT, { "k" }, { "b" }) -- Redis takes either case
      assert.is_nil(err)
      assert.same({ 1, 1, "k", "b" }, v)
      c:close()
    end)

    it("returns nil, \"redis: …\" for an error the script raises or a script that does not compile", function()
      local c = conn()
      local bad = "return redis.error_reply('ERR boom')"
      local bad_sha = srv:cli("SCRIPT", "LOAD", bad)
      local v, err = c:eval(bad_sha, bad, {}, {})
      assert.is_nil(v)
      assert.equal("redis: ERR boom", err)
      local call = "return redis.call('INCR', KEYS[1])"
      c:call("SET", "spec:s", "text")
      v, err = c:eval(srv:cli("SCRIPT", "LOAD", call), call, { "spec:s" })
      assert.is_nil(v)
      assert.matches("^redis: ERR value is not an integer or out of range", err)
      c:call("SCRIPT", "FLUSH")
      v, err = c:eval(("0"):rep(40), "return (", {}, {})
      assert.is_nil(v)
      assert.matches("^redis: ERR Error compiling script", err)
      c:close()
    end)

    it("raises when the script is not the one sha names", function()
      local c = conn()
      c:call("SCRIPT", "FLUSH")
      assert.has_error(function() c:eval(sha, "return 2", {}, {}) end,
        "hypatos.Redis:eval: the script's SHA1 is 7f923f79fe76194c868d7e1d0820de36700eb649, not the sha given")
      assert.equal("PONG", c:call("PING")) -- the connection is still usable
      c:close()
    end)

    it("raises on misuse, naming the argument", function()
      local c = conn()
      assert.has_error(function() c:eval(nil, SCRIPT) end, "hypatos.Redis:eval: sha must be a string, got nil")
      assert.has_error(function() c:eval(sha, 1) end, "hypatos.Redis:eval: script must be a string, got number")
      assert.has_error(function() c:eval(sha, SCRIPT, "k") end, "hypatos.Redis:eval: keys must be an array, got string")
      assert.has_error(function() c:eval(sha, SCRIPT, {}, { "a", true }) end,
        "hypatos.Redis:eval: args[2] must be a string or a number, got boolean")
      assert.has_error(function() c:eval(sha, SCRIPT, { {} }) end,
        "hypatos.Redis:eval: keys[1] must be a string or a number, got table")
      c:close()
    end)
  end)

  describe("failures", function()
    it("returns nil, \"connection: …\" for a server that is down, within about the timeout", function()
      local down = assert(redis_server.start())
      local port = down.port
      down:stop()
      local c = core.redis({ port = port, timeout = 0.2 })
      local t, v, err = elapsed(function() return c:call("PING") end)
      assert.is_nil(v)
      assert.equal("connection: Connection refused", err)
      assert.is_true(t < 2, t)
      t, v, err = elapsed(function() return c:eval(("0"):rep(40), "return 1", {}, {}) end)
      assert.is_nil(v)
      assert.equal("connection: Connection refused", err)
      assert.is_true(t < 2, t)
      c:close()
    end)

    it("never blocks or fails in core.redis for a server that is down", function()
      local t, c = elapsed(function() return core.redis({ host = "127.0.0.1", port = 1 }) end)
      assert.is_true(t < 0.5, t)
      assert.equal("hypatos.Redis(127.0.0.1:1/0)", tostring(c))
      c:close()
    end)

    it("reports a host that does not resolve as a connection failure", function()
      local c = core.redis({ host = "no-such-host.invalid", port = 6379, timeout = 0.5 })
      local v, err = c:call("PING")
      assert.is_nil(v)
      assert.matches("^connection: ", err)
      c:close()
    end)

    it("times out on a server that never answers: nil, \"connection: timeout\"", function()
      local listener = assert(socket.bind("127.0.0.1", 0)) -- accepts in the kernel, never answers
      local _, port = listener:getsockname()
      local c = core.redis({ port = tonumber(port), timeout = 0.2 })
      local t, v, err = elapsed(function() return c:call("PING") end)
      assert.is_nil(v)
      assert.equal("connection: timeout", err)
      assert.is_true(t >= 0.1 and t < 2, t)
      -- the next call connects again (and times out again)
      t, v, err = elapsed(function() return c:call("PING") end)
      assert.is_nil(v)
      assert.equal("connection: timeout", err)
      assert.is_true(t < 2, t)
      listener:close()
      c:close()
    end)

    it("times out on a connect that hangs (a listener whose accept queue is full)", function()
      local listener = assert(socket.bind("127.0.0.1", 0, 0))
      local _, port = listener:getsockname()
      local fill = {}
      for i = 1, 4 do -- the kernel drops further SYNs: connect() hangs
        fill[i] = socket.tcp()
        fill[i]:settimeout(0)
        fill[i]:connect("127.0.0.1", port)
      end
      finally(function()
        for _, f in ipairs(fill) do f:close() end
        listener:close()
      end)
      local c = core.redis({ port = tonumber(port), timeout = 0.2 })
      local t, v, err = elapsed(function() return c:call("PING") end)
      assert.is_nil(v)
      assert.equal("connection: timeout", err)
      assert.is_true(t >= 0.1 and t < 2, t)
      c:close()
    end)

    it("times out on a stalled redis (CLIENT PAUSE) and works once it answers again", function()
      local c = conn({ timeout = 0.2 })
      assert.equal("PONG", c:call("PING"))
      assert.equal("OK", srv:cli("CLIENT", "PAUSE", "700", "ALL"))
      local t, v, err = elapsed(function() return c:call("SET", "spec:paused", "x") end)
      assert.is_nil(v)
      assert.equal("connection: timeout", err)
      assert.is_true(t < 2, t)
      socket.sleep(0.8)
      v, err = c:call("PING")
      assert.is_nil(err)
      assert.equal("PONG", v)
      c:close()
    end)

    it("reconnects after a restart: the next call works", function()
      local own = assert(redis_server.start())
      finally(function() own:stop() end)
      local c = core.redis({ port = own.port })
      assert.equal("OK", c:call("SET", "spec:r", "before"))
      own:restart()
      -- the old connection is closed by the server: replaced before anything is sent
      local v, err = c:call("GET", "spec:r")
      assert.is_nil(err)
      assert.equal(core.null, v) -- a fresh, empty server
      own:kill()
      v, err = c:call("PING")
      assert.is_nil(v)
      assert.matches("^connection: ", err)
      v, err = c:call("PING")
      assert.is_nil(v)
      assert.equal("connection: Connection refused", err)
      own:restart()
      v, err = c:call("PING")
      assert.is_nil(err)
      assert.equal("PONG", v)
      c:close()
    end)

    it("fails with \"connection: …\" when the server drops the connection during a command", function()
      local own = assert(redis_server.start({ config = { "proto-max-bulk-len 1mb" } }))
      finally(function() own:stop() end)
      local c = core.redis({ port = own.port, timeout = 2 })
      assert.equal("PONG", c:call("PING"))
      -- a bulk over the limit: Redis answers an error and closes while 16 MiB are still being written
      local v, err = c:call("SET", "spec:big", ("x"):rep(16 * 1024 * 1024))
      assert.is_nil(v)
      assert.matches("^connection: ", err)
      assert.equal("PONG", c:call("PING"))
      c:close()
    end)

    -- hiredis writes without MSG_NOSIGNAL: a peer that shuts its side and then resets the
    -- connection makes the next write raise SIGPIPE, which kills a process that does not
    -- ignore it (luasocket ignores it process-wide, so the client runs in a child lua5.4
    -- with the default action restored)
    it("never lets SIGPIPE kill the process", function()
      local listener = assert(socket.bind("127.0.0.1", 0))
      local _, port = listener:getsockname()
      local dir, rm = helpers.tmpdir()
      finally(function() listener:close(); rm() end)
      helpers.write(dir .. "/client.lua", [[
        local core = require "hypatos.core"
        local c = core.redis{ port = tonumber(arg[1]), timeout = 5 }
        local v, err = c:call("SET", "k", ("x"):rep(32 * 1024 * 1024))
        io.write(tostring(v), "|", tostring(err), "\n")
      ]])
      os.execute(("(env --default-signal=PIPE %s lua5.4 %s/client.lua %d >%s/out 2>&1; echo \"exit $?\" >>%s/out) &")
        :format(helpers.lua_env_words(), dir, port, dir, dir))
      listener:settimeout(5)
      local s = assert(listener:accept())
      s:settimeout(5)
      assert(s:receive(1000))
      s:shutdown("send") -- FIN: the client goes on writing
      socket.sleep(0.2)
      s:close()          -- unread bytes: RST, and the client's next write fails with EPIPE
      local out
      local t0 = socket.gettime()
      repeat
        socket.sleep(0.05)
        out = helpers.read(dir .. "/out") or ""
      until out:find("exit %d+") or socket.gettime() - t0 > 20
      assert.matches("^nil|connection: [^\n]+\nexit 0\n$", out)
    end)
  end)

  describe("AUTH", function()
    local PW = "s3cret-Pw!"
    local auth

    lazy_setup(function()
      auth = assert(redis_server.start({ password = PW, config = { "user alice on >alice-pw ~* &* +@all" } }))
    end)
    lazy_teardown(function() if auth then auth:stop() end end)

    it("authenticates with requirepass", function()
      local c = core.redis({ port = auth.port, password = PW })
      local v, err = c:call("PING")
      assert.is_nil(err)
      assert.equal("PONG", v)
      assert.equal("default", c:call("ACL", "WHOAMI"))
      assert.equal("hypatos.Redis(127.0.0.1:" .. auth.port .. "/0)", tostring(c))
      c:close()
    end)

    it("authenticates an ACL user (from the config, and one made by ACL SETUSER)", function()
      local c = core.redis({ port = auth.port, username = "alice", password = "alice-pw", db = 2 })
      local v, err = c:call("ACL", "WHOAMI")
      assert.is_nil(err)
      assert.equal("alice", v)
      assert.equal("OK", auth:cli("ACL", "SETUSER", "bob", "on", ">bob pw", "~spec:*", "+@all"))
      local b = core.redis({ port = auth.port, username = "bob", password = "bob pw" })
      assert.equal("bob", b:call("ACL", "WHOAMI"))
      assert.equal("OK", b:call("SET", "spec:bob", "1"))
      v, err = b:call("SET", "other", "1")
      assert.is_nil(v)
      assert.matches("^redis: NOPERM ", err)
      b:close()
      c:close()
    end)

    it("refuses a wrong password with nil, \"redis: WRONGPASS …\", never showing it", function()
      local c = core.redis({ port = auth.port, password = "wrong-" .. PW })
      local v, err = c:call("PING")
      assert.is_nil(v)
      assert.equal("redis: WRONGPASS invalid username-password pair or user is disabled.", err)
      assert.is_nil(err:find("wrong-", 1, true))
      assert.is_nil(tostring(c):find("wrong-", 1, true))
      -- each call tries again (the operator may fix the password meanwhile)
      v, err = c:call("PING")
      assert.is_nil(v)
      assert.equal("redis: WRONGPASS invalid username-password pair or user is disabled.", err)
      c:close()
      c = core.redis({ port = auth.port, username = "alice", password = PW })
      v, err = c:call("PING")
      assert.is_nil(v)
      assert.equal("redis: WRONGPASS invalid username-password pair or user is disabled.", err)
      c:close()
    end)

    it("gives NOAUTH without a password", function()
      local c = core.redis({ port = auth.port })
      local v, err = c:call("GET", "k")
      assert.is_nil(v)
      assert.equal("redis: NOAUTH Authentication required.", err)
      c:close()
    end)

    it("never shows the password, even where the server echoes it", function()
      local c = core.redis({ port = auth.port, password = PW })
      local v, err = c:call("NOSUCHCOMMAND", "x" .. PW .. "y")
      assert.is_nil(v)
      assert.equal("redis: ERR unknown command 'NOSUCHCOMMAND', with args beginning with: 'x[redacted]y' ", err)
      v = c:call("EVAL", "return {redis.error_reply(ARGV[1])}", 0, PW)
      assert.same({ { err = "ERR [redacted]" } }, v)
      c:close()
    end)
  end)

  describe("lifecycle", function()
    it("closes idempotently and raises on use after close", function()
      local c = conn()
      assert.equal("PONG", c:call("PING"))
      c:close()
      c:close()
      assert.equal("hypatos.Redis(127.0.0.1:" .. srv.port .. "/0, closed)", tostring(c))
      assert.has_error(function() c:call("PING") end, "hypatos.Redis is closed")
      assert.has_error(function() c:eval(("0"):rep(40), "return 1") end, "hypatos.Redis is closed")
    end)

    it("closes the server connection on close, at the end of a <close> scope and when collected", function()
      local base = clients(srv)
      local c = conn()
      c:call("PING")
      assert.equal(base + 1, clients(srv))
      c:close()
      assert.equal(base, clients(srv))
      local chunk = assert(load([[
        local core, port = ...
        local kept
        do
          local c <close> = core.redis({ port = port })
          assert(c:call("PING") == "PONG")
          kept = c
        end
        return kept
      ]]))
      local kept = chunk(core, srv.port)
      assert.matches(", closed%)$", tostring(kept))
      assert.equal(base, clients(srv))
      do
        local g = conn()
        g:call("PING")
      end
      assert.equal(base + 1, clients(srv))
      collectgarbage()
      collectgarbage()
      assert.equal(base, clients(srv))
    end)

    it("shows host, port and db in tostring, never the password", function()
      local c = core.redis({ host = "localhost", port = 6390, db = 5, username = "u", password = "hunter2" })
      assert.equal("hypatos.Redis(localhost:6390/5)", tostring(c))
      c:close()
      assert.equal("hypatos.Redis(127.0.0.1:6379/0)", tostring(core.redis()))
    end)
  end)

  describe("misuse raises, naming the key", function()
    local cases = {
      { { nope = 1 }, 'hypatos.redis: unknown option "nope"' },
      { { [1] = "x" }, "hypatos.redis: option names must be strings, got number" },
      { { host = 1 }, 'hypatos.redis: option "host" must be a string, got number' },
      { { host = "" }, 'hypatos.redis: option "host" must not be empty' },
      { { host = "a\0b" }, 'hypatos.redis: option "host" must not contain NUL' },
      { { port = "6379" }, 'hypatos.redis: option "port" must be an integer, got string' },
      { { port = 1.5 }, 'hypatos.redis: option "port" must be an integer, got a non-integer number' },
      { { port = 0 }, 'hypatos.redis: option "port" must be an integer from 1 to 65535, got 0' },
      { { port = 65536 }, 'hypatos.redis: option "port" must be an integer from 1 to 65535, got 65536' },
      { { db = -1 }, 'hypatos.redis: option "db" must be an integer from 0 to 2147483647, got -1' },
      { { password = true }, 'hypatos.redis: option "password" must be a string, got boolean' },
      { { password = "" }, 'hypatos.redis: option "password" must not be empty' },
      { { username = "u" }, 'hypatos.redis: option "username" needs "password"' },
      { { timeout = 0 }, 'hypatos.redis: option "timeout" must be > 0 and <= 604800 seconds, got 0' },
      { { timeout = 0 / 0 }, 'hypatos.redis: option "timeout" must be > 0 and <= 604800 seconds, got ' },
      { { timeout = "1" }, 'hypatos.redis: option "timeout" must be a number, got string' },
    }
    for _, case in ipairs(cases) do
      it(case[2], function()
        local ok, err = pcall(core.redis, case[1])
        assert.is_false(ok)
        assert.equal(case[2], err:sub(1, #case[2]))
      end)
    end

    it("options must be a table", function()
      assert.has_error(function() core.redis("redis://x") end, "hypatos.redis: options must be a table, got string")
    end)

    it("call needs a command of strings and numbers", function()
      local c = conn()
      assert.has_error(function() c:call() end, "hypatos.Redis:call: a command expected")
      assert.has_error(function() c:call("SET", "k", true) end,
        "hypatos.Redis:call: argument 3 must be a string or a number, got boolean")
      assert.has_error(function() c:call("GET", nil) end,
        "hypatos.Redis:call: argument 2 must be a string or a number, got nil")
      assert.has_error(function() c.call({}, "PING") end)
      c:close()
    end)

    it("never leaves the caller's options changed", function()
      local o = { port = srv.port, timeout = 1 }
      core.redis(o):close()
      assert.same({ port = srv.port, timeout = 1 }, o)
    end)
  end)

  it("works from the LuaJIT build", function()
    local script = [[
      local core = require "hypatos.core"
      local c = core.redis{ port = tonumber(os.getenv("PORT")) }
      local sha = c:call("SCRIPT", "LOAD", "return {KEYS[1], tonumber(ARGV[1]) + 1, false}")
      c:call("SCRIPT", "FLUSH")
      local v = assert(c:eval(sha, "return {KEYS[1], tonumber(ARGV[1]) + 1, false}", {"k"}, {41}))
      io.write(v[1], "|", v[2], "|", tostring(v[3] == core.null), "|", tostring(c:call("GET", "spec:none")
        == core.null), "|", select(2, c:call("NOPE")), "|", tostring(c), "\n")
      c:close()
    ]]
    local dir, rm = helpers.tmpdir()
    finally(rm)
    helpers.write(dir .. "/redis.lua", script)
    local p = io.popen(("PORT=%d LUA_PATH='lua/?.lua;lua/?/init.lua;;' " ..
      "LUA_CPATH='build/luajit/?.so;/usr/lib/x86_64-linux-gnu/lua/5.1/?.so;;' luajit %s/redis.lua 2>&1")
      :format(srv.port, dir))
    local out = p:read("a")
    assert.is_true(p:close(), out)
    assert.equal(("k|42|true|true|redis: ERR unknown command 'NOPE', with args beginning with: |" ..
      "hypatos.Redis(127.0.0.1:%d/0)\n"):format(srv.port), out)
  end)
end)
