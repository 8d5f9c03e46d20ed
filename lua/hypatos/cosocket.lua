--- One HTTP/1.1 attempt over nginx cosockets (`ngx.socket.tcp`): the transport of
-- the OpenResty driver (`hypatos.ngx`). It performs a `send` action of the
-- engine (`call:step`) and returns the result table the engine takes back:
-- `{status, header_block, body, body_in_file, elapsed}` or `{error, sent, message}` (with
-- `status` and `header_block` when a head had arrived).
--
-- Connections are kept alive in nginx's per-worker pool (keyed by scheme, host
-- and port), shared by every client of the worker. A connection goes back to
-- the pool only after a complete answer with nothing left over and framed one
-- way only (RFC 9112 §6.3). A connection taken from the pool is looked at
-- before it carries a request (`core.cosocket_stale`): one with bytes nobody
-- asked for (a stray second answer) or closed by the server is closed, and the
-- next is taken. Where ngx_lua cannot show the socket (`core.cosocket_peeks()`
-- false), a pool is used only once nginx's event loop has run since a
-- connection last went back to it (nginx closes an idle pooled connection that
-- receives anything). `act.fresh` asks for a new connection (requests that must
-- not be re-sent), which is closed after its answer: nothing would reuse it.
-- TLS is verified against nginx's `lua_ssl_trusted_certificate`. Bodies stream
-- from `act.body_file` and, for 2xx answers, to `act.output` (a temporary file
-- made by `core.tmpfile`, renamed into place once complete) in 64 KiB pieces.
-- A 2xx answer kept in memory larger than `act.max_body_size` bytes fails the
-- attempt ("too_large"); other answers kept in memory are truncated at 1 MiB.
-- URLs in messages show scheme, host and path only (`core.show_url`). Never
-- raises for network trouble. The HTTP/1.1 wire protocol over a connection (the
-- buffered reader, heads, bodies, the request) is `hypatos.http1`'s; this module
-- has the connections: URLs, proxies and their tunnels, nginx's pool, attempts.
-- @internal hypatos.cosocket

local core = require "hypatos.core"
local http1 = require "hypatos.http1"

local M = {}

local ngx = ngx
local ERROR_BODY_MAX = 1024 * 1024 -- bytes of a non-2xx body kept (the rest is read and dropped)
M.POOL_SIZE = 32
M.POOL_IDLE_MS = 60000
--- How a connection taken from a pool is checked (see the module comment): true, on the
-- socket itself; false, by waiting for a turn of nginx's event loop (settable for tests).
M.PEEK = core.cosocket_peeks()

local find, lower, format, sub, byte = string.find, string.lower, string.format, string.sub, string.byte
local floor, min = math.floor, math.min
local new_reader, moved, read_head, send_request = http1.reader, http1.moved, http1.read_head, http1.send_request
local read_length, read_chunked, sink_result = http1.read_length, http1.read_chunked, http1.sink_result
local digits, keeps_alive, ms_left = http1.digits, http1.keeps_alive, http1.ms_left
local release_reader = http1.release
local cosocket_stale = core.cosocket_stale

