--- The HTTP/1.1 wire protocol of the OpenResty transport (`hypatos.cosocket`) over one
-- connected socket: a buffered reader with a deadline on every wait, the head of an
-- answer (`core.http_head` in one pass, else line by line), bodies framed by length, by
-- chunks or by the end of the connection into a sink (a `core.tmpfile` or memory, with
-- its size caps), and the request (head, then the body from memory or a file). What
-- is needed of the socket: `receiveany`, `send` and `settimeouts`, as nginx's cosockets
-- have them. Knows nothing of nginx: the clock comes with each reader (`reader`), and
-- connections, pools, proxies and attempts are `hypatos.cosocket`'s. Never raises for
-- network trouble: failures come back as nil and a message.
-- @internal hypatos.http1

local core = require "hypatos.core"

local M = {}

local CHUNK = 65536
local GC_EVERY = 4 * 1048576 -- see send_request
local MAX_HEADER_BYTES = 256 * 1024

local find, lower, format, sub, gsub, byte = string.find, string.lower, string.format, string.sub, string.gsub,
  string.byte
local floor, min = math.floor, math.min
local concat = table.concat
local http_head = core.http_head

--- Milliseconds left until `deadline` (at least 1), for settimeouts.
-- @tparam number deadline when the wait must end (seconds, on `now`'s clock)
-- @tparam function now the clock: returns the present in seconds
-- @treturn number milliseconds, at least 1
local function ms_left(deadline, now)
  local ms = floor((deadline - now()) * 1000)
  return ms < 1 and 1 or ms
end

-- A reader over a cosocket: one table per attempt, `rd`, with the socket (`sock`), the
-- clock (`now`), the unread bytes (`buf` from `pos` on), and the attempt's state:
-- `deadline` (every wait ends by then: nginx restarts a read timeout whenever a byte
-- arrives, so a server trickling bytes could stretch a plain `receive` without end),
-- `ms` (the timeouts last set on the socket, in ms), `header_bytes` (counted against
-- MAX_HEADER_BYTES), `got_any` (a byte arrived), and for a streamed transfer (`stream`) `timeout` and
-- `hard`: its stall limit slides whenever bytes move (`moved`). Linear in the bytes read:
-- a piece that arrives replaces `buf` only once all of it is read, and what spans pieces
-- is collected in a table (no copy of the rest of the buffer per read).
local Reader = {}
Reader.__index = Reader

local spare, nspare = {}, 0 -- readers given back (release), for the next attempts

--- A new reader (see above) over `sock`, all waits bounded by `deadline`.
-- @tparam table sock a connected socket (`receiveany`, `send`, `settimeouts`)
-- @tparam number deadline when every wait ends (seconds, on `now`'s clock)
-- @tparam ?number ms the timeouts the socket has (ms; nil when unknown)
-- @tparam function now the clock: returns the present in seconds
-- @treturn table the reader
local function reader(sock, deadline, ms, now)
  if nspare == 0 then
    return setmetatable({ sock = sock, now = now, buf = "", pos = 1, deadline = deadline, ms = ms,
      header_bytes = 0, got_any = false, stream = false, n = 0, max = false, truncate = false, file = false,
      first = nil }, Reader)
  end
  local rd = spare[nspare]
  spare[nspare], nspare = nil, nspare - 1
  rd.sock, rd.now, rd.buf, rd.pos, rd.deadline, rd.ms = sock, now, "", 1, deadline, ms
  rd.header_bytes, rd.got_any, rd.stream, rd.n, rd.max, rd.truncate = 0, false, false, 0, false, false
  return rd
end

--- Gives a reader back once its attempt is over and nothing reads it any more (the next
-- attempt takes it instead of a new table): it keeps nothing of this one.
-- @tparam table rd the reader
local function release(rd)
  if nspare >= 16 then return end
  rd.sock, rd.buf, rd.first, rd.pieces, rd.file, rd.timeout, rd.hard = nil, "", nil, nil, false, nil, nil
  nspare = nspare + 1
  spare[nspare] = rd
end

--- Bytes moved: a streamed transfer's stall limit starts again.
-- @tparam table rd the reader
local function moved(rd)
  if rd.stream then rd.deadline = min(rd.now() + rd.timeout, rd.hard) end
end

--- Waits for the next piece (only when every buffered byte is read).
-- @tparam table rd the reader
-- @treturn[1] boolean true: `buf` holds the new piece
-- @return[2] nil
-- @treturn[2] string the socket's error ("timeout", "closed", ...)
local function fill(rd)
  local t = rd.now()
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
-- @tparam table rd the reader
-- @tparam table parts the pieces collected so far (appended to)
-- @treturn number the bytes moved
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
-- @treturn[1] string the line or the bytes
-- @return[2] nil
-- @treturn[2] string the error ("timeout", "closed", "line too long", ...)
-- @treturn[2] string what was read of it
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
-- @treturn[1] string the bytes
-- @return[2] nil
-- @treturn[2] string the error
-- @treturn[2] string ""
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
-- @treturn boolean
function Reader:drained() return self.pos > #self.buf end

--- Reads one CRLF-terminated line; counts bytes against the header limit.
-- @tparam table rd the reader
-- @treturn[1] string the line (CR dropped)
-- @return[2] nil
-- @treturn[2] string the error ("headers too large", or the reader's)
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
-- @tparam table rd the reader
-- @return as read_head
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

--- Reads the status line and header fields of one answer (skipping 1xx answers) →
-- status, header block, version, and the values of Content-Length, Transfer-Encoding
-- and Connection (nil when absent) | nil, err. The header block is "name\0value\0" for
-- each field, names in lower case, the values of a repeated field joined with ", " (what
-- `call:step` takes as a result's `header_block`). A head that is all in the buffer is
-- read by the core in one pass (`core.http_head`: the same rules, errors and limits as
-- the lines above); from where a head is cut off by the end of the buffer, line by line.
-- @tparam table rd the reader
-- @treturn[1] number status
-- @treturn[1] string header block
-- @treturn[1] string version ("1.1", "1.0")
-- @treturn[1] ?string Content-Length
-- @treturn[1] ?string Transfer-Encoding
-- @treturn[1] ?string Connection
-- @return[2] nil
-- @treturn[2] string the error
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

-- The body's sink, kept in the reader: into `rd.file` (a core.tmpfile), or in memory
-- (`rd.first`, then `rd.pieces` once there is more than one piece; `rd.n` bytes): at most
-- `rd.max` bytes (more fails the transfer), or, with `rd.truncate`, the first `rd.max`
-- bytes (the rest is dropped).

--- Keeps a piece of the body in memory.
-- @tparam table rd the reader (its sink)
-- @tparam string data the piece
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
-- @tparam table rd the reader (its sink)
-- @tparam string data the bytes
-- @treturn[1] boolean true
-- @return[2] nil
-- @treturn[2] string the message
-- @treturn[2] ?string "too_large" (else the file's failure)
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
-- @tparam table rd the reader (its sink)
-- @treturn string the body ("" when none was kept)
local function sink_result(rd)
  if rd.pieces then return concat(rd.pieces) end
  return rd.first or ""
end

--- Reads a body of `len` bytes (or until close when len is nil) into the sink.
-- @tparam table rd the reader
-- @tparam ?number len the body's length; nil: until the server closes
-- @tparam ?function progress called as progress(bytes so far, len or 0) after each piece
-- @treturn[1] boolean true
-- @return[2] nil
-- @treturn[2] string the error
-- @treturn[2] ?string|boolean a local failure (the sink's): "too_large", or true
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
-- @tparam table rd the reader
-- @tparam ?function progress called as progress(bytes so far, 0) after each chunk
-- @return as read_length
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
-- @tparam table headers name → value
-- @treturn string the lines
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

-- The pieces of a request head (method, target, authority, header lines, Content-Length), filled
-- in by send_request for each request.
local HEAD = { "", " ", "", " HTTP/1.1\r\nHost: ", "", "\r\n", "", "", "\r\n" }

--- Writes the request: head, then the body (from memory or streamed from a file, each
-- piece bounded by `rd.deadline`).
-- @tparam table rd the reader over the connection
-- @tparam table act the engine's action (`method`, `header_lines` or `headers`, `body` | `body_file` +
--   `body_size`)
-- @tparam string target the request target (path and query)
-- @tparam string authority the Host field
-- @tparam ?function progress called as progress(0, 0, bytes sent, size or 0) after each piece of a file
-- @treturn[1] boolean true
-- @return[2] nil
-- @treturn[2] string the error
-- @treturn[2] ?string "io" when the body file failed (the connection did not)
local function send_request(rd, act, target, authority, progress)
  local sock, now = rd.sock, rd.now
  -- the engine's actions carry their header lines ready (`header_lines`); others a table
  local lines = act.header_lines
  if not lines then
    local headers = act.headers
    lines = headers and request_lines(headers) or ""
  end
  local size = act.body and #act.body or act.body_size
  -- the head as pieces: the cosocket copies them into its buffer before it may wait, so
  -- no string of the whole head is made per request (and the table serves the next one)
  local head = HEAD
  head[1], head[3], head[5], head[7] = act.method, target, authority, lines
  head[8] = size and format("Content-Length: %d\r\n", size) or ""
  local _, err = sock:send(head)
  head[3], head[5], head[7] = "", "", "" -- nothing of this request stays referenced
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
      local ms = ms_left(rd.deadline, now)
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

--- True when `s` is one or more ASCII digits (and nothing else).
-- @tparam string s the text
-- @treturn boolean
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
-- @tparam ?string connection the Connection field
-- @tparam string version the answer's version ("1.1", "1.0")
-- @treturn boolean
local function keeps_alive(connection, version)
  local conn = lower(connection or "")
  if find(conn, "close", 1, true) then return false end
  return version ~= "1.0" or find(conn, "keep-alive", 1, true) ~= nil
end

M.reader = reader
M.release = release
M.read_head_lines = read_head_lines
M.moved = moved
M.read_head = read_head
M.read_length = read_length
M.read_chunked = read_chunked
M.sink_result = sink_result
M.send_request = send_request
M.digits = digits
M.keeps_alive = keeps_alive
M.ms_left = ms_left

return M
