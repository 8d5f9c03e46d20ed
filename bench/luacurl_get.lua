--- bench/luacurl_get.lua — the Lua peer of the "get" benchmark of `make bench` (bench/get.lua): the
-- loop a user would write by hand with a Lua binding of libcurl and lua-cjson instead of hypatos.
--
--   HYPATOS_CLIENT_ID=… HYPATOS_CLIENT_SECRET=… HYPATOS_BASE_URL=http://127.0.0.1:PORT/v2 \
--     luajit bench/luacurl_get.lua --id USER_ID --calls N [--warmup W] [--user-agent UA]
--
-- The binding is Debian's lua-curl 0.3.0 (module `curl`, the FreePOPs binding: easy_init, setopt,
-- perform; no getinfo), the only libcurl binding Debian packages; it is built for Lua 5.1 and 5.2
-- only, so this runs under LuaJIT (or lua5.1), not Lua 5.4. It is not Lua-cURLv3 (module `cURL`),
-- which Debian does not package. `tools/deps.sh --bench` installs it.
-- What it does: fetches a token (POST {base}/auth/token, client credentials in HTTP Basic auth,
-- on a handle of its own, untimed), then on one easy handle kept alive for every call: GET
-- {base}/users/{id} with the headers hypatos sends (Authorization: Bearer, Accept:
-- application/json, the User-Agent given) and raw_get.c's options where the binding has them
-- (NOSIGNAL, ACCEPT_ENCODING "", the timeouts; it refuses PATH_AS_IS, PROTOCOLS_STR and
-- TCP_KEEPALIVE, which change nothing on a loopback GET); the body collected into a table by the
-- write callback, table.concat, cjson.decode, the user's id checked.
-- FAILONERROR stands for the status check (no getinfo): an HTTP error is a failed perform.
-- W warm-up calls untimed, then N timed: wall time (monotonic) and CPU time (os.clock; user and
-- sys from /proc) as bench/hypatos_get.lua. Prints one JSON line; exits 1 on any failure.

local curl = require "curl"
local cjson = require "cjson"
local proc = require "bench.proc"

local function fail(fmt, ...)
  io.stderr:write("luacurl_get: ", fmt:format(...), "\n")
  os.exit(1)
end

local args = { calls = 1000, warmup = 100 }
do
  local i = 1
  while i <= #arg do
    local k, v = arg[i], arg[i + 1]
    if k == "--id" and v then args.id = v
    elseif k == "--calls" and v then args.calls = tonumber(v)
    elseif k == "--warmup" and v then args.warmup = tonumber(v)
    elseif k == "--user-agent" and v then args.user_agent = v
    else fail("usage: luajit bench/luacurl_get.lua --id USER_ID --calls N [--warmup W] [--user-agent UA]") end
    i = i + 2
  end
end
if not args.id or not args.calls or args.calls < 1 or args.calls % 1 ~= 0
  or not args.warmup or args.warmup < 0 or args.warmup % 1 ~= 0 then
  fail("--id and a positive --calls are required")
end
local base, client_id, secret = os.getenv("HYPATOS_BASE_URL"), os.getenv("HYPATOS_CLIENT_ID"),
  os.getenv("HYPATOS_CLIENT_SECRET")
if not base or not client_id or not secret then fail("HYPATOS_BASE_URL, _CLIENT_ID and _CLIENT_SECRET are needed") end

-- The token, on a handle of its own.
local token
do
  local t, chunks = curl.easy_init(), {}
  t:setopt(curl.OPT_URL, base .. "/auth/token")
  t:setopt(curl.OPT_USERPWD, client_id .. ":" .. secret)
  t:setopt(curl.OPT_POSTFIELDS, "grant_type=client_credentials")
  t:setopt(curl.OPT_FAILONERROR, 1)
  t:setopt(curl.OPT_WRITEFUNCTION, function(s) chunks[#chunks + 1] = s; return #s end)
  local rc, msg = t:perform()
  if rc ~= 0 then fail("token: %s (%s)", tostring(msg), tostring(rc)) end
  token = cjson.decode(table.concat(chunks)).access_token
  if type(token) ~= "string" then fail("token: no access_token") end
end

local h = curl.easy_init()
local chunks, n = {}, 0
h:setopt(curl.OPT_URL, base .. "/users/" .. args.id)
h:setopt(curl.OPT_HTTPHEADER, { "Authorization: Bearer " .. token, "Accept: application/json" })
if args.user_agent then h:setopt(curl.OPT_USERAGENT, args.user_agent) end
h:setopt(curl.OPT_NOSIGNAL, 1)
h:setopt(curl.OPT_ACCEPT_ENCODING, "")
h:setopt(curl.OPT_CONNECTTIMEOUT_MS, 10000)
h:setopt(curl.OPT_TIMEOUT_MS, 60000)
h:setopt(curl.OPT_HTTPGET, 1)
h:setopt(curl.OPT_FAILONERROR, 1)
h:setopt(curl.OPT_WRITEFUNCTION, function(s)
  n = n + 1
  chunks[n] = s
  return #s
end)

local id = args.id
local function calls(count)
  for i = 1, count do
    n = 0
    local rc, msg = h:perform()
    if rc ~= 0 then fail("call %d: %s (%s)", i, tostring(msg), tostring(rc)) end
    local user = cjson.decode(table.concat(chunks, "", 1, n))
    if user.id ~= id then fail("call %d: got user %s, not %s", i, tostring(user.id), id) end
  end
end

calls(args.warmup)
collectgarbage("collect")

local monotime = proc.monotime
local u0, s0 = proc.user_sys()
local c0, t0 = os.clock(), monotime()
calls(args.calls)
local t1, c1 = monotime(), os.clock()
local u1, s1 = proc.user_sys()

print(cjson.encode({
  impl = "luacurl", ok = true, calls = args.calls, warmup = args.warmup,
  wall_s = t1 - t0, cpu_s = c1 - c0, user_s = u0 and u1 - u0, sys_s = s0 and s1 - s0,
  token_requests = 1, lua = (jit and jit.version) or _VERSION, binding = curl._VERSION,
  lua_kb = math.floor(collectgarbage("count")),
}))