--- The present (`ngx.now()` is the event loop's cached time: update it first).
-- @treturn number seconds
local function now()
  ngx.update_time()
  return ngx.now()
end

--- Host and port of an authority (the part of a URL between "//" and the path) → a table
-- {host, port, authority, pool, connect_opts}, or nil.
-- @tparam string scheme "http" or "https" (the default port)
-- @tparam string authority host, "[IPv6]" or either with ":port"
-- @treturn ?table the authority's table
local function parse_authority(scheme, authority)
  local host, port = authority:match("^%[(.+)%]:?(%d*)$")
  if not host then host, port = authority:match("^([^:]+):?(%d*)$") end
  if not host then return nil end
  port = tonumber(port) or (scheme == "https" and 443 or 80)
  local pool = scheme .. "://" .. host .. ":" .. port
  return { host = host, port = port, authority = authority, pool = pool, connect_opts = { pool = pool } }
end

-- "scheme://authority" → what parse_authority made of it (a client talks to one or two
-- authorities: the API and the token endpoint; a few more are kept, then no more).
local authorities, n_authorities = {}, 0
-- The prefix ("scheme://authority") of the URL last parsed, its scheme and its table.
local last_prefix, last_scheme, last_au

--- Where the authority of `url` ends (before the first "/", "?" or "#" from `from` on), or nil.
-- @tparam string url the URL
-- @tparam number from where the authority starts
-- @treturn ?number the position of that "/", "?" or "#"
local function authority_end(url, from)
  local a = find(url, "/", from, true)
  local q = find(url, "?", from, true)
  if q and (not a or q < a) then a = q end
  q = find(url, "#", from, true)
  if q and (not a or q < a) then a = q end
  return a
end

--- Splits an http(s) URL → scheme, host, port, request target (path and query), authority,
-- and the authority's table (its pool name).
-- @tparam string url the URL
-- @treturn[1] string scheme
-- @treturn[1] string host
-- @treturn[1] number port
-- @treturn[1] string request target
-- @treturn[1] string authority
-- @treturn[1] table the authority's table
-- @return[2] nil (not an http(s) URL, or no host in it)
local function parse_url(url)
  local p = last_prefix
  if p and find(url, p, 1, true) == 1 then -- the same authority as the last URL (no pattern)
    local n = #p
    local c = byte(url, n + 1)
    if c == nil or c == 47 or c == 63 or c == 35 then -- the end, "/", "?", "#"
      local au = last_au
      return last_scheme, au.host, au.port, c and sub(url, n + 1) or "/", au.authority, au
    end
  end
  local e = find(url, "://", 1, true)
  local scheme = e and sub(url, 1, e - 1)
  if scheme ~= "http" and scheme ~= "https" then return nil end
  local a = authority_end(url, e + 3)
  local prefix = a and sub(url, 1, a - 1) or url
  local au = authorities[prefix]
  if not au then
    au = parse_authority(scheme, sub(prefix, e + 3))
    if not au then return nil end
    if n_authorities < 64 then
      authorities[prefix], n_authorities = au, n_authorities + 1
    end
  end
  last_prefix, last_scheme, last_au = prefix, scheme, au
  return scheme, au.host, au.port, a and sub(url, a) or "/", au.authority, au
end
M.parse_url = parse_url

--- A failure result for the engine.
-- @tparam string kind the failure's name (`error`)
-- @tparam boolean sent whether the request may have reached the server
-- @tparam string message what happened
-- @treturn table the result
local function failure(kind, sent, message)
  return { error = kind, sent = sent, message = message }
end

--- Maps a cosocket connect error message to the engine's failure names.
-- @tparam string err the error of `sock:connect`
-- @treturn table the failure result
local function connect_failure(err)
  if err == "timeout" then return failure("timeout", false, "connect timed out") end
  if find(err, "resolve", 1, true) or find(err, "not found", 1, true) or find(err, "resolver", 1, true) then
    return failure("resolve", false, "could not resolve host: " .. err)
  end
  return failure("connect", false, "could not connect: " .. err)
end

--- A reader (`hypatos.http1`) over `sock` on nginx's clock, all waits bounded by `deadline`.
-- @tparam table sock the cosocket
-- @tparam number deadline when every wait ends (seconds, as `ngx.now()`)
-- @tparam ?number ms the timeouts the socket has (ms; nil when unknown)
-- @treturn table the reader
local function reader(sock, deadline, ms)
  return new_reader(sock, deadline, ms, now)
end
M.reader = reader
M.read_head_lines = http1.read_head_lines
M.read_head = read_head

--- The proxy for an https URL to `host`: `act.proxy` (the client's option), else
-- `https_proxy`/`HTTPS_PROXY`/`all_proxy`/`ALL_PROXY` (workers see the variables
-- nginx.conf names with `env`), unless `no_proxy`/`NO_PROXY` lists the host ("*",
-- a name, or a domain suffix). Loopback is never proxied (the engine leaves
-- `act.proxy` out for it). Returns proxy host and port, nil, or nil and an error.
-- @tparam table act the action (`proxy`)
-- @tparam string url the request's URL
-- @tparam string host its host
-- @treturn ?string the proxy's host (nil: no proxy, or refused)
-- @treturn ?number|string the proxy's port, or why it is refused
local function proxy_for(act, url, host)
  local env = os.getenv
  local proxy = act.proxy
  if not proxy then
    if core.loopback_url(url) then return nil end
    proxy = env("https_proxy") or env("HTTPS_PROXY") or env("all_proxy") or env("ALL_PROXY")
    if not proxy or proxy == "" then return nil end
    local skip = env("no_proxy") or env("NO_PROXY") or ""
    for entry in skip:gmatch("[^,%s]+") do
      local suffix = entry:gsub("^%.", "")
      if entry == "*" or lower(host) == lower(suffix) or lower(host):sub(-#suffix - 1) == "." .. lower(suffix) then
        return nil
      end
    end
  end
  proxy = proxy:find("://", 1, true) and proxy or ("http://" .. proxy)
  -- user info first: no message may show it (nor a query: core.show_url)
  if proxy:match("^[^/?#]*://[^/?#]*@") then return nil, "a proxy with user info is refused" end
  local pscheme, phost, pport = parse_url(proxy)
  if pscheme ~= "http" then
    return nil, "only http:// proxies are supported inside nginx, got " .. core.show_url(proxy)
  end
  return phost, pport
end

--- Asks the proxy on sock for a tunnel to host:port (HTTP CONNECT). Returns true, or
-- nil and a failure result.
-- @tparam table sock the cosocket, connected to the proxy
-- @tparam string host the host to reach
-- @tparam number port its port
-- @tparam number deadline when the tunnel must be up (seconds, as `ngx.now()`)
-- @treturn[1] boolean true
-- @return[2] nil
-- @treturn[2] table the failure result
local function tunnel(sock, host, port, deadline)
  local authority = (find(host, ":", 1, true) and ("[" .. host .. "]") or host) .. ":" .. port
  local _, err = sock:send("CONNECT " .. authority .. " HTTP/1.1\r\nHost: " .. authority .. "\r\n\r\n")
  if err then return nil, failure("connect", false, "proxy: " .. tostring(err)) end
  local rd = reader(sock, deadline, nil)
  local status, herr = read_head(rd)
  if not status then return nil, failure("connect", false, "proxy: " .. tostring(herr)) end
  if status ~= 200 or not rd:drained() then
    return nil, failure("connect", false, format("proxy refused CONNECT %s: HTTP %d", authority, status))
  end
  return true
end

-- Turns of nginx's event loop, counted by a zero-delay timer armed whenever a
-- connection goes back to a pool (it runs once per turn, after the turn's events),
-- and the turn in which a connection last went back to each pool.
local turn, armed = 0, false
local released = {}

--- Counts a turn of the event loop (the zero-delay timer's callback).
local function next_turn()
  turn = turn + 1
  armed = false
end

--- Puts `sock` back into its pool, named `pool`, unless nginx refuses (it closes a
-- connection with unread bytes), and notes the turn.
-- @tparam table sock the cosocket
-- @tparam string pool the pool's name
local function pool_back(sock, pool)
  if not sock:setkeepalive(M.POOL_IDLE_MS, M.POOL_SIZE) or M.PEEK then return end
  released[pool] = turn
  if not armed then armed = (ngx.timer and ngx.timer.at(0, next_turn)) and true or false end
end

--- Without `M.PEEK`, before taking a connection from `pool`: when one went back to it in this very turn
-- (two calls in a row, or several coroutines), nginx has not looked at it since, and
-- bytes a server sent after its answer may already wait in it. Sleeping 1 ms runs the
-- event loop once: nginx closes a pooled connection that has received anything.
-- @tparam string pool the pool's name
local function settle(pool)
  if released[pool] == turn then
    released[pool] = nil -- the loop runs now (even if the timer could not be armed)
    ngx.sleep(0.001)
  end
end

--- Opens the connection for an attempt: pooled (or fresh), through a proxy's
-- tunnel when one applies, TLS verified. Returns the socket, its pool's name and the
-- timeouts it has (ms; nil when unknown), or nil and a failure result.
-- @tparam table act the action (`connect_timeout`, `proxy`, `fresh`)
-- @tparam string url its URL
-- @tparam string scheme "http" or "https"
-- @tparam string host the host
-- @tparam number port the port
-- @tparam table au the authority's table (`parse_url`)
-- @tparam number deadline when the attempt ends (seconds, as `ngx.now()`)
-- @treturn[1] table the socket
-- @treturn[1] string its pool's name
-- @treturn[1] ?number its timeouts (ms)
-- @return[2] nil
-- @treturn[2] table the failure result
local function connect(act, url, scheme, host, port, au, deadline)
  local connect_ms = floor(((act.connect_timeout and act.connect_timeout > 0) and act.connect_timeout
    or 10) * 1000)
  local left = ms_left(deadline, now)
  local phost, pport
  if scheme == "https" then
    phost, pport = proxy_for(act, url, host)
    if not phost and pport then return nil, failure("connect", false, pport) end -- pport: why not
  end
  local chost, cport = phost or host, pport or port
  local addr = chost == "localhost" and "127.0.0.1" or chost
  local pool = phost and (au.pool .. "@" .. phost .. ":" .. pport) or au.pool
  local connect_opts = not phost and au.connect_opts
  if act.fresh then
    -- a name no pool has: a new connection (closed after its answer, see perform)
    M.fresh_count = (M.fresh_count or 0) + 1
    pool = pool .. "#fresh" .. ngx.worker.pid() .. "-" .. M.fresh_count
    connect_opts = nil
  elseif not M.PEEK then
    settle(pool)
  end
  -- with M.PEEK, a pooled connection with bytes waiting (or closed by the server) is closed
  -- and the next taken; taking a pooled one never yields, so the pool only shrinks
  -- meanwhile, and once it is empty the connection is a new one
  local peek = M.PEEK and not act.fresh
  local sock
  repeat
    if sock then
      sock:close()
      M.stale_count = (M.stale_count or 0) + 1
    end
    sock = ngx.socket.tcp()
    sock:settimeouts(min(connect_ms, left), left, left)
    local ok, err = sock:connect(addr, cport, connect_opts or { pool = pool })
    if not ok then return nil, connect_failure(err) end
  until not (peek and sock:getreusedtimes() > 0 and cosocket_stale(sock) ~= false)
  if scheme == "https" and sock:getreusedtimes() == 0 then
    if phost then
      local tunneled, terr = tunnel(sock, host, port, deadline)
      if not tunneled then
        sock:close()
        return nil, terr
      end
      left = nil -- the tunnel's reader set the timeouts
    end
    -- false: no session object back (resty.core's path that returns one can trip its own
    -- assertion after a failed verification); verification itself is on. ngx_lua 0.10.23 may
    -- also report success for a handshake whose verification failed and close the socket:
    -- a socket closed by then counts as a failed handshake.
    local done, err
    done, err = sock:sslhandshake(false, host, true)
    if done and not sock:getreusedtimes() then
      done, err = nil, "the certificate did not verify (nginx closed the connection)"
    end
    if not done then
      sock:close()
      -- a certificate that does not verify is not retried; other handshake failures are
      local verify = find(tostring(err), "certificate", 1, true) or find(tostring(err), "verif", 1, true)
      return nil, failure(verify and "tls_verify" or "tls", false, "TLS handshake failed: " .. tostring(err))
    end
  end
  return sock, pool, left
end

--- One attempt of `perform` (fresh_retry: the second, on a fresh connection, after a
-- kept-alive one the server had closed) → the result, or nil and "retry".
-- @tparam table act the action
-- @tparam ?function progress the progress function (`perform`'s `opts`)
-- @tparam ?number max_body the in-memory cap when the action has none
-- @tparam string scheme the URL's scheme
-- @tparam string host its host
-- @tparam number port its port
-- @tparam string target its request target
-- @tparam string authority its authority (the Host field)
-- @tparam table au the authority's table
-- @tparam number t0 when `perform` started
-- @tparam number timeout the attempt's time (or a streamed transfer's stall limit), seconds
-- @tparam number hard the call's deadline (seconds, as `ngx.now()`; math.huge when none)
-- @tparam boolean fresh_retry the second attempt, on a fresh connection
-- @treturn[1] table the result
-- @return[2] nil
-- @treturn[2] string "retry"
local function attempt(act, progress, max_body, scheme, host, port, target, authority, au, t0, timeout, hard,
    fresh_retry)
  local a = act
  if fresh_retry then
    a = setmetatable({ fresh = true }, { __index = act })
  end
  local deadline = min(t0 + timeout, hard)
  local sock, pool, ms = connect(a, act.url, scheme, host, port, au, deadline)
  if not sock then return pool end
  local reused = sock:getreusedtimes() > 0
  local rd = reader(sock, deadline, ms)
  if act.stream then
    rd.stream, rd.timeout, rd.hard = true, timeout, hard
    moved(rd)
  end
  local ok, serr, skind = send_request(rd, act, target, authority, progress)
  if not ok then
    sock:close()
    if skind == "io" then return failure("io", false, serr) end
    if reused and not fresh_retry then return nil, "retry" end
    return failure(serr == "timeout" and "timeout" or "send", true, "send failed: " .. tostring(serr))
  end
  moved(rd)
  local status, block, version, cl, te, connection = read_head(rd)
  if not status then
    local err = block
    sock:close()
    if reused and not rd.got_any and not fresh_retry and err == "closed" then return nil, "retry" end
    if not rd.got_any and err == "closed" then return failure("closed", true, "empty reply from server") end
    return failure(err == "timeout" and "timeout" or "recv", true, "receive failed: " .. tostring(err))
  end
  local res = { status = status, header_block = block }
  local method = act.method
  local no_body = method == "HEAD" or status == 204 or status == 304
  -- framing (RFC 9112 §6.3): Transfer-Encoding beats Content-Length; the body is chunked
  -- when chunked is its last coding, else it runs until the server closes. An answer
  -- framed both ways may be a smuggling attempt: read as chunked, never reused
  local chunked = te and lower(te):match("([^,%s]+)[%s,]*$") == "chunked"
  local len = not te and cl and digits(cl) and tonumber(cl) -- 1*DIGIT (RFC 9110 §8.6), nothing else
  if cl and not te and not len and not no_body then
    sock:close()
    return failure("recv", true, "receive failed: malformed Content-Length")
  end
  local ok2xx = status >= 200 and status < 300
  if act.output and ok2xx then
    -- created exclusively with a random name, mode 0600 until it is complete (core.tmpfile)
    local file, ferr = core.tmpfile(act.output)
    if not file then
      sock:close()
      local f = failure("io", true, format("cannot write output file %q: %s", act.output, tostring(ferr)))
      f.status, f.header_block = status, block
      return f
    end
    rd.file = file
  else
    local max = act.max_body_size or max_body
    if ok2xx then
      rd.max = max
    else
      rd.max, rd.truncate = max and max < ERROR_BODY_MAX and max or ERROR_BODY_MAX, true
    end
  end
  local body_ok, berr, local_err = true, nil, nil
  local until_close = false
  if not no_body then
    if chunked then
      body_ok, berr, local_err = read_chunked(rd, progress)
    elseif len then
      body_ok, berr, local_err = read_length(rd, len, progress)
    else
      until_close = true
      body_ok, berr, local_err = read_length(rd, nil, progress)
    end
  end
  -- back to the pool only after a complete answer with nothing left over, framed one
  -- way; never a fresh connection (its pool has a name nothing else asks for)
  local keep = body_ok and not until_close and not (te and cl) and not a.fresh and rd:drained()
    and keeps_alive(connection, version)
  if keep then pool_back(sock, pool) else sock:close() end
  local file = rd.file
  if not body_ok then
    if file then file:abort() end
    local f
    if local_err == "too_large" then
      f = failure("too_large", true, berr)
    elseif local_err then
      f = failure("io", true, berr)
    else
      f = failure(berr == "timeout" and "timeout" or "partial", true, "receive failed: " .. tostring(berr))
    end
    f.status, f.header_block = status, block -- what had arrived: a 2xx means the request was carried out
    return f
  end
  if file then
    local committed, cerr = file:commit()
    if not committed then
      local f = failure("io", true, cerr)
      f.status, f.header_block = status, block
      return f
    end
    res.body_in_file = true
  elseif not no_body then
    res.body = sink_result(rd)
  end
  release_reader(rd)
  res.elapsed = now() - t0
  return res
end

--- Performs one `send` action. See the module comment.
-- @tparam table act the engine's action (`method`, `url`, `headers`, `body` |
--   `body_file` + `body_size`, `output`, `timeout`, `connect_timeout`, `deadline`, `stream`, `fresh`)
-- @tparam[opt] table opts `progress` (fn(dlnow, dltotal, ulnow, ultotal)), `max_body` (bytes:
--   the in-memory cap when the action has no `max_body_size`)
-- @tparam[opt] number t0 the present (as `hypatos.ngx.now()`), when the caller has just read
--   the clock; the result's `elapsed` counts from it
-- @treturn table the result for `call:step`
function M.perform(act, opts, t0)
  local progress, max_body
  if opts then progress, max_body = opts.progress, opts.max_body end
  t0 = t0 or now()
  local scheme, host, port, target, authority, au = parse_url(act.url)
  if not scheme then return failure("connect", false, "unsupported URL " .. core.show_url(tostring(act.url))) end
  local timeout = (act.timeout and act.timeout > 0) and act.timeout or 60
  -- a streamed transfer has a stall limit per operation; others a bound for the whole attempt;
  -- the call's deadline (act.deadline: seconds left) bounds both
  local hard = (act.deadline and act.deadline > 0) and t0 + act.deadline or math.huge
  local res, again = attempt(act, progress, max_body, scheme, host, port, target, authority, au, t0, timeout, hard,
    false)
  if again == "retry" then -- a kept-alive connection the server had closed
    res = attempt(act, progress, max_body, scheme, host, port, target, authority, au, t0, timeout, hard, true)
  end
  if res.error and not res.elapsed then res.elapsed = now() - t0 end
  return res
end

return M
