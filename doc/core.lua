--- The C core, `hypatos.core`: the client, the engine, the libcurl transport.
-- This file holds no code: it documents the Lua-visible functions that
-- csrc/binding/*.c registers, for LDoc (`make docs`). `tools/doccheck.lua`
-- (`make lint`) fails when a function the C registers is missing here.
--
-- Users reach all of it through `require "hypatos"` (the same table, with the
-- Lua layer added: `hypatos.new` attaches the resources to every client). Use
-- `hypatos.core` directly only to write a driver of your own (`Client:prepare`,
-- `Call:step`, `core.multi`).
--
-- Every API call returns `value, meta` on success and `nil, err` on failure; it
-- never raises for network, HTTP or API failures. Misuse (an unknown option, a
-- wrong type, a closed client) raises.
-- @module hypatos.core

local core = {}

--- The library's version, e.g. `"0.1.0"`.
core.VERSION = "0.1.0"

--- The JSON null: what `json_decode` returns for `null`, and what to send to
-- clear a field (a merge patch, `projects:update`).
core.null = {}

--- The metatable `core.array` sets: tables with it are encoded as JSON arrays.
core.array_mt = {}

-- options --

--- The options of `new` (and `hypatos.new`). Every key is type-checked, unknown
-- keys raise naming the key, and the caller's table is never modified. The
-- README's "Options" section has the same table with every default.
-- @table Options
-- @tfield string client_id OAuth 2.0 client id (default `$HYPATOS_CLIENT_ID`).
--   Credentials come as a pair: pass both or neither.
-- @tfield string client_secret the client secret (default `$HYPATOS_CLIENT_SECRET`); never shown in
--   errors, hook data, logs or `tostring`
-- @tfield string region `"eu"` (default: `https://api.cloud.hypatos.ai/v2`) or `"us"`
--   (`https://api.cloud.hypatos.com/v2`)
-- @tfield string base_url the API root ending in `/v2` (default `$HYPATOS_BASE_URL`, else the
--   region's); beats `region`. `https://` only, `http://` to loopback hosts; no user info
-- @tfield string token_url the token endpoint (default `base_url .. "/auth/token"`)
-- @tfield string|{string,...} scope scopes to ask for (default: the server's)
-- @tfield number timeout seconds per attempt (> 0, default 60); for streamed bodies, inactivity
-- @tfield number connect_timeout seconds to connect, TCP + TLS (> 0, default 10)
-- @tfield number token_timeout seconds per token request attempt (> 0, default 30)
-- @tfield number deadline seconds for a whole call, retries and waits included (default: none)
-- @tfield integer max_retries retries after the first attempt (0–100, default 4)
-- @tfield number backoff_base first backoff ceiling in seconds (> 0, default 0.5)
-- @tfield number backoff_cap largest backoff ceiling in seconds (> 0, default 30)
-- @tfield number max_wait longest single wait (429 reset, pacing) in seconds (≥ 0, default 60);
--   a longer one fails at once as `rate_limited` with `retry_after`
-- @tfield boolean throttle pace requests from the rate-limit headers (default true)
-- @tfield integer max_body_size largest answer held in memory, in bytes after decompression
--   (default 64 MiB); a larger one fails as `decode`
-- @tfield string driver `"auto"` (default: nginx cosockets inside OpenResty, libcurl
--   elsewhere), `"curl"` or `"ngx"` (handled by `hypatos.new`, not by the core)
-- @tfield boolean|function debug `true`: one line per attempt on stderr (method, URL, status or
--   error, attempt, elapsed, rate-limit remaining; never a secret), or a function receiving each
--   line (default: on when `HYPATOS_DEBUG=1`; handled by `hypatos.new`, see `hypatos.debuglog`)
-- @tfield string ca_file PEM bundle to verify the server with (default: the system store)
-- @tfield string proxy proxy URL (default: libcurl's `HTTPS_PROXY`/`NO_PROXY`); loopback never
--   goes through a proxy
-- @tfield string user_agent prepended to `hypatos-lua/<version> (Lua x.y; libcurl/x.y.z)`
-- @tfield table token_cache `{get = fn(key [, refused]), set = fn(key, token [, ticket]) [, release =
--   fn(key, ticket [, err])]}`: share tokens between processes or nginx workers. `get` returns a
--   token table, nil (a miss; a second value, a ticket, makes this call the one that fetches),
--   a number (another fetch is out: ask again after that many seconds) or `{denied = {status,
--   message}}` (a refusal of these credentials, remembered: the call fails with it); a cache that
--   raises counts as a miss. `key` is an HMAC of the credentials (README "Token cache")
-- @tfield table store a shared store — `hypatos.redis.store{url = …}` (many hosts) or
--   `hypatos.ngx.store(name)` (the workers of one nginx); default: `hypatos.redis.store{url =
--   HYPATOS_REDIS_URL}` when that variable is set, `false` for none. It keeps the token (it covers
--   `token_cache`: the two cannot both be given) and the quota: every request asks it for a slot
--   first (`acquire(key, uid, obs, max_wait) → wait, reserved, fleet`, see `hypatos.store`); when it
--   fails the client paces alone with its share of the quota for 2 s, then asks it again
-- @tfield function on_request `fn(info)` before every attempt: `{method, url, attempt,
--   token_request, headers}` (no `Authorization`)
-- @tfield function on_response `fn(info)` after every attempt: `{method, url, attempt,
--   token_request, status, headers, elapsed}` or `{…, error, code, elapsed}`
-- @tfield function random the jitter source, `fn() → [0, 1)` (for tests)
local Options = {}

-- errors --

--- An error value: what a failed call returns as its second value (`nil, err`).
-- A table with `__tostring` (one readable line, no secret).
--
-- The kinds:
--
-- * `http` — the API answered with an error status (4xx, or 5xx after retries)
-- * `rate_limited` — 429 after retries, or a wait longer than `max_wait` (`retry_after` says how long)
-- * `auth` — the token endpoint refused the credentials or answered a token that cannot be sent,
--   or the API refused a fresh token too
-- * `network` — DNS, connect, TLS, a dropped connection (`code` is libcurl's)
-- * `timeout` — an attempt timed out, a `deadline` ran out, or `documents:wait` gave up (`document`)
-- * `decode` — a body that says it is JSON is not, or an answer larger than `max_body_size`
-- * `io` — a local file could not be read or written
-- * `invalid` — bad data caught before anything was sent (CR/LF in a header, an empty id, a file
--   name that cannot be sent, JSON that cannot be written)
-- @table Error
-- @tfield string kind what failed: one of the kinds listed above
-- @tfield string message what went wrong, readable
-- @tfield[opt] integer status the HTTP status
-- @tfield[opt] string title the API's problem title
-- @tfield[opt] string|table detail the API's detail (a 422 validation list stays a table)
-- @tfield[opt] string|table body the answer's body (decoded JSON or the raw text)
-- @tfield[opt] table headers the answer's headers (names in lower case)
-- @tfield boolean retryable the failure is transient and repeating the call is safe
-- @tfield[opt] number retry_after seconds the server asked to wait
-- @tfield integer attempts attempts made: the API's, or the token request's when the error is
--   about that request (`method` and `url` then name the token URL)
-- @tfield[opt] number elapsed seconds from the start of the call to its failure, retries and
--   waits included (`tostring(err)` shows it with the attempts: `5 attempts in 2.6 s`)
-- @tfield[opt] string method the HTTP method
-- @tfield[opt] string url the URL (with the token never in it)
-- @tfield[opt] integer code libcurl's error code
-- @tfield string outcome what the failed call may have done at the server (the API has no
--   idempotency key, so this is what a retry must go by): `"not_sent"` (nothing reached it: DNS,
--   connect, TLS handshake, refused before sending, bad data, or a call that changes nothing such
--   as `documents:wait`), `"unknown"` (the request may have been received; no status came back),
--   `"done"` (a 2xx status arrived and only the rest of the answer was lost: `status` and `headers`
--   say what is known), `"refused"` (the server answered with an error status). With several
--   attempts, the most telling one counts: done, then unknown, then refused, then not_sent
-- @tfield[opt] table document `documents:wait` timeouts: the last document seen
local Error = {}

-- module table --

--- Creates a client (the core's constructor; `hypatos.new` wraps it and adds
-- the resources and the driver choice).
-- @tparam[opt] Options opts the options; credentials default to the environment
-- @treturn Client the client
-- @raise on misuse, naming the option: `hypatos.new: option "timeout" must be > 0, got 0`
function core.new(opts) end

--- Makes an error value from a table (the constructor errors made in Lua use).
-- The table itself becomes the error; `retryable` defaults to false, `attempts` to 0,
-- `outcome` to `"not_sent"`.
-- @tparam table fields at least `kind` and `message` (strings); any field of `Error`
-- @treturn Error the same table, with the error metatable
-- @raise when `kind` or `message` is not a string
function core.error(fields) end

--- Whether a value is a hypatos error value.
-- @param v any value
-- @treturn boolean
function core.is_error(v) end

--- Encodes a value as JSON: exact integers, the shortest float that reads back
-- the same, sorted keys, `null` for `core.null`, `[]` for tables marked by `core.array`.
-- @param value a table, string, number, boolean or `core.null`
-- @treturn string the JSON text
-- @raise `json: … at <path>` for values JSON cannot hold (NaN, functions, invalid UTF-8,
--   sparse arrays), naming the path of the bad value
function core.json_encode(value) end

--- Decodes JSON text: integers stay integers, `null` is `core.null`, an empty
-- array comes back marked as an array (so it is sent back as `[]`).
-- @tparam string text JSON text
-- @return[1] the value
-- @treturn[2] nil
-- @treturn[2] string the problem
function core.json_decode(text) end

--- Marks a table as a JSON array, so that an empty one is sent as `[]` (`{}` is an object).
-- @tparam[opt] table t the table (default: a new one)
-- @treturn table t
function core.array(t) end

--- Wall-clock seconds, as the engine's clock reads them (`Call:step` takes them).
-- @treturn number seconds
function core.now() end

--- Compiles an operation for `Client:call`: method, path (with `{name}` placeholders),
-- whether a failed attempt may be re-sent, and its body.
-- @tparam string method the HTTP method
-- @tparam string path the path relative to `base_url`
-- @tparam boolean idempotent may be re-sent after it may have reached the server
-- @tparam[opt] string body nil (none), `"json"` (a table sent as JSON) or `"query"` (a table of
--   query parameters)
-- @treturn Op the operation
-- @raise on a method or path that cannot be sent, or another body
function core.op(method, path, idempotent, body) end

--- The SHA-1 of a string as 40 hex digits (libcrypto): the name Redis gives a script (`EVALSHA`).
-- @tparam string s the bytes
-- @treturn string the digest in hex
-- @raise when libcrypto fails
function core.sha1_hex(s) end

--- Blocks the process for a number of seconds (the libcurl driver's sleep).
-- Inside nginx use `ngx.sleep`.
-- @raise "hypatos: interrupted" at once when the standalone interpreter (lua, luajit)
--   gets SIGINT (Ctrl-C); `pcall` catches it, a second Ctrl-C ends the process
-- @tparam number seconds how long
function core.sleep(seconds) end

--- Blocks until the process is sent SIGINT, SIGTERM or SIGHUP, and takes the
-- signal (the interpreter's own handler does not run). For a foreground process
-- that only waits to be stopped, such as `hypatos serve`.
-- @treturn string "INT", "TERM" or "HUP"
-- @raise when the signal mask cannot be changed
function core.wait_signal() end

--- Whether a URL's host is a loopback address (parsed: 127.0.0.0/8, ::1,
-- localhost). Such traffic is never proxied, and may be plain `http://`.
-- @tparam string url the URL
-- @treturn boolean
function core.loopback_url(url) end

--- The parts of a URL that a message may show: scheme, host (and port) and
-- path, never user info, a query or a fragment
-- (`"https://id:pw@h:8/v2?key=x#f"` → `"https://h:8/v2"`). Every URL the
-- library echoes in an error message goes through this rule.
-- @tparam string url any URL (with or without a scheme)
-- @treturn string
function core.show_url(url) end

--- Reads the head of an HTTP/1.x answer (status line and header fields) that starts at
-- byte `pos` of `buf`, in one pass, skipping interim 1xx answers (not 101): what the
-- nginx cosocket driver's wire protocol (`hypatos.http1`) uses instead of reading it
-- line by line. Every `"\r"` is dropped, lines end at `"\n"`, each line counts its
-- length + 2 against `max`; field names are lowered and the values of a repeated field
-- joined with `", "`.
-- @tparam string buf the bytes received
-- @tparam number pos where the answer starts (1-based)
-- @tparam number used header bytes counted before (of interim answers)
-- @tparam number max the most header bytes allowed
-- @treturn[1] integer the status
-- @treturn[1] string the header block: `"name\0value\0"` for each field, in the order
--   they first came (a result's `header_block` for `Call:step`); a name holding a NUL
--   byte is left out
-- @treturn[1] string the HTTP version, e.g. `"1.1"`
-- @treturn[1] number the position after the head
-- @treturn[1] number the header bytes counted
-- @treturn[1] string|nil the value of Content-Length
-- @treturn[1] string|nil the value of Transfer-Encoding
-- @treturn[1] string|nil the value of Connection
-- @return[2] nil
-- @treturn[2] string why the head is refused: `"headers too large"`, `"malformed status line"`,
--   `"malformed header line"`, `"NUL byte in header"`
-- @return[3] false: `buf` ends inside a head
-- @treturn[3] number where that head starts
-- @treturn[3] number the header bytes counted before it
function core.http_head(buf, pos, used, max) end

--- Whether `core.cosocket_stale` can look at a cosocket's connection in this process:
-- true inside nginx with an ngx_lua that exports the socket's descriptor
-- (`ngx_http_lua_ffi_socket_tcp_hack_fd`, 0.10.16 and later), false elsewhere.
-- @treturn boolean
function core.cosocket_peeks() end

--- Whether a connected `ngx.socket.tcp` that nginx's keep-alive pool handed back must not
-- carry a request: bytes nobody asked for wait on its connection, or the server closed it.
-- One non-blocking `recv(MSG_PEEK)`; never blocks, never reads.
-- @tparam table sock the cosocket, connected
-- @treturn boolean|nil false: nothing waits (it may be used); true: bytes wait or it is
--   closed; nil: it cannot tell (see `core.cosocket_peeks`, or no connection)
function core.cosocket_stale(sock) end

--- The version of the libcurl in use, e.g. `"7.88.1"`.
-- @treturn string
function core.curl_version() end

--- Creates a multi: many attempts at once on this thread over one libcurl
-- multi handle (the transport of `client:map` in plain Lua).
-- @treturn Multi
function core.multi() end

--- Creates the temporary file of a download beside `dest`:
-- `<dest>.part-XXXXXX`, made by `mkstemp` (created exclusively, a random name,
-- mode 0600 while it is written: neither a planted symlink nor a guessed name
-- can redirect it). `commit` renames it into place; `abort`, garbage collection
-- and `<close>` remove it. What drivers written in Lua (the cosocket driver) use
-- for `output`, as the libcurl driver does in C.
-- @tparam string dest the path the download goes to
-- @treturn[1] TmpFile the open file
-- @treturn[2] nil
-- @treturn[2] string why it cannot be created
function core.tmpfile(dest) end

--- The options of `core.redis`. Every key is type-checked and unknown keys raise
-- naming the key; the caller's table is never modified.
-- @table RedisOptions
-- @tfield string host name or address of the server (default `"127.0.0.1"`; resolved by
--   hiredis when connecting)
-- @tfield integer port 1–65535 (default 6379)
-- @tfield integer db the database to `SELECT` after connecting (≥ 0, default 0)
-- @tfield string username an ACL user (`AUTH username password`; needs `password`)
-- @tfield string password sent with `AUTH` after connecting (default: no `AUTH`); never shown
--   in an error or in `tostring`
-- @tfield number timeout seconds (> 0, default 0.1) for connecting and for each send and
--   receive of a command
local RedisOptions = {}

--- Creates a Redis connection (hiredis; plain TCP, no TLS) for the shared store.
-- It never blocks and never fails for a server that is down: the first command
-- connects, then sends `AUTH` (when a password is set) and `SELECT` (when `db`
-- is not 0). A connection-level failure (I/O error, timeout, the server closing
-- it) drops the connection, and the next command connects again; a connection
-- the server closed while it was idle (a restart) is replaced before a command
-- is sent. Not for use inside nginx request handlers (it blocks): use the
-- cosocket client there.
-- @tparam[opt] RedisOptions opts where and how to connect
-- @treturn Redis the connection
-- @raise on misuse (an unknown option, a wrong type, a bad value), naming the key
function core.redis(opts) end

-- Client --

--- A client: credentials, a token, a connection pool and rate-limit state.
-- `tostring(client)` shows the base URL and client id, never a secret.
-- `close`, garbage collection and `<close>` share one idempotent destructor;
-- a closed client raises on use.
-- @type Client
local Client = {}

--- Sends any request to the API (paths relative to `base_url`), with the
-- token, retries, pacing and error values of every call.
-- @tparam string method the HTTP method
-- @tparam string path the path, with `{name}` placeholders filled from `opts.params`
-- @tparam[opt] table opts `params`, `query`, `json`, `body`, `body_file`, `content_type`,
--   `headers`, `output`, `raw`, `idempotent`, `timeout`, `deadline`, `max_retries`, `progress`
--   (see the README's "Calls")
-- @return[1] the decoded JSON, `true` for an empty answer, or the bytes
-- @treturn[1] table meta `{status, headers, attempts, elapsed, rate_limit}`
-- @treturn[2] nil
-- @treturn[2] Error err
-- @raise on misuse (wrong argument types, a closed client)
function Client:request(method, path, opts) end

--- Prepares a call without running it: for drivers written in Lua (nginx
-- cosockets, `client:map`, tests with a fake clock). Step it with `Call:step`.
-- @tparam string method the HTTP method
-- @tparam string path the path
-- @tparam[opt] table opts as for `Client:request`
-- @treturn[1] Call the call
-- @treturn[2] nil
-- @treturn[2] Error err bad data (kind `invalid`)
function Client:prepare(method, path, opts) end

--- Prepares a call of a compiled operation without running it: `Client:call`'s
-- arguments, as a `Call` (what `client:map`'s tasks run on their multi).
-- @tparam Op op the operation (`core.op`)
-- @param ... its path parameters, then its body (a JSON table or a query table)
-- @treturn[1] Call the call
-- @treturn[2] nil
-- @treturn[2] Error err bad data (kind `invalid`)
-- @return[3] nothing at all when the call takes the general path (`Client:prepare`)
function Client:prepare_op(op, ...) end

--- Prepares the token request alone, as `Client:token` makes it (its last
-- action is `done` with the token as value, or `fail`).
-- @treturn Call
function Client:prepare_token() end


--- The current token, fetched if none is usable. Its `tostring` hides the token.
-- @treturn[1] table `{access_token, token_type, expires_at, expires_in, scope, scopes}`
-- @treturn[2] nil
-- @treturn[2] Error err
function Client:token() end

--- The rate-limit state read from the last answers.
-- @treturn table|nil `{limit, remaining, reset, reset_at, window, policy}`, nil before any answer
function Client:rate_limit() end

--- Counts of attempts sent so far.
-- @treturn table `{requests, token_requests}`
function Client:stats() end

--- The effective options that are not secret.
-- @treturn table `{base_url, token_url, client_id, scope, timeout, connect_timeout,
--   token_timeout, deadline, max_retries, backoff_base, backoff_cap, max_wait, throttle,
--   max_body_size, ca_file, proxy, user_agent}`
function Client:options() end

--- Closes the connections and forgets the token; idempotent.
-- @raise when called from a hook while a call of this client runs
function Client:close() end

-- Call --

--- One prepared call (`Client:prepare`): the engine stepped by a driver.
-- @type Call
local Call = {}

--- Steps the engine: runs the token cache and hooks itself and returns what the
-- transport must do next. A `send` action has `method`, `url`, `header_lines` (the header
-- fields as the text of an HTTP/1.1 head, `"Name: value\r\n"` each), `headers` (the same as
-- a table, built when first read), `body` or `body_file` and `body_size`, `output`,
-- `timeout`, `connect_timeout`, `max_body_size`, `deadline`, `stream`, `fresh`,
-- `token_request` and `proxy`.
-- @tparam number now the clock (`core.now()`): after an attempt, the time its answer came
--   (it dates `meta.elapsed`, a quota's reset and a token's expiry)
-- @param[opt] result the last `send` action's result: `{status, headers, body}` (or, instead
--   of the `headers` table, a `header_block` as `core.http_head` returns it),
--   `{error = "connect"|"resolve"|"tls"|…, sent = bool, message = "…"}`, or `true` after a `Multi`
-- @treturn table the action: `{type = "send", …}`, `{type = "sleep", seconds}`,
--   `{type = "done", value, meta}` or `{type = "fail", error}`
function Call:step(now, result) end

--- Like `Call:step`, but hands the callback actions to the driver too
-- (`cache_get`, `cache_set`, `cache_release`, `hook`), so user code runs where the driver is
-- and may yield.
-- @tparam number now the clock
-- @param[opt] input the last action's answer (a result, or what the cache's `get` returned first)
-- @tparam[opt] string ticket after `cache_get`: the second value `get` returned
-- @treturn table the action
function Call:advance(now, input, ticket) end

--- Releases the call; idempotent (also on garbage collection and `<close>`).
function Call:close() end

--- Ends the call as `close` does, but keeps it, with its buffers, for its client's next
-- `Client:prepare` or `Client:prepare_token`, which then allocates nothing (for drivers
-- that make many calls, such as the nginx one). A client keeps a few; beyond them, and
-- for a closed client, this closes the call. Do not use the call afterwards.
function Call:recycle() end

--- Calls a compiled operation (`core.op`): its path parameters, then its body (a JSON
-- table or a query table, as the op says), positionally, as the generated resource
-- methods take them, without option tables (the blocking driver). Returns nothing at
-- all when the call is one for `Client:request` instead (call options given, an
-- argument of another type): the resource methods then take that path, which checks
-- and raises as always.
-- @tparam Op op the operation
-- @param ... its path parameters, then its body
-- @return[1] value, meta
-- @treturn[2] nil
-- @treturn[2] Error err
-- @return[3] nothing: not a call for this path
function Client:call(op, ...) end

--- An operation of the operations table compiled once (`core.op`).
-- @type Op
local Op = {}

--- `"hypatos.Op(GET /users/{id})"`.
-- @treturn string
function Op:__tostring() end

-- Multi --

--- Many attempts at once on one thread (`core.multi()`).
-- @type Multi
local Multi = {}

--- Starts the attempt of the call's last `send` action.
-- @tparam Call call the call
-- @tparam[opt] function progress `fn(dlnow, dltotal, ulnow, ultotal)`
-- @raise when the call has no attempt to send or is already in
function Multi:add(call, progress) end

--- Steps a call (as `Call:step`: the token cache, the store and the hooks run
-- inside) and, when the engine asks to send, starts the attempt in this multi.
-- Once `Multi:wait` has returned the call, run it again: the answer is its
-- input. What `client:map` drives its tasks with: no action tables.
-- @tparam Call call the call
-- @tparam number now the clock (`core.now()`)
-- @tparam[opt] function progress `fn(dlnow, dltotal, ulnow, ultotal)` for its attempts
-- @treturn[1] string `"send"`: the attempt is in the multi
-- @treturn[2] string `"sleep"`
-- @treturn[2] number seconds to wait (jitter included)
-- @treturn[3] string `"done"`
-- @return[3] the value
-- @treturn[3] table meta
-- @treturn[4] string `"fail"`
-- @treturn[4] Error err
-- @raise what a hook raises; on misuse (a call still in the multi, one stepped with `advance`)
function Multi:run(call, now, progress) end

--- Runs the transfers for up to `timeout` seconds and returns the calls whose
-- attempt ended (feed each back with `call:step(now, true)` or `Multi:run`).
-- @tparam[opt=0] number timeout seconds to wait at most
-- @treturn {Call,...} the calls (maybe none)
-- @treturn table `{[call] = value}`: what the progress function of a call raised (its
--   attempt was aborted; the driver re-raises the value)
-- @raise `hypatos: interrupted` on SIGINT (the transfers stay; close them)
function Multi:wait(timeout) end

--- Aborts a call's attempt if it is in the multi (its temporary output file is removed).
-- @tparam Call call the call
function Multi:remove(call) end

--- The number of attempts in the multi.
-- @treturn integer
function Multi:count() end

--- Aborts every transfer and frees the multi; idempotent (also `__gc`, `__close`).
function Multi:close() end

-- TmpFile --

--- A download's temporary file (`core.tmpfile(dest)`).
-- @type TmpFile
local TmpFile = {}

--- Appends bytes.
-- @tparam string data the bytes
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] string why they could not be written (abort the file then)
-- @raise when the file was committed or aborted
function TmpFile:write(data) end

--- Puts the data in place: flushes, gives the file the mode any new file gets
-- (0666 less the umask; with `private`, it keeps 0600) and renames it to `dest`.
-- The temporary file is gone afterwards, whatever happened.
-- @tparam[opt] boolean private keep the file readable by its owner alone (a secret)
-- @treturn[1] boolean true
-- @treturn[2] nil
-- @treturn[2] string why it failed
-- @raise when the file was committed or aborted
function TmpFile:commit(private) end

--- Closes and removes the temporary file; idempotent (also `__gc`, `__close`).
function TmpFile:abort() end

--- The temporary file's path, or nil once committed or aborted.
-- @treturn string|nil
function TmpFile:path() end

-- Redis --

--- A Redis connection (`core.redis(opts)`). Replies become Lua values: a status
-- reply (`+OK`) a string, an integer an integer, a bulk string a string, a nil
-- reply `core.null`, an array an array (nested; a nil element is `core.null`, an
-- error element `{err = message}`). A failure gives `nil, err`: an error reply
-- `"redis: <message>"` (`"redis: WRONGPASS …"` and `"redis: NOAUTH …"` for a
-- refused `AUTH`, `"redis: ERR DB index is out of range"` for `SELECT`), a
-- connection failure `"connection: <reason>"` (`"connection: timeout"`,
-- `"connection: Connection refused"`, …). The password never appears in
-- either, nor in `tostring(conn)` (`"hypatos.Redis(127.0.0.1:6379/0)"`).
-- `close`, garbage collection and `<close>` share one idempotent destructor; a
-- closed connection raises on use (`"hypatos.Redis is closed"`).
-- @type Redis
local Redis = {}

--- Runs any command. A command the connection failed to complete is not sent
-- again (it may have run).
-- @tparam string cmd the command (`"SET"`, `"EVAL"`, …)
-- @param ... its arguments: strings (any bytes) or numbers (integers exactly, other
--   numbers as `%.17g`)
-- @return[1] the reply
-- @treturn[2] nil
-- @treturn[2] string `"redis: <message>"` or `"connection: <reason>"`
-- @raise on misuse (no command, an argument that is not a string or a number, a closed connection)
function Redis:call(cmd, ...) end

--- Runs a script by its SHA1: `EVALSHA sha #keys keys… args…`; when the server
-- answers `NOSCRIPT` (a restart, `SCRIPT FLUSH`), loads it with `SCRIPT LOAD`
-- and runs `EVALSHA` once more.
-- @tparam string sha the script's SHA1 (40 hex digits, either case)
-- @tparam string script the script's text
-- @tparam[opt] {string|number,...} keys the key names (`KEYS`)
-- @tparam[opt] {string|number,...} args the other arguments (`ARGV`)
-- @return[1] the reply
-- @treturn[2] nil
-- @treturn[2] string `"redis: <message>"` (an error the script raised, a script that does
--   not compile) or `"connection: <reason>"`
-- @raise on misuse, and when `SCRIPT LOAD` gives another SHA1 than `sha` (a programming mistake)
function Redis:eval(sha, script, keys, args) end

--- Closes the connection; idempotent (also `__gc`, `__close`).
function Redis:close() end

return core
