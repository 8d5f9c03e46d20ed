-- mock/launcher.lua — start and stop instances of the local fake Hypatos server (nginx +
-- ngx_lua, handlers in mock/lua/hypatos_mock). Lua 5.4, 5.1 or LuaJIT, with luasocket and
-- lua-cjson.
--
--   local launcher = require "mock.launcher"
--   local srv = assert(launcher.start{ tls = true, config = { quota = 10 } })
--   print(srv.url)            --> http://127.0.0.1:PORT/v2
--   srv:fault{ kind = "status", status = 503, path = "/v2/users" }
--   srv:stop()
--
-- Each instance gets a fresh prefix directory ($TMPDIR or /tmp, hypatos-mock-XXXXXX) that
-- holds the generated nginx.conf, the settings file, logs, temp files and the TLS test
-- certificate; stop() kills only the pid from that prefix's pid file and removes the
-- directory. A watchdog inside the server stops it (and removes the prefix) when the Lua
-- process that started it disappears without calling stop().

local socket = require "socket"
local http = require "socket.http"
local ltn12 = require "ltn12"
local cjson = require "cjson"

local M = {}

M.CLIENT_ID = "test-client"
M.CLIENT_SECRET = "test-secret"
M.DEFAULT_NGINX = "/usr/sbin/nginx"

-- Options accepted by start(), with their expected Lua types.
local OPTION_TYPES = {
  tls = "boolean", config = "table", nginx = "string", openssl = "string",
  start_timeout = "number", watchdog = "boolean", port = "number",
}

