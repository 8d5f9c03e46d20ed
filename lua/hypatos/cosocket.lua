--- One HTTP/1.1 attempt over nginx cosockets (`ngx.socket.tcp`): the transport of
-- the OpenResty driver (`hypatos.ngx`). It performs a `send` action of the
-- engine (`call:step`) and returns the result table the engine takes back:
-- `{status, header_block, body, body_in_file, elapsed}` or `{error, sent, message}` (with
-- `status` and `header_block` when a head had arrived).
--
-- Connections are kept alive in nginx's per-worker pool (keyed by scheme, host
-- and port), shared by every client of the worker. A connection goes back to
-- the pool only after a complete answer with nothing left over and framed one
-- way only (RFC 9112 §6.3); it is reused only once nginx's event loop has run
-- since a connection last went back to that pool (nginx closes an idle pooled
-- connection that receives anything, so a stray second answer never reaches the
-- next request). `act.fresh` asks for a new connection (requests that must not
-- be re-sent), which is closed after its answer: nothing would reuse it.
-- TLS is verified against nginx's `lua_ssl_trusted_certificate`. Bodies stream
-- from `act.body_file` and, for 2xx answers, to `act.output` (a temporary file
-- made by `core.tmpfile`, renamed into place once complete) in 64 KiB pieces.
-- A 2xx answer kept in memory larger than `act.max_body_size` bytes fails the
-- attempt ("too_large"); other answers kept in memory are truncated at 1 MiB.
-- URLs in messages show scheme, host and path only (`core.show_url`). Never
-- raises for network trouble.
-- @internal hypatos.cosocket

local core = require "hypatos.core"

local M = {}

local ngx = ngx
local CHUNK = 65536
local GC_EVERY = 4 * 1048576 -- see send_request
local MAX_HEADER_BYTES = 256 * 1024
local ERROR_BODY_MAX = 1024 * 1024 -- bytes of a non-2xx body kept (the rest is read and dropped)
M.POOL_SIZE = 32
M.POOL_IDLE_MS = 60000

local find, lower, format, sub, gsub, byte = string.find, string.lower, string.format, string.sub, string.gsub,
  string.byte
local floor, min = math.floor, math.min
local http_head = core.http_head

--- The present (`ngx.now()` is the event loop's cached time: update it first).
local function now()
  ngx.update_time()
  return ngx.now()
end
local concat = table.concat

--- Host and port of an authority (the part of a URL between "//" and the path) → a table
-- {host, port, authority, pool, connect_opts}, or nil.
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
local function failure(kind, sent, message)
  return { error = kind, sent = sent, message = message }
end

--- Maps a cosocket connect error message to the engine's failure names.
local function connect_failure(err)
  if err == "timeout" then return failure("timeout", false, "connect timed out") end
  if find(err, "resolve", 1, true) or find(err, "not found", 1, true) or find(err, "resolver", 1, true) then
    return failure("resolve", false, "could not resolve host: " .. err)
  end
  return failure("connect", false, "could not connect: " .. err)
end

--- Milliseconds left until `deadline` (at least 1), for settimeouts.
local function ms_left(deadline)
  local ms = floor((deadline - now()) * 1000)
  return ms < 1 and 1 or ms
end

-- A reader over a cosocket: one table per attempt, `rd`, with the socket (`sock`), the
-- unread bytes (`buf` from `pos` on), and the attempt's state: `deadline` (every wait
-- ends by then: nginx restarts a read timeout whenever a byte arrives, so a server
-- trickling bytes could stretch a plain `receive` without end), `ms` (the timeouts last
-- set on the socket, in ms), `header_bytes` (counted against MAX_HEADER_BYTES),
-- `got_any` (a byte arrived), and for a streamed transfer (`stream`) `timeout` and
-- `hard`: its stall limit slides whenever bytes move (`moved`). Linear in the bytes read:
-- a piece that arrives replaces `buf` only once all of it is read, and what spans pieces
-- is collected in a table (no copy of the rest of the buffer per read).
local Reader = {}
Reader.__index = Reader

