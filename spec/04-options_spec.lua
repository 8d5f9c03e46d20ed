-- hypatos.new(opts): every option checked, named in the error; defaults; environment.
local hypatos = require "hypatos"
local helpers = require "spec.helpers"

local function new(extra)
  local o = { client_id = "id", client_secret = "secret" }
  for k, v in pairs(extra or {}) do o[k] = v end
  return hypatos.new(o)
end

local function fails(extra, msg)
  local ok, err = pcall(new, extra)
  assert.is_false(ok)
  assert.equal(msg, (tostring(err):gsub("^[^:]*:%d+: ", "")))
end

describe("hypatos.new options", function()
  it("rejects unknown keys and wrong types, naming the key", function()
    fails({ timeut = 5 }, 'hypatos.new: unknown option "timeut"')
    fails({ timeout = "5" }, 'hypatos.new: option "timeout" must be a number, got string')
    fails({ timeout = 0 }, 'hypatos.new: option "timeout" must be > 0, got 0')
    fails({ connect_timeout = -1 }, 'hypatos.new: option "connect_timeout" must be > 0, got -1')
    fails({ token_timeout = true }, 'hypatos.new: option "token_timeout" must be a number, got boolean')
    fails({ deadline = 0 }, 'hypatos.new: option "deadline" must be > 0, got 0')
    fails({ max_retries = 1.5 }, 'hypatos.new: option "max_retries" must be an integer, got a non-integer number')
    fails({ max_retries = -1 }, 'hypatos.new: option "max_retries" must be >= 0, got -1')
    fails({ backoff_base = 0 }, 'hypatos.new: option "backoff_base" must be > 0, got 0')
    fails({ backoff_cap = "x" }, 'hypatos.new: option "backoff_cap" must be a number, got string')
    fails({ max_wait = -2 }, 'hypatos.new: option "max_wait" must be >= 0, got -2')
    fails({ throttle = 1 }, 'hypatos.new: option "throttle" must be a boolean, got number')
    fails({ region = "de" }, 'hypatos.new: option "region" must be "eu" or "us", got "de"')
    fails({ region = 1 }, 'hypatos.new: option "region" must be a string, got number')
    fails({ scope = 5 }, 'hypatos.new: option "scope" must be a string or an array of strings, got number')
    fails({ scope = { "a b" } }, 'hypatos.new: option "scope" item 1 must be a scope name (a string without spaces)')
    fails({ token_cache = {} }, 'hypatos.new: option "token_cache" must be a table with get and set functions (and optionally release)')
    fails({ token_cache = { get = print } }, 'hypatos.new: option "token_cache" must be a table with get and set functions (and optionally release)')
    fails({ token_cache = { get = print, set = print, release = 1 } },
      'hypatos.new: option "token_cache": release must be a function, got number')
    fails({ on_request = "x" }, 'hypatos.new: option "on_request" must be a function, got string')
    fails({ on_response = {} }, 'hypatos.new: option "on_response" must be a function, got table')
    fails({ random = 1 }, 'hypatos.new: option "random" must be a function, got number')
    fails({ user_agent = "a\r\nX: y" }, 'hypatos.new: option "user_agent" must not contain CR, LF or NUL')
    fails({ client_id = "" }, 'hypatos.new: option "client_id" must not be empty')
    fails({ ca_file = "/nonexistent/ca.pem" }, 'hypatos.new: option "ca_file" cannot be read: "/nonexistent/ca.pem"')
    fails({ proxy = false }, 'hypatos.new: option "proxy" must be a string, got boolean')
    fails({ [1] = "x" }, "hypatos.new: option names must be strings, got number")
  end)

  -- issue 18: the C core's errors named lua/hypatos/init.lua (its call of the core), not the caller
  it("points an option error at the caller's line, raised by the C core or by the Lua layer", function()
    local here = debug.getinfo(1, "S").short_src
    local function at(fn, opts)
      local line
      local ok, err = pcall(function()
        line = debug.getinfo(1, "l").currentline + 1
        fn(opts)
      end)
      assert.is_false(ok)
      local prefix = here .. ":" .. line .. ": hypatos.new: "
      assert.equal(prefix, tostring(err):sub(1, #prefix), tostring(err))
    end
    at(hypatos.new, { client_id = "id", client_secret = "secret", timeout = 0 })         -- C
    at(hypatos.new, { client_id = "id", client_secret = "secret", timeot = 1 })          -- C
    at(hypatos.new, { client_id = "id", client_secret = "secret", base_url = "ftp://x" }) -- C
    at(hypatos.new, 5)                                                                     -- C
    at(hypatos.new, { client_id = "id", client_secret = "secret", driver = "x" })         -- Lua
    at(hypatos.new, { client_id = "id", client_secret = "secret", debug = 1 })            -- Lua
    at(hypatos.new, { client_id = "id", client_secret = "secret", store = 1 })            -- Lua
    at(hypatos.new, { client_id = "id", client_secret = "secret", debug = true, timeout = 0 }) -- C, via the copy
    -- from a script, in lua5.4 and LuaJIT; HYPATOS_REDIS_URL is checked on the caller's line too
    local dir, rm = helpers.tmpdir()
    finally(rm)
    helpers.write(dir .. "/app.lua", 'local hypatos = require "hypatos"\n' ..
      'print(select(2, pcall(function()\n  hypatos.new{ client_id = "i", client_secret = "s", store = false, timeout = 0 }\nend)))\n' ..
      'print(select(2, pcall(function()\n  hypatos.new{ client_id = "i", client_secret = "s", driver = 1 }\nend)))\n' ..
      'print(select(2, pcall(function()\n  hypatos.new{ client_id = "i", client_secret = "s" }\nend)))\n')
    for _, lua in ipairs({ "lua5.4", "luajit" }) do
      local env = lua == "luajit" and "LUA_PATH='lua/?.lua;lua/?/init.lua;;' LUA_CPATH='build/luajit/?.so;;'"
        or helpers.lua_env_words()
      local p = io.popen(("%s HYPATOS_REDIS_URL=ftp://x %s %s/app.lua 2>&1"):format(env, lua, dir))
      local out = p:read("a")
      p:close()
      assert.equal(dir .. '/app.lua:3: hypatos.new: option "timeout" must be > 0, got 0\n' ..
        dir .. '/app.lua:6: hypatos.new: option "driver" must be "auto", "curl" or "ngx", got number\n' ..
        dir .. '/app.lua:9: hypatos.redis: url must start with redis:// or rediss://, got "ftp://x"\n', out, lua)
    end
  end)

  it("rejects a non-table and missing credentials", function()
    assert.has_error(function() hypatos.new("x") end, "hypatos.new: options must be a table, got string")
    assert.has_error(function() hypatos.new({ client_secret = "s", base_url = "https://x.test" }) end,
      "hypatos.new: client_id is missing (client_secret was passed: pass client_id too)")
    assert.has_error(function() hypatos.new({ client_id = "i", base_url = "https://x.test" }) end,
      "hypatos.new: client_secret is missing (client_id was passed: pass client_secret too)")
  end)

  it("refuses plain http except to loopback hosts", function()
    fails({ base_url = "http://api.cloud.hypatos.ai/v2" },
      'hypatos.new: option "base_url" must use https:// (plain http:// is allowed only to loopback hosts), got "http://api.cloud.hypatos.ai/v2"')
    fails({ token_url = "http://auth.example.com/token" },
      'hypatos.new: option "token_url" must use https:// (plain http:// is allowed only to loopback hosts), got "http://auth.example.com/token"')
    fails({ base_url = "ftp://x" }, 'hypatos.new: option "base_url" must start with https://, got "ftp://x"')
    fails({ base_url = "https://u:p@x.test" },
      'hypatos.new: option "base_url" must not contain user info (credentials go in client_id/client_secret)')
    fails({ base_url = "http://127.0.0.1.evil.com/v2" },
      'hypatos.new: option "base_url" must use https:// (plain http:// is allowed only to loopback hosts), got "http://127.0.0.1.evil.com/v2"')
    assert.truthy(new({ base_url = "http://127.0.0.1:8080/v2" }))
    assert.truthy(new({ base_url = "http://localhost/v2" }))
    assert.truthy(new({ base_url = "http://[::1]:9/v2" }))
  end)

  it("decides loopback by parsing the address, not by its prefix", function()
    for _, url in ipairs { "http://127.999.999.999/v2", "http://127.0.0.1./v2", "http://127.0.0.1.evil/v2",
        "http://localhost./v2", "http://localhost.evil.example/v2", "http://0x7f.0.0.1/v2", "http://127.1/v2",
        "http://[::2]/v2", "http://[::1/v2", "http://2130706433/v2" } do
      fails({ base_url = url }, 'hypatos.new: option "base_url" must use https:// (plain http:// is allowed only '
        .. 'to loopback hosts), got "' .. url .. '"')
    end
    for _, url in ipairs { "http://127.5.6.7/v2", "http://LocalHost:80/v2", "http://[0:0:0:0:0:0:0:1]:8/v2",
        "http://[::ffff:127.0.0.1]/v2", "http://127.0.0.1" } do
      assert.truthy(new({ base_url = url }), url)
    end
  end)

  it("picks the base URL: base_url > region > HYPATOS_BASE_URL > eu", function()
    assert.equal("hypatos.Client(https://api.cloud.hypatos.ai/v2, client_id=id)",
      tostring(new({ base_url = "https://api.cloud.hypatos.ai/v2/" })))
    assert.equal("hypatos.Client(https://api.cloud.hypatos.com/v2, client_id=id)", tostring(new({ region = "us" })))
    assert.equal("hypatos.Client(https://x.test/v2, client_id=id)",
      tostring(new({ region = "us", base_url = "https://x.test/v2" })))
    if not os.getenv("HYPATOS_BASE_URL") then
      assert.equal("hypatos.Client(https://api.cloud.hypatos.ai/v2, client_id=id)", tostring(new()))
    end
  end)

  it("never shows the secret", function()
    local c = new({ client_secret = "TOPSECRET" })
    assert.is_nil(tostring(c):find("TOPSECRET", 1, true))
  end)

  it("does not modify the caller's table", function()
    local o = { client_id = "id", client_secret = "s", scope = { "a", "b" } }
    hypatos.new(o)
    assert.same({ client_id = "id", client_secret = "s", scope = { "a", "b" } }, o)
  end)

  it("checks max_body_size (bytes of an answer held in memory, default 64 MiB)", function()
    fails({ max_body_size = 0 }, 'hypatos.new: option "max_body_size" must be >= 1, got 0')
    fails({ max_body_size = 1.5 }, 'hypatos.new: option "max_body_size" must be an integer, got a non-integer number')
    fails({ max_body_size = "1" }, 'hypatos.new: option "max_body_size" must be an integer, got string')
    fails({ max_body_size = math.tointeger(2 ^ 60) }, 'hypatos.new: option "max_body_size" must be <= 1000000000000, got 1.15292e+18')
    assert.equal(64 * 1024 * 1024, new():options().max_body_size)
    assert.equal(4096, new({ max_body_size = 4096 }):options().max_body_size)
  end)

  it("range-checks numbers before any cast (durations at most 7 days, max_retries at most 100)", function()
    fails({ timeout = 1e300 }, 'hypatos.new: option "timeout" must be <= 604800, got 1e+300')
    fails({ connect_timeout = 1e12 }, 'hypatos.new: option "connect_timeout" must be <= 604800, got 1e+12')
    fails({ token_timeout = 604801 }, 'hypatos.new: option "token_timeout" must be <= 604800, got 604801')
    fails({ deadline = 1e300 }, 'hypatos.new: option "deadline" must be <= 604800, got 1e+300')
    fails({ backoff_base = 1e300 }, 'hypatos.new: option "backoff_base" must be <= 604800, got 1e+300')
    fails({ backoff_cap = 1e300 }, 'hypatos.new: option "backoff_cap" must be <= 604800, got 1e+300')
    fails({ max_wait = 1e300 }, 'hypatos.new: option "max_wait" must be <= 604800, got 1e+300')
    fails({ max_retries = math.tointeger(2 ^ 40) }, 'hypatos.new: option "max_retries" must be <= 100, got 1.09951e+12')
    fails({ max_retries = 101 }, 'hypatos.new: option "max_retries" must be <= 100, got 101')
    local o = new({ timeout = 604800, deadline = 604800, max_retries = 100 }):options()
    assert.equal(604800, o.timeout)
    assert.equal(100, o.max_retries)
    local c = new()
    assert.has_error(function() c:prepare("GET", "/x", { timeout = 1e300 }) end,
      'hypatos.request: option "timeout" must be <= 604800')
    assert.has_error(function() c:prepare("GET", "/x", { deadline = 1e300 }) end,
      'hypatos.request: option "deadline" must be <= 604800')
    assert.has_error(function() c:prepare("GET", "/x", { max_retries = math.tointeger(2 ^ 40) }) end,
      'hypatos.request: option "max_retries" must be <= 100')
  end)

  it("refuses user info in base_url, token_url and proxy without echoing the secret", function()
    local ui = 'must not contain user info (credentials go in client_id/client_secret)'
    for _, url in ipairs { "https://id:SECRET@api.example.test/v2", "http://id:SECRET@127.0.0.1:9/v2",
        "http://id:SECRET@evil.example/v2", "ftp://id:SECRET@x", "id:SECRET@api.example.test/v2",
        "https://id:SECRET@[::1]/v2", "https://SECRET@api.example.test" } do
      fails({ base_url = url }, 'hypatos.new: option "base_url" ' .. ui)
      fails({ token_url = url }, 'hypatos.new: option "token_url" ' .. ui)
    end
    for _, url in ipairs { "http://user:SECRET@proxy.example:3128", "user:SECRET@proxy.example:3128",
        "socks5h://user:SECRET@127.0.0.1:1080" } do
      fails({ proxy = url }, 'hypatos.new: option "proxy" must not contain user info')
    end
    assert.truthy(new({ base_url = "https://api.example.test/v2/@me" })) -- an @ in the path is no user info
    assert.truthy(new({ proxy = "http://proxy.example:3128" }))
  end)

  it("echoes a refused URL as scheme, host and path only: no query, no fragment (issue 16 §12)", function()
    fails({ base_url = "https://api.example.test/v2?key=SECRET" },
      'hypatos.new: option "base_url" must not contain a query or fragment, got "https://api.example.test/v2"')
    fails({ token_url = "https://api.example.test:8443/auth/token?client_secret=SECRET#frag" },
      'hypatos.new: option "token_url" must not contain a query or fragment, got "https://api.example.test:8443/auth/token"')
    fails({ base_url = "https://api.example.test/v2#SECRET" },
      'hypatos.new: option "base_url" must not contain a query or fragment, got "https://api.example.test/v2"')
    fails({ base_url = "http://api.example.test/v2#SECRET" },
      'hypatos.new: option "base_url" must not contain a query or fragment, got "http://api.example.test/v2"')
    fails({ base_url = "ftp://x/y?key=SECRET" }, 'hypatos.new: option "base_url" must start with https://, got "ftp://x/y"')
  end)

  it("shows a URL without user info, query or fragment (core.show_url: the rule of every message)", function()
    local show = hypatos.show_url
    assert.equal("https://h:8/v2", show("https://id:pw@h:8/v2?key=x#f"))
    assert.equal("https://api.example.test/v2/@me", show("https://api.example.test/v2/@me?x=1"))
    assert.equal("http://[::1]:9/v2", show("http://u:p@w@[::1]:9/v2#x"))
    assert.equal("proxy.example:3128", show("user:SECRET@proxy.example:3128"))
    assert.equal("socks5h://127.0.0.1:1080", show("socks5h://user:SECRET@127.0.0.1:1080"))
    assert.equal("https://h", show("https://h?a=http://x@y"))
    assert.equal("h/p", show("h/p?u=http://x@y")) -- a "://" in the query starts no authority
    assert.equal("a/b://d/x", show("a/b://c@d/x?y")) -- the first "://" does, as for the user-info check
    assert.equal("", show(""))
  end)

  it("shows the URL of a failed call without its query; err.url keeps it (issue 16 §12)", function()
    local c = helpers.client({ max_retries = 0 })
    local rec = helpers.call(c, "GET", "/u", { query = { key = "SECRET" } },
      { helpers.token_response(), helpers.json(404, { title = "Not found" }) })
    local err = rec.result.error
    assert.equal("http", err.kind)
    assert.matches("?key=SECRET", err.url, 1, true)
    assert.is_nil(tostring(err):find("SECRET", 1, true), tostring(err))
    assert.matches("%(GET https?://[^?)]+/u%)$", tostring(err))
  end)

  it("sends a hypatos User-Agent, after the caller's", function()
    local c = new({ user_agent = "myapp/1.0", base_url = "https://x.test" })
    local act = c:prepare("GET", "/u"):step(1)
    assert.matches("^myapp/1%.0 hypatos%-lua/%d+%.%d+%.%d+ %(Lua 5%.%d; libcurl/[%d.]+%)$", act.headers["User-Agent"])
  end)
end)

describe("environment fallbacks", function()
  local function run(env, code)
    local p = io.popen("env -u HYPATOS_BASE_URL -u HYPATOS_CLIENT_ID -u HYPATOS_CLIENT_SECRET " ..
      helpers.lua_env_words() .. " " .. env ..
      " lua5.4 -e '" .. code .. "' 2>&1")
    local out = p:read("*a")
    p:close()
    return out
  end

  it("never mixes a passed client_id with a secret from the environment", function()
    local out = run("HYPATOS_CLIENT_ID=envid HYPATOS_CLIENT_SECRET=envsecret",
      [[print(pcall(require("hypatos").new, { client_id = "other-tenant" }))]])
    assert.matches("client_secret is missing %(client_id was passed: pass client_secret too%)", out)
    out = run("HYPATOS_CLIENT_ID=envid HYPATOS_CLIENT_SECRET=envsecret",
      [[print(pcall(require("hypatos").new, {}))]])
    assert.matches("^true\thypatos.Client%(https://api.cloud.hypatos.ai/v2, client_id=envid%)", out)
  end)

  it("reads HYPATOS_CLIENT_ID, HYPATOS_CLIENT_SECRET and HYPATOS_BASE_URL", function()
    local lua = "lua5.4"
    local cmd = helpers.lua_env_words() .. " HYPATOS_CLIENT_ID=envid HYPATOS_CLIENT_SECRET=envsecret HYPATOS_BASE_URL=https://env.test/v2 " ..
      lua .. [[ -e 'print(tostring(require("hypatos").new()))']]
    local p = io.popen(cmd)
    local out = p:read("*a")
    p:close()
    assert.equal("hypatos.Client(https://env.test/v2, client_id=envid)\n", out)
  end)

  it("refuses user info in HYPATOS_BASE_URL without echoing it", function()
    local out = run("HYPATOS_CLIENT_ID=envid HYPATOS_CLIENT_SECRET=envsecret HYPATOS_BASE_URL=https://u:SECRET@env.test/v2",
      [[print(pcall(require("hypatos").new, {}))]])
    assert.matches('option "base_url" must not contain user info', out)
    assert.is_nil(out:find("SECRET", 1, true), out)
  end)
end)
