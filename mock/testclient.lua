-- mock/testclient.lua — a small HTTP client for the mock server's own specs
-- (spec/0*-mock_*_spec.lua). It uses luasocket (and curl through the shell where a
-- streamed or broken transfer must be observed), never the library under test.
--
--   local tc = require("mock.testclient").new(srv)   -- srv from mock.launcher.start()
--   local tok = tc:token()
--   local status, json, headers, text = tc:request("GET", "/documents", { token = tok })

local http = require "socket.http"
local ltn12 = require "ltn12"
local mime = require "mime"
local cjson = require "cjson"

local M = {}
M.__index = M

--- A client for server `srv`.
function M.new(srv)
  return setmetatable({ srv = srv }, M)
end

--- Quote a string for /bin/sh.
function M.sh(s)
  return "'" .. (tostring(s):gsub("'", "'\\''")) .. "'"
end

--- application/x-www-form-urlencoded encoding of one component.
function M.form(s)
  return (s:gsub("[^%w%-%._~ ]", function(c) return ("%%%02X"):format(c:byte()) end):gsub(" ", "+"))
end

--- Percent-encoding of a path segment or query value.
function M.escape(s)
  return (s:gsub("[^%w%-%._~]", function(c) return ("%%%02X"):format(c:byte()) end))
end

--- HTTP request. `path` is relative to /v2 unless it starts with "/_mock".
-- opts: token, headers, body (string), json (table or JSON text: sent with
-- Content-Type application/json unless headers name one), ctype (Content-Type).
-- Returns status, decoded JSON (or nil), headers (lower-case names), body text.
function M:request(method, path, opts)
  opts = opts or {}
  local srv = self.srv
  local url = (opts.raw_path or path:sub(1, 6) == "/_mock") and (srv.control_url .. path) or (srv.url .. path)
  local headers = {}
  local body = opts.body
  if opts.json ~= nil then
    body = type(opts.json) == "string" and opts.json or cjson.encode(opts.json)
    headers["Content-Type"] = "application/json"
  end
  if opts.ctype then headers["Content-Type"] = opts.ctype end
  for k, v in pairs(opts.headers or {}) do headers[k] = v end
  if opts.token then headers["Authorization"] = "Bearer " .. opts.token end
  if body then headers["Content-Length"] = tostring(#body) end
  local chunks = {}
  local ok, status, h = http.request{
    url = url, method = method, headers = headers,
    source = body and ltn12.source.string(body) or nil, sink = ltn12.sink.table(chunks),
  }
  assert(ok, status)
  local text = table.concat(chunks)
  local okj, json = pcall(cjson.decode, text)
  return status, okj and json or nil, h, text
end

--- A fresh access token (asserts success).
function M:token(id, secret, scope)
  local body = "grant_type=client_credentials" .. (scope and ("&scope=" .. M.form(scope)) or "")
  local status, json = self:request("POST", "/auth/token", {
    body = body,
    headers = {
      ["Content-Type"] = "application/x-www-form-urlencoded",
      ["Authorization"] = "Basic " .. mime.b64(M.form(id or "test-client") .. ":" .. M.form(secret or "test-secret")),
    },
  })
  assert(status == 200, "token request failed: " .. tostring(status))
  return json.access_token
end

--- A token holding only `scopes` (space-separated), via a dedicated client configured on the fly.
function M:scoped_token(scopes)
  local list = {}
  for s in scopes:gmatch("%S+") do list[#list + 1] = s end
  local clients = self.srv:control("GET", "/_mock/config").clients
  clients["scoped-client"] = { secret = "scoped-secret", scopes = list }
  self.srv:configure{ clients = clients }
  return self:token("scoped-client", "scoped-secret")
end

--- Run a shell command; returns its stdout and exit code.
function M.run(cmd)
  local p = io.popen(cmd .. "; echo \"rc=$?\"")
  local out = p:read("a")
  p:close()
  local rc = tonumber(out:match("rc=(%d+)%s*$"))
  return out:gsub("rc=%d+%s*$", ""), rc
end

--- Resident set size and its peak (kB) of process `pid` (Linux /proc).
function M.memory(pid)
  local f = assert(io.open("/proc/" .. pid .. "/status"))
  local text = f:read("a")
  f:close()
  return tonumber(text:match("VmRSS:%s*(%d+)")), tonumber(text:match("VmHWM:%s*(%d+)"))
end

--- Whole content of a file, or nil.
function M.read_file(path)
  local f = io.open(path, "rb")
  if not f then return nil end
  local s = f:read("a")
  f:close()
  return s
end

--- Write `data` to `path`.
function M.write_file(path, data)
  local f = assert(io.open(path, "wb"))
  f:write(data)
  f:close()
end

--- A temporary directory and a function that removes it.
function M.tmpdir()
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local p = io.popen("mktemp -d " .. M.sh(tmp .. "/hypatos-mockspec-XXXXXX"))
  local dir = p:read("l")
  p:close()
  return dir, function() os.execute("rm -rf " .. M.sh(dir)) end
end

--- `n` random bytes from /dev/urandom.
function M.random_bytes(n)
  local f = assert(io.open("/dev/urandom", "rb"))
  local s = f:read(n)
  f:close()
  return s
end

return M
