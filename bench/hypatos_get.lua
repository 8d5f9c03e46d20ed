--- bench/hypatos_get.lua — the hypatos side of `make bench`: N × client.users:get(id)
-- (each answer decoded into Lua tables) on one client, hence one keep-alive connection.
--
--   HYPATOS_CLIENT_ID=… HYPATOS_CLIENT_SECRET=… HYPATOS_BASE_URL=http://127.0.0.1:PORT/v2 \
--     lua5.4 bench/hypatos_get.lua --id USER_ID --calls N [--warmup W]
--
-- The client gets its one token (client:token()) and makes W warm-up calls untimed, then
-- times the N calls: wall time with luasystem's monotonic clock (socket.gettime as a
-- fallback) and this process's CPU time with os.clock() (clock(3): user + sys CPU time
-- of the whole process, as getrusage in raw_get.c). Every answer is checked (a user with
-- the asked id). Prints one JSON line on stdout; exits 1 on any failed call.

local hypatos = require "hypatos"

local function fail(fmt, ...)
  io.stderr:write("hypatos_get: ", fmt:format(...), "\n")
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
    else fail("usage: lua bench/hypatos_get.lua --id USER_ID --calls N [--warmup W]") end
    i = i + 2
  end
end
if not args.id or not args.calls or args.calls < 1 or args.calls % 1 ~= 0
  or not args.warmup or args.warmup < 0 or args.warmup % 1 ~= 0 then
  fail("--id and a positive --calls are required")
end

local proc = require "bench.proc"
local monotime, user_sys = proc.monotime, proc.user_sys

-- Options (credentials, base URL) come from the HYPATOS_* environment variables.
local c = hypatos.new({})
local tok, terr = c:token()
if not tok then fail("token: %s", tostring(terr)) end

local id = args.id
local function calls(n)
  for i = 1, n do
    local user, meta = c.users:get(id)
    if not user then fail("call %d: %s", i, tostring(meta)) end
    if user.id ~= id then fail("call %d: got user %s, not %s", i, tostring(user.id), id) end
  end
end

calls(args.warmup)
collectgarbage("collect") -- start the timed loop with no garbage left from set-up

local u0, s0 = user_sys()
local c0, t0 = os.clock(), monotime()
calls(args.calls)
local t1, c1 = monotime(), os.clock()
local u1, s1 = user_sys()

local stats = c:stats()
print(hypatos.json.encode({
  impl = "hypatos", ok = true, calls = args.calls, warmup = args.warmup,
  wall_s = t1 - t0, cpu_s = c1 - c0, user_s = u0 and u1 - u0, sys_s = s0 and s1 - s0,
  requests = stats.requests, token_requests = stats.token_requests,
  lua = (jit and jit.version) or _VERSION, lua_kb = math.floor(collectgarbage("count")),
}))
c:close()