--- A new reader (see above) over `sock`, all waits bounded by `deadline`.
local function reader(sock, deadline, ms)
  return setmetatable({ sock = sock, buf = "", pos = 1, deadline = deadline, ms = ms, header_bytes = 0,
    got_any = false, stream = false, n = 0, max = false, truncate = false, file = false, first = nil }, Reader)
end

--- Bytes moved: a streamed transfer's stall limit starts again.
local function moved(rd)
  if rd.stream then rd.deadline = min(now() + rd.timeout, rd.hard) end
end

--- Waits for the next piece (only when every buffered byte is read).
local function fill(rd)
  local t = now()
  if t >= rd.deadline then return nil, "timeout" end
  local ms = floor((rd.deadline - t) * 1000)
  if ms < 1 then ms = 1 end
  local sock = rd.sock
  if ms ~= rd.ms then -- the time left only shrinks: set again once it has, to the ms
    sock:settimeouts(ms, ms, ms)
    rd.ms = ms
  end
  local data, err = sock:receiveany(CHUNK)
  if not data then return nil, err end
  rd.got_any = true
  if rd.stream then moved(rd) end
  rd.buf, rd.pos = data, 1
  return true
end

--- Moves the unread rest of `buf` into `parts` → the number of bytes moved.
local function take_rest(rd, parts)
  local buf, pos = rd.buf, rd.pos
  local n = #buf - pos + 1
  if n > 0 then
    parts[#parts + 1] = pos == 1 and buf or sub(buf, pos)
    rd.pos = #buf + 1
  end
  return n
end

--- Reads a line (`"*l"`, CR dropped, at most MAX_HEADER_BYTES) or exactly `pattern`
-- bytes (a number) → data | nil, err, partial (what was read of it when it failed).
-- @tparam string|number pattern `"*l"` or a byte count
function Reader:receive(pattern)
  local parts, have = nil, 0
  if pattern == "*l" then
    while true do
      local i = find(self.buf, "\n", self.pos, true)
      if i then
        local line = sub(self.buf, self.pos, i - 1)
        self.pos = i + 1
        if parts then
          parts[#parts + 1] = line
          line = concat(parts)
        end
        return (gsub(line, "\r", "")) -- as receive("*l"): every CR dropped
      end
      parts = parts or {}
      have = have + take_rest(self, parts)
      if have > MAX_HEADER_BYTES then return nil, "line too long" end
      local ok, err = fill(self)
      if not ok then return nil, err, concat(parts) end
    end
  end
  while #self.buf - self.pos + 1 < pattern - have do
    parts = parts or {}
    have = have + take_rest(self, parts)
    local ok, err = fill(self)
    if not ok then return nil, err, concat(parts) end
  end
  local need, pos = pattern - have, self.pos
  local data = sub(self.buf, pos, pos + need - 1)
  self.pos = pos + need
  if parts then
    parts[#parts + 1] = data
    data = concat(parts)
  end
  return data
end

--- Whatever has arrived, 1 to `max` bytes (waits for at least one) → data | nil, err, "".
-- @tparam number max the most bytes to return
function Reader:some(max)
  if self.pos > #self.buf then
    local ok, err = fill(self)
    if not ok then return nil, err, "" end
  end
  local buf, pos = self.buf, self.pos
  local data
  if pos == 1 and #buf <= max then
    data = buf
  else
    data = sub(buf, pos, pos + max - 1)
  end
  self.pos = pos + #data
  return data
end

--- True when no byte beyond what was read is buffered (the connection may be reused).
function Reader:drained() return self.pos > #self.buf end

--- Reads one CRLF-terminated line; counts bytes against the header limit.
local function read_line(rd)
  local line, err = rd:receive("*l")
  if not line then return nil, err end
  rd.header_bytes = rd.header_bytes + #line + 2
  if rd.header_bytes > MAX_HEADER_BYTES then return nil, "headers too large" end
  return line
end

--- Reads the status line and header fields of one answer line by line (skipping 1xx
-- answers): the path of heads that have not all arrived yet (see read_head), with the
-- same results. Repeated fields are joined with ", " (linear: parts collected, then joined).
local function read_head_lines(rd)
  while true do
    local line, err = read_line(rd)
    if not line then return nil, err end
    local version, status = line:match("^HTTP/(%d%.%d) (%d%d%d)")
    if not status then return nil, "malformed status line" end
    status = tonumber(status)
    local parts, order = {}, {}
    while true do
      local h, herr = read_line(rd)
      if not h then return nil, herr end
      if h == "" then break end
      local name, value = h:match("^([^:%s]+):[ \t]*(.-)[ \t]*$")
      if not name then return nil, "malformed header line" end
      if find(value, "%z") then return nil, "NUL byte in header" end
      name = lower(name)
      local list = parts[name]
      if not list then
        list = {}
        parts[name] = list
        order[#order + 1] = name
      end
      list[#list + 1] = value
    end
    if status >= 200 or status == 101 then
      local block = {}
      for _, name in ipairs(order) do
        if not find(name, "\0", 1, true) then -- as the core: such a name is left out
          block[#block + 1] = name .. "\0" .. concat(parts[name], ", ") .. "\0"
        end
      end
      local cl, te, conn = parts["content-length"], parts["transfer-encoding"], parts["connection"]
      return status, concat(block), version, cl and concat(cl, ", "), te and concat(te, ", "),
        conn and concat(conn, ", ")
    end
    -- a 100 Continue (or 1xx) answer: the real one follows; its bytes still count against
    -- the limit, so a storm of interim answers ends
  end
end
M.read_head_lines = read_head_lines

--- Reads the status line and header fields of one answer (skipping 1xx answers) →
-- status, header block, version, and the values of Content-Length, Transfer-Encoding
-- and Connection (nil when absent) | nil, err. The header block is "name\0value\0" for
-- each field, names in lower case, the values of a repeated field joined with ", " (what
-- `call:step` takes as a result's `header_block`). A head that is all in the buffer is
-- read by the core in one pass (`core.http_head`: the same rules, errors and limits as
-- the lines above); from where a head is cut off by the end of the buffer, line by line.
local function read_head(rd)
  if rd.pos > #rd.buf then
    local ok, err = fill(rd)
    if not ok then return nil, err end
  end
  local status, block, version, nextpos, used, cl, te, conn = http_head(rd.buf, rd.pos, rd.header_bytes,
    MAX_HEADER_BYTES)
  if status then
    rd.pos, rd.header_bytes = nextpos, used
    return status, block, version, cl, te, conn
  end
  if status == nil then return nil, block end
  rd.pos, rd.header_bytes = block, version -- where the cut head starts, the bytes before it
  return read_head_lines(rd)
end
M.read_head = read_head
M.reader = reader

-- The body's sink, kept in the reader: into `rd.file` (a core.tmpfile), or in memory
-- (`rd.first`, then `rd.pieces` once there is more than one piece; `rd.n` bytes): at most
-- `rd.max` bytes (more fails the transfer), or, with `rd.truncate`, the first `rd.max`
-- bytes (the rest is dropped).

--- Keeps a piece of the body in memory.
local function keep_piece(rd, data)
  if rd.first == nil then
    rd.first = data
  else
    local pieces = rd.pieces
    if not pieces then
      pieces = { rd.first }
      rd.pieces = pieces
    end
    pieces[#pieces + 1] = data
  end
end

--- Appends `data` to the body → true | nil, message, "too_large" (over `max` without
-- `truncate`).
local function sink_write(rd, data)
  local file = rd.file
  if file then return file:write(data) end
  local max, n = rd.max, rd.n
  if max and n + #data > max then
    if not rd.truncate then return nil, format("answer larger than max_body_size (%d bytes)", max), "too_large" end
    if n < max then keep_piece(rd, sub(data, 1, max - n)) end
    rd.n = max
    return true
  end
  rd.n = n + #data
  keep_piece(rd, data)
  return true
end

--- The bytes kept in memory, as one string.
local function sink_result(rd)
  if rd.pieces then return concat(rd.pieces) end
  return rd.first or ""
end

--- Reads a body of `len` bytes (or until close when len is nil) into the sink.
local function read_length(rd, len, progress)
  local got = 0
  while len == nil or got < len do
    local want = len and min(CHUNK, len - got) or CHUNK
    local data, err, partial = rd:some(want)
    if not data then
      if len == nil and err == "closed" then
        if partial and partial ~= "" then
          local ok, werr, wkind = sink_write(rd, partial)
          if not ok then return nil, werr, wkind or true end
        end
        return true
      end
      return nil, err
    end
    got = got + #data
    local ok, werr, wkind = sink_write(rd, data)
    if not ok then return nil, werr, wkind or true end
    if progress then progress(got, len or 0) end
  end
  return true
end

--- Reads a chunked body into the sink.
local function read_chunked(rd, progress)
  local got = 0
  while true do
    local line, err = rd:receive("*l")
    if not line then return nil, err end
    local hex = line:match("^%s*(%x+)%s*$") or line:match("^%s*(%x+)%s*;")
    local size = hex and #hex <= 15 and tonumber(hex, 16) -- more digits: no real chunk is that big
    if not size then return nil, "malformed chunk size" end
    if size == 0 then
      repeat -- trailer fields, up to the empty line
        line, err = rd:receive("*l")
        if not line then return nil, err end
      until line == ""
      return true
    end
    local ok, rerr, local_err = read_length(rd, size, nil)
    if not ok then return nil, rerr, local_err end
    got = got + size
    if progress then progress(got, 0) end
    local crlf, cerr = rd:receive(2)
    if not crlf then return nil, cerr end -- a timeout or a close is one, not a malformed chunk
    if crlf ~= "\r\n" then return nil, "malformed chunk" end
  end
end

-- Header names in lower case, by name (the few a client sends; at most 256 kept).
local lowered, n_lowered = {}, 0

-- The header lines last made (`block`) and the names and values they were made of, in
-- the order pairs() gave them: the next request of a client sends the same ones.
local last = { n = -1, block = "" }

--- The header lines of `headers` ("Name: value\r\n" each; Host, Content-Length,
-- Transfer-Encoding and Connection are the transport's own and left out).
local function request_lines(headers)
  local i, same = 0, true
  for name, value in pairs(headers) do
    if same and (last[i + 1] ~= name or last[i + 2] ~= value) then same = false end
    i = i + 2
  end
  if same and i == last.n then return last.block end
  local lines, made = {}, { n = i }
  i = 0
  for name, value in pairs(headers) do
    made[i + 1], made[i + 2] = name, value
    i = i + 2
    local l = lowered[name]
    if not l then
      l = lower(name)
      if n_lowered < 256 then lowered[name], n_lowered = l, n_lowered + 1 end
    end
    if l ~= "host" and l ~= "content-length" and l ~= "transfer-encoding" and l ~= "connection" then
      lines[#lines + 1] = name .. ": " .. value .. "\r\n"
    end
  end
  made.block = concat(lines)
  last = made
  return made.block
end

--- Writes the request: head, then the body (from memory or streamed from a file, each
-- piece bounded by `rd.deadline`).
local function send_request(rd, act, target, authority, progress)
  local sock = rd.sock
  local headers = act.headers
  local size = act.body and #act.body or act.body_size
  local _, err = sock:send(act.method .. " " .. target .. " HTTP/1.1\r\nHost: " .. authority .. "\r\n"
    .. (headers and request_lines(headers) or "") .. (size and format("Content-Length: %d\r\n", size) or "")
    .. "\r\n")
  if err then return nil, err end
  if act.body and #act.body > 0 then
    _, err = sock:send(act.body)
    if err then return nil, err end
  elseif act.body_file then
    local f, ferr = io.open(act.body_file, "rb")
    if not f then return nil, "cannot read " .. act.body_file .. ": " .. tostring(ferr), "io" end
    local sent = 0
    while true do
      local data = f:read(CHUNK)
      if not data then break end
      if now() >= rd.deadline then
        f:close()
        return nil, "timeout"
      end
      local ms = ms_left(rd.deadline)
      sock:settimeouts(ms, ms, ms)
      rd.ms = ms
      _, err = sock:send(data)
      if err then
        f:close()
        return nil, err
      end
      sent = sent + #data
      -- each piece is a new 64 KiB string, and LuaJIT's collector lags behind such a
      -- stream: a full collection every GC_EVERY bytes (the live heap is small, so it
      -- costs little) keeps the worker's memory flat
      if sent % GC_EVERY < CHUNK then collectgarbage() end
      moved(rd)
      if progress then progress(0, 0, sent, size or 0) end
    end
    f:close()
    if size and sent ~= size then
      return nil, format("%s changed while it was sent (%d of %d bytes)", act.body_file, sent, size), "io"
    end
  end
  return true
end

--- The proxy for an https URL to `host`: `act.proxy` (the client's option), else
-- `https_proxy`/`HTTPS_PROXY`/`all_proxy`/`ALL_PROXY` (workers see the variables
-- nginx.conf names with `env`), unless `no_proxy`/`NO_PROXY` lists the host ("*",
-- a name, or a domain suffix). Loopback is never proxied (the engine leaves
-- `act.proxy` out for it). Returns proxy host and port, nil, or nil and an error.
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
local function pool_back(sock, pool)
  if not sock:setkeepalive(M.POOL_IDLE_MS, M.POOL_SIZE) then return end
  released[pool] = turn
  if not armed then armed = (ngx.timer and ngx.timer.at(0, next_turn)) and true or false end
end

--- Before taking a connection from `pool`: when one went back to it in this very turn
-- (two calls in a row, or several coroutines), nginx has not looked at it since, and
-- bytes a server sent after its answer may already wait in it. Sleeping 1 ms runs the
-- event loop once: nginx closes a pooled connection that has received anything.
local function settle(pool)
  if released[pool] == turn then
    released[pool] = nil -- the loop runs now (even if the timer could not be armed)
    ngx.sleep(0.001)
  end
end

--- Opens the connection for an attempt: pooled (or fresh), through a proxy's
-- tunnel when one applies, TLS verified. Returns the socket, its pool's name and the
-- timeouts it has (ms; nil when unknown), or nil and a failure result.
local function connect(act, url, scheme, host, port, au, deadline)
  local sock = ngx.socket.tcp()
  local connect_ms = floor(((act.connect_timeout and act.connect_timeout > 0) and act.connect_timeout
    or 10) * 1000)
  local left = ms_left(deadline)
  sock:settimeouts(min(connect_ms, left), left, left)
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
  else
    settle(pool)
  end
  local ok, err = sock:connect(addr, cport, connect_opts or { pool = pool })
  if not ok then return nil, connect_failure(err) end
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
    local done
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

--- True when `s` is one or more ASCII digits (and nothing else).
local function digits(s)
  local n = #s
  if n == 0 then return false end
  for i = 1, n do
    local c = byte(s, i)
    if c < 48 or c > 57 then return false end
  end
  return true
end

--- True when the answer lets its connection be reused: HTTP/1.1 without
-- `Connection: close`, or HTTP/1.0 with `Connection: keep-alive`.
local function keeps_alive(connection, version)
  local conn = lower(connection or "")
  if find(conn, "close", 1, true) then return false end
  return version ~= "1.0" or find(conn, "keep-alive", 1, true) ~= nil
end

--- One attempt of `perform` (fresh_retry: the second, on a fresh connection, after a
-- kept-alive one the server had closed) → the result, or nil and "retry".
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
  local keep = body_ok and not until_close and not (te and cl) and not a.fresh and rd.pos > #rd.buf
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
  res.elapsed = now() - t0
  return res
end

--- Performs one `send` action. See the module comment.
-- @tparam table act the engine's action (`method`, `url`, `headers`, `body` |
--   `body_file` + `body_size`, `output`, `timeout`, `connect_timeout`, `deadline`, `stream`, `fresh`)
-- @tparam[opt] table opts `progress` (fn(dlnow, dltotal, ulnow, ultotal)), `max_body` (bytes:
--   the in-memory cap when the action has no `max_body_size`)
-- @treturn table the result for `call:step`
function M.perform(act, opts)
  local progress, max_body
  if opts then progress, max_body = opts.progress, opts.max_body end
  local t0 = now()
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