-- Quote a string for /bin/sh.
local function sh(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

-- Run a shell command; true when it exited with status 0 (os.execute returns true from
-- Lua 5.2 on, the status 0 in Lua 5.1 and LuaJIT).
local function run(cmd)
  local ok = os.execute(cmd)
  return ok == true or ok == 0
end

-- First line of a command's output (nil when none).
local function capture(cmd)
  local p = io.popen(cmd)
  if not p then return nil end
  local line = p:read("*l") -- "*": Lua 5.1 knows no other spelling
  p:close()
  return line
end

-- Whole content of a file, or nil.
local function read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("*a")
  f:close()
  return s
end

-- Write `text` to `path`; raises on failure.
local function write_file(path, text)
  local f = assert(io.open(path, "wb"))
  assert(f:write(text))
  assert(f:close())
end

-- Absolute directory of this file (mock/), resolved once.
local MOCK_DIR
local function mock_dir()
  if MOCK_DIR then return MOCK_DIR end
  local src = debug.getinfo(1, "S").source
  local path = src:sub(1, 1) == "@" and src:sub(2) or "mock/launcher.lua"
  local dir = path:match("^(.*)/[^/]*$") or "."
  if dir:sub(1, 1) ~= "/" then dir = assert(capture("pwd"), "cannot determine cwd") .. "/" .. dir end
  dir = dir:gsub("/%./", "/"):gsub("/%.$", "")
  MOCK_DIR = dir
  return dir
end

-- Pid of this Lua process (the parent of the shell io.popen starts), resolved once.
local OWN_PID
local function own_pid()
  if OWN_PID == nil then OWN_PID = tonumber(capture("echo $PPID")) or false end
  return OWN_PID or nil
end

-- True while process `pid` exists and is not a zombie.
local function alive(pid)
  local stat = read_file("/proc/" .. pid .. "/stat")
  if stat then
    local st = stat:match("%) (%a)")
    return st ~= nil and st ~= "Z" and st ~= "X"
  end
  if read_file("/proc/self/stat") then return false end -- /proc works: the process is gone
  return run("kill -0 " .. pid .. " 2>/dev/null")
end

-- Poll `pred()` every `step` seconds until it is true or `timeout` seconds passed.
local function wait_until(pred, timeout, step)
  local deadline = socket.gettime() + timeout
  while true do
    if pred() then return true end
    if socket.gettime() >= deadline then return false end
    socket.sleep(step or 0.01)
  end
end

-- A TCP port on 127.0.0.1 that was free a moment ago.
local function free_port()
  local s = assert(socket.tcp())
  assert(s:bind("127.0.0.1", 0))
  local _, port = s:getsockname()
  s:close()
  return tonumber(port)
end

-- Characters allowed in paths written into nginx.conf (kept simple on purpose).
local SAFE_PATH = "^[%w%._%-/+,=@:]+$"

-- One HTTP request to the server; returns status, body (string), headers or nil, err.
local function http_request(url, method, body, timeout)
  local chunks = {}
  local headers = { ["Connection"] = "close" }
  if body then
    headers["Content-Type"] = "application/json"
    headers["Content-Length"] = tostring(#body)
  end
  local saved = http.TIMEOUT
  http.TIMEOUT = timeout or 10
  local ok, code, resp_headers = http.request{
    url = url, method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil,
    sink = ltn12.sink.table(chunks),
  }
  http.TIMEOUT = saved
  if not ok then return nil, tostring(code) end
  return code, table.concat(chunks), resp_headers
end

--- A decoded control answer with its whole numbers as integers on Lua 5.3+ (cjson gives
-- floats: `requests` printed as `2.0`), in place; other values as they are.
local tointeger = rawget(math, "tointeger") -- Lua 5.3+; nil in LuaJIT
local function integers(v)
  if not tointeger then return v end
  if type(v) == "table" then
    for k, x in pairs(v) do
      if type(x) == "number" then
        v[k] = tointeger(x) or x
      elseif type(x) == "table" then
        integers(x)
      end
    end
  elseif type(v) == "number" then
    return tointeger(v) or v
  end
  return v
end

local Server = {}
Server.__index = Server

--- Call the control API. Returns the decoded JSON answer; raises on a transport error
-- or a non-2xx status.
-- @param method "GET", "POST", ...
-- @param path e.g. "/_mock/stats"
-- @param body optional table sent as JSON
function Server:control(method, path, body)
  local status, text = http_request(self.control_url .. path, method,
    body ~= nil and cjson.encode(body) or nil)
  if not status then error("mock control " .. method .. " " .. path .. ": " .. text, 2) end
  if status < 200 or status > 299 then
    error(("mock control %s %s: HTTP %d: %s"):format(method, path, status, text), 2)
  end
  return integers(cjson.decode(text))
end

--- Merge `tbl` into the server config (POST /_mock/config); returns the new config.
function Server:configure(tbl) return self:control("POST", "/_mock/config", tbl) end
--- Queue a fault or an array of faults (POST /_mock/faults).
function Server:fault(tbl) return self:control("POST", "/_mock/faults", tbl) end
--- Counters and the request log (GET /_mock/stats).
function Server:stats() return self:control("GET", "/_mock/stats") end
--- Restore the start-up state (POST /_mock/reset).
function Server:reset() return self:control("POST", "/_mock/reset") end
--- Invalidate every token (POST /_mock/revoke).
function Server:revoke() return self:control("POST", "/_mock/revoke") end

--- Stop the server: QUIT the master (pid from the pid file), wait until it and its worker
-- are gone (escalating to TERM/KILL after a bounded wait), remove the prefix. Idempotent.
function Server:stop()
  if self.stopped then return true end
  self.stopped = true
  local pid = tonumber(read_file(self.prefix .. "/logs/nginx.pid") or "") or self.pid
  if pid and alive(pid) then
    run("kill -QUIT " .. pid .. " 2>/dev/null")
    if not wait_until(function() return not alive(pid) end, 5) then
      run("kill -TERM " .. pid .. " 2>/dev/null")
      if not wait_until(function() return not alive(pid) end, 2) then
        run("kill -KILL " .. pid .. " 2>/dev/null")
        wait_until(function() return not alive(pid) end, 1)
      end
    end
  end
  -- The worker normally exits before its master; make sure it did (it is ours too).
  local w = self.worker_pid
  if w and alive(w) and not wait_until(function() return not alive(w) end, 2) then
    local cmdline = read_file("/proc/" .. w .. "/cmdline") or ""
    if cmdline:find("nginx", 1, true) then run("kill -KILL " .. w .. " 2>/dev/null") end
  end
  run("rm -rf " .. sh(self.prefix))
  return true
end

Server.__close = Server.stop

local start_in -- defined after start()

-- Fill the nginx.conf template.
local function render_conf(template, vars)
  return (template:gsub("@([%u_]+)@", function(name)
    local v = vars[name]
    if v == nil then error("nginx.conf.in: no value for @" .. name .. "@") end
    return tostring(v)
  end))
end

-- Start nginx once on the given ports; returns true, or false and the error text.
local function try_nginx(nginx, prefix, template, vars)
  write_file(prefix .. "/conf/nginx.conf", render_conf(template, vars))
  local log = prefix .. "/logs/start.log"
  local ok = run(("%s -p %s -c %s -e %s >%s 2>&1"):format(sh(nginx), sh(prefix .. "/"),
    sh(prefix .. "/conf/nginx.conf"), sh(prefix .. "/logs/error.log"), sh(log)))
  if ok then return true end
  local text = read_file(log) or ""
  if not text:find("%S") then text = read_file(prefix .. "/logs/error.log") or "" end
  return false, text
end

--- Start a server instance.
-- @param opts table (optional): `tls` (boolean, also listen with TLS on a second port),
--   `config` (table merged into the server's start-up config, which reset() restores),
--   `nginx` (path of the nginx binary, default /usr/sbin/nginx), `openssl` (path, default
--   "openssl"), `start_timeout` (seconds to wait for health, default 5), `watchdog`
--   (default true: the server stops itself when this process dies), `port` (listen on this
--   port of 127.0.0.1 instead of a free one chosen at random).
-- @return server object, or nil and an error message
function M.start(opts)
  opts = opts or {}
  if type(opts) ~= "table" then error("launcher.start: options must be a table", 2) end
  for k, v in pairs(opts) do
    local want = OPTION_TYPES[k]
    if not want then error("launcher.start: unknown option '" .. tostring(k) .. "'", 2) end
    if type(v) ~= want then error("launcher.start: option '" .. k .. "' must be a " .. want, 2) end
  end
  if opts.port ~= nil and (opts.port ~= math.floor(opts.port) or opts.port < 1 or opts.port > 65535) then
    error("launcher.start: option 'port' must be an integer from 1 to 65535", 2)
  end
  local dir = mock_dir()
  local template = read_file(dir .. "/nginx.conf.in")
  if not template then return nil, "cannot read " .. dir .. "/nginx.conf.in" end
  local lua_dir = dir .. "/lua"
  if not lua_dir:match(SAFE_PATH) then return nil, "unsupported characters in path " .. lua_dir end

  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local prefix = capture("mktemp -d " .. sh(tmp .. "/hypatos-mock-XXXXXX") .. " 2>/dev/null")
  if not prefix or prefix == "" then return nil, "mktemp -d failed in " .. tmp end
  -- Whatever goes wrong from here on, nothing may be left behind.
  local ok, srv, err = pcall(start_in, prefix, opts, template, lua_dir)
  if ok and srv then return srv end
  if ok then return nil, err end
  run("rm -rf " .. sh(prefix))
  return nil, "launcher.start failed: " .. tostring(srv)
end

-- The body of start() once the prefix directory exists; returns srv or nil, err
-- (removing the prefix itself on those failures).
function start_in(prefix, opts, template, lua_dir)
  local nginx = opts.nginx or M.DEFAULT_NGINX
  local function fail(msg)
    run("rm -rf " .. sh(prefix))
    return nil, msg
  end
  if not prefix:match(SAFE_PATH) then return fail("unsupported characters in TMPDIR path " .. prefix) end
  if not run("mkdir -p " .. sh(prefix .. "/conf") .. " " .. sh(prefix .. "/logs") .. " " .. sh(prefix .. "/tmp")) then
    return fail("cannot create directories under " .. prefix)
  end

  local cert, key = prefix .. "/cert.pem", prefix .. "/key.pem"
  if opts.tls then
    local cmd = ("%s req -x509 -newkey rsa:2048 -nodes -keyout %s -out %s -days 2 -subj /CN=localhost"
      .. " -addext subjectAltName=DNS:localhost,DNS:api.hypatos.test,IP:127.0.0.1 >/dev/null 2>&1"):format(
      sh(opts.openssl or "openssl"), sh(key), sh(cert))
    if not run(cmd) then return fail("openssl could not create the test certificate") end
  end

  local settings_file = prefix .. "/conf/mock.json"
  local watch = opts.watchdog ~= false
  local okenc, settings = pcall(cjson.encode, {
    config = opts.config or {}, owner_pid = watch and own_pid() or nil, prefix = prefix,
  })
  if not okenc then return fail("config cannot be encoded as JSON: " .. tostring(settings)) end
  write_file(settings_file, settings)

  local is_root = capture("id -u") == "0"
  local port, tls_port, started, last_err
  for _ = 1, 5 do
    port = opts.port or free_port()
    tls_port = nil
    if opts.tls then
      repeat tls_port = free_port() until tls_port ~= port
    end
    local tls_lines = ""
    if tls_port then
      tls_lines = ("        listen 127.0.0.1:%d ssl;\n        ssl_certificate \"%s\";\n"
        .. "        ssl_certificate_key \"%s\";\n        ssl_protocols TLSv1.2 TLSv1.3;"):format(tls_port, cert, key)
    end
    local ok, err = try_nginx(nginx, prefix, template, {
      USER_LINE = is_root and "user root;" or "", PREFIX = prefix, PORT = port, TLS_LINES = tls_lines,
      LUA_DIR = lua_dir, SETTINGS_FILE = settings_file,
    })
    if ok then started = true break end
    last_err = err
    if opts.port or not err:find("Address already in use", 1, true) then break end
  end
  if not started then
    return fail("nginx failed to start: " .. (last_err or "?"):gsub("%s+$", ""))
  end

  local pidfile = prefix .. "/logs/nginx.pid"
  local pid
  wait_until(function()
    pid = tonumber(read_file(pidfile) or "")
    return pid ~= nil
  end, 2)
  local srv = setmetatable({
    port = port,
    url = ("http://127.0.0.1:%d/v2"):format(port),
    control_url = ("http://127.0.0.1:%d"):format(port),
    tls_port = tls_port,
    tls_url = tls_port and ("https://localhost:%d/v2"):format(tls_port) or nil,
    ca_file = tls_port and cert or nil,
    pid = pid,
    prefix = prefix,
    error_log = prefix .. "/logs/error.log",
    client_id = M.CLIENT_ID,
    client_secret = M.CLIENT_SECRET,
  }, Server)
  if not pid then
    srv:stop()
    return nil, "nginx started but wrote no pid file"
  end

  local health
  wait_until(function()
    local status, text = http_request(srv.control_url .. "/_mock/health", "GET", nil, 1)
    if status == 200 then health = cjson.decode(text) end
    return health ~= nil
  end, opts.start_timeout or 5, 0.02)
  if not health then
    local log = read_file(srv.error_log) or ""
    srv:stop()
    return nil, "mock server did not become healthy: " .. log
  end
  -- 5.4: 1234, not 1234.0
  srv.worker_pid = math.tointeger and math.tointeger(health.pid) or health.pid -- luacheck: ignore 143
  return srv
end

return M
