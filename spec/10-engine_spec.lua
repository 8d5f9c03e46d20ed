-- The engine driven directly: scripted answers, a fake clock, no server.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos
local tok, json = helpers.token_response, helpers.json

local OK = json(200, { id = "u1" })

describe("engine: token", function()
  it("fetches a token first, with form-encoded Basic credentials", function()
    local c = helpers.client({ client_id = "weird:client id", client_secret = "p@ss:w rd+%" })
    local rec = helpers.call(c, "GET", "/users", nil, { tok(), OK })
    local t = rec.sends[1]
    assert.is_true(t.token_request)
    assert.equal("POST", t.method)
    assert.equal("https://api.example.test/v2/auth/token", t.url)
    assert.equal("grant_type=client_credentials", t.body)
    assert.equal("application/x-www-form-urlencoded", t.headers["Content-Type"])
    -- RFC 6749 §2.3.1: form-encode each part, then base64
    local expected = "weird%3Aclient+id:p%40ss%3Aw+rd%2B%25"
    local b64 = t.headers.Authorization:match("^Basic (.+)$")
    local dec = (require "mime").unb64(b64)
    assert.equal(expected, dec)
    assert.equal("Bearer tok-1", rec.sends[2].headers.Authorization)
    assert.equal("done", rec.result.type)
  end)

  it("asks for the configured scopes", function()
    local c = helpers.client({ scope = { "users.read", "companies.read" } })
    local rec = helpers.call(c, "GET", "/users", nil, { tok(), OK })
    assert.equal("grant_type=client_credentials&scope=users.read+companies.read", rec.sends[1].body)
  end)

  it("reuses the token across calls", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/users", nil, { tok(), OK }, 1000)
    for i = 1, 5 do
      local rec = helpers.call(c, "GET", "/users", nil, { OK }, 1000 + i)
      assert.equal(1, #rec.sends)
    end
    assert.same({ requests = 6, token_requests = 1 }, c:stats())
  end)

  it("refreshes min(60 s, 10% of the lifetime) before expiry", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/u", nil, { tok({ expires_in = 3600 }), OK }, 1000)
    assert.equal(1, #helpers.call(c, "GET", "/u", nil, { OK }, 1000 + 3539).sends)
    local rec = helpers.call(c, "GET", "/u", nil, { tok({ access_token = "tok-2" }), OK }, 1000 + 3541)
    assert.equal(2, #rec.sends)
    assert.equal("Bearer tok-2", rec.sends[2].headers.Authorization)

    local c2 = helpers.client()
    helpers.call(c2, "GET", "/u", nil, { tok({ expires_in = 100 }), OK }, 1000)
    assert.equal(1, #helpers.call(c2, "GET", "/u", nil, { OK }, 1089).sends)
    assert.equal(2, #helpers.call(c2, "GET", "/u", nil, { tok(), OK }, 1091).sends)
  end)

  it("takes a missing expires_in as 300 s", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/u", nil, { tok({ expires_in = false }), OK }, 1000)
    assert.equal(1, #helpers.call(c, "GET", "/u", nil, { OK }, 1000 + 269).sends)
    assert.equal(2, #helpers.call(c, "GET", "/u", nil, { tok(), OK }, 1000 + 271).sends)
  end)

  it("replaces a refused token once and replays the call", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, {
      tok(), json(401, { title = "Invalid token", detail = "expired", status = 401 }),
      tok({ access_token = "tok-2" }), OK })
    assert.equal("done", rec.result.type)
    assert.equal("Bearer tok-2", rec.sends[4].headers.Authorization)
    assert.equal(2, rec.result.meta.attempts)
    assert.same({}, rec.sleeps)
  end)

  it("does not loop when the new token is refused too", function()
    local c = helpers.client()
    local e401 = json(401, { title = "Invalid token", detail = "revoked", status = 401 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), e401, tok({ access_token = "tok-2" }), e401 })
    local err = rec.result.error
    assert.equal("fail", rec.result.type)
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal("access token refused: Invalid token: revoked", err.message)
    assert.equal(2, c:stats().token_requests)
  end)

  it("fails as auth when the token endpoint refuses the credentials, without retrying", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, {
      json(401, { title = "Invalid client credentials",
        detail = "The provided client credentials are not valid", status = 401 }) })
    local err = rec.result.error
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal("token request refused: Invalid client credentials: The provided client credentials are not valid",
      err.message)
    assert.is_false(err.retryable)
  end)

  it("retries the token request on 5xx and network failures", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, {
      json(503, { title = "Unavailable" }), { error = "connect", sent = false }, tok(), OK })
    assert.equal("done", rec.result.type)
    assert.equal(2, #rec.sleeps)
  end)

  it("reports the token request's attempts and the time spent when it fails for good", function()
    local c = helpers.client()
    local down = { error = "connect", sent = false, latency = 0.002 }
    local rec = helpers.call(c, "GET", "/u", nil, { down, down, down, down, down }, 1000)
    local err = rec.result.error
    assert.equal("network", err.kind)
    assert.equal(5, err.attempts)                      -- the first and max_retries (4), not the API's 0
    assert.equal(4, #rec.sleeps)
    assert.near(rec.now - 1000, err.elapsed, 1e-9)     -- from the start of the call to its failure
    assert.is_true(err.elapsed > 1)
    assert.equal(("hypatos: network: token request failed: Couldn't connect to server (POST https://api.example.test/v2/auth/token, "
      .. "5 attempts in %.1f s)"):format(err.elapsed), tostring(err))
    -- a 503 each time: the same
    rec = helpers.call(helpers.client({ max_retries = 1 }), "GET", "/u", nil, { json(503, {}), json(503, {}) }, 1000)
    assert.equal(2, rec.result.error.attempts)
    assert.equal(("hypatos: auth 503: token request failed: HTTP 503 (POST https://api.example.test/v2/auth/token, "
      .. "2 attempts in %d ms)"):format(math.floor((rec.now - 1000) * 1000 + 0.5)), tostring(rec.result.error))
    -- refused at once: one attempt, no summary
    rec = helpers.call(helpers.client(), "GET", "/u", nil, { json(401, { title = "Invalid client credentials" }) })
    assert.equal(1, rec.result.error.attempts)
    assert.equal("hypatos: auth 401: token request refused: Invalid client credentials "
      .. "(POST https://api.example.test/v2/auth/token)", tostring(rec.result.error))
  end)

  it("reports the token attempts when the deadline ends the token request's retries", function()
    local c = helpers.client()
    local down = { error = "connect", sent = false }
    local rec = helpers.call(c, "GET", "/u", { deadline = 0.6 }, { down, down })
    local err = rec.result.error
    assert.equal("timeout", err.kind)
    assert.equal(2, err.attempts)
    assert.matches("^deadline reached after 2 attempts; last failure: token request failed: Couldn't connect to server", err.message)
  end)

  it("never puts a token response body into an error", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, {
      { status = 200, headers = { ["content-type"] = "application/json" },
        body = '{"access_token":"SECRET-TOKEN", "token_type":"Bearer"' } })
    local err = rec.result.error
    assert.equal("auth", err.kind)
    assert.is_nil(err.body)
    assert.is_nil(tostring(err):find("SECRET", 1, true))
  end)

  it("refuses a token type other than Bearer", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok({ token_type = "MAC" }) })
    assert.equal('token response has token_type "MAC", expected Bearer', rec.result.error.message)
  end)

  it("lets one call fetch while another waits for that token", function()
    local c = helpers.client()
    local a = assert(c:prepare("GET", "/a"))
    local b = assert(c:prepare("GET", "/b"))
    local act_a = a:step(1000)
    assert.is_true(act_a.token_request)
    local act_b = b:step(1000)
    assert.equal("sleep", act_b.type)
    act_a = a:step(1000.1, tok())
    assert.equal("Bearer tok-1", act_a.headers.Authorization)
    act_b = b:step(1000.1 + act_b.seconds)
    assert.equal("send", act_b.type)
    assert.is_false(act_b.token_request)
    assert.equal(1, c:stats().token_requests)
  end)

  it("a call that waited for a token request that failed reports that request's attempts", function()
    local c = helpers.client({ max_retries = 1 })
    local down = { error = "connect", sent = false }
    local a = assert(c:prepare("GET", "/a"))
    local b = assert(c:prepare("GET", "/b"))
    local now = 1000
    local act_a, act_b = a:step(now), b:step(now)
    assert.is_true(act_a.token_request)
    assert.equal("sleep", act_b.type)
    while act_a.type ~= "fail" do -- a's token request fails twice (max_retries 1)
      now = now + 0.1
      act_a = act_a.type == "send" and a:step(now, down) or a:step(now)
    end
    assert.equal(2, act_a.error.attempts)
    now = now + 0.1
    act_b = b:step(now)
    assert.equal("fail", act_b.type)
    assert.equal("network", act_b.error.kind)
    assert.equal(2, act_b.error.attempts)
    assert.near(now - 1000, act_b.error.elapsed, 1e-9) -- b's own time
    assert.equal(2, c:stats().token_requests)
  end)

  it("gives the fetch up when its call is dropped", function()
    local c = helpers.client()
    local a = assert(c:prepare("GET", "/a"))
    assert.is_true(a:step(1000).token_request)
    a:close()
    local b = assert(c:prepare("GET", "/b"))
    assert.is_true(b:step(1000).token_request)
  end)
end)

describe("engine: token cache", function()
  it("uses a token from the cache and stores fetched ones", function()
    local store, gets = {}, 0
    local cache = {
      get = function(key) gets = gets + 1; return store[key] end,
      set = function(key, t) store[key] = t end,
    }
    local c1 = helpers.client({ token_cache = cache })
    helpers.call(c1, "GET", "/u", nil, { tok(), OK }, 1000)
    local key, entry = next(store)
    assert.matches("^hypatos%-token:v1:" .. ("%x"):rep(64) .. "$", key)
    assert.equal("tok-1", entry.access_token)
    assert.equal(1000.001 + 3600, entry.expires_at)

    local c2 = helpers.client({ token_cache = cache })
    local rec = helpers.call(c2, "GET", "/u", nil, { OK }, 1001)
    assert.equal("Bearer tok-1", rec.sends[1].headers.Authorization)
    assert.equal(0, c2:stats().token_requests)
  end)

  it("ignores a cached token the API refused, and a failing cache", function()
    local store = {}
    local cache = { get = function(k) return store[k] end, set = function(k, t) store[k] = t end }
    local c = helpers.client({ token_cache = cache })
    local e401 = json(401, { title = "Invalid token", status = 401 })
    helpers.call(c, "GET", "/u", nil, { tok(), OK }, 1000)
    -- the cache still holds tok-1; after the 401 the client must not take it back
    local rec = helpers.call(c, "GET", "/u", nil, { e401, tok({ access_token = "tok-2" }), OK }, 1001)
    assert.equal("Bearer tok-2", rec.sends[3].headers.Authorization)

    local broken = helpers.client({ token_cache = {
      get = function() error("redis down") end, set = function() error("redis down") end } })
    local rec2 = helpers.call(broken, "GET", "/u", nil, { tok(), OK }, 1000)
    assert.equal("done", rec2.result.type)
  end)
end)

describe("engine: token cache keys and protocol", function()
  --- The key a client with these extra options asks its cache for.
  local function key_of(extra)
    local seen
    local o = { token_cache = { get = function(k) seen = k end, set = function() end } }
    for k, v in pairs(extra) do o[k] = v end
    helpers.call(helpers.client(o), "GET", "/u", nil, { tok(), OK })
    return seen
  end

  it("binds the key to every credential with an HMAC, and shows none of them", function()
    local k = key_of({})
    assert.matches("^hypatos%-token:v1:" .. ("%x"):rep(64) .. "$", k)
    assert.equal(k, key_of({})) -- the same credentials share it
    assert.not_equal(k, key_of({ client_secret = "secret2" }))
    assert.not_equal(k, key_of({ client_id = "id2" }))
    assert.not_equal(k, key_of({ scope = "users.read" }))
    assert.not_equal(k, key_of({ token_url = "https://api.example.test/v2/other/token" }))
    assert.is_nil(k:find("secret", 1, true))
    -- length-prefixed parts: moving a character between id and scope changes the key
    assert.not_equal(key_of({ client_id = "ab", scope = "c" }), key_of({ client_id = "a", scope = "bc" }))
  end)

  it("a ticket makes the call the fetcher: it goes back with the token, or with the failure", function()
    local log = {}
    local cache = {
      get = function() log[#log + 1] = "get" return nil, "T-1" end,
      set = function(_, t, ticket) log[#log + 1] = "set " .. t.access_token .. " " .. tostring(ticket) end,
      release = function(_, ticket, err)
        log[#log + 1] = "release " .. ticket .. " " .. (err and (err.kind .. " " .. tostring(err.status)) or "-")
      end,
    }
    local c = helpers.client({ token_cache = cache })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), OK })
    assert.equal("done", rec.result.type)
    assert.same({ "get", "set tok-1 T-1" }, log)
    log = {}
    local c2 = helpers.client({ token_cache = cache, max_retries = 0 })
    rec = helpers.call(c2, "GET", "/u", nil, {
      json(401, { title = "Invalid client credentials", status = 401 }) })
    assert.equal("auth", rec.result.error.kind)
    assert.same({ "get", "release T-1 auth 401" }, log)
  end)

  it("waits while the cache says another fetch is out, then takes its token", function()
    local n = 0
    local cache = {
      get = function()
        n = n + 1
        if n < 3 then return 0.02 end
        return { access_token = "tok-other", expires_at = 9000, lifetime = 3600 }
      end,
      set = function() error("nothing to store") end,
    }
    local c = helpers.client({ token_cache = cache })
    local rec = helpers.call(c, "GET", "/u", nil, { OK }, 1000)
    assert.equal("done", rec.result.type)
    assert.same({ 0.02, 0.02 }, rec.sleeps)
    assert.equal("Bearer tok-other", rec.sends[1].headers.Authorization)
    assert.equal(0, c:stats().token_requests)
  end)

  it("fetches itself when the cache keeps it waiting longer than a token request may take", function()
    local c = helpers.client({ token_cache = { get = function() return 1 end, set = function() end },
      token_timeout = 2 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), OK }, 1000)
    assert.equal("done", rec.result.type)
    assert.equal(3, #rec.sleeps) -- 3 × 1 s, then past token_timeout + 1
    assert.is_true(rec.sends[1].token_request)
  end)

  it("fails at once with a refusal the cache remembers, sending nothing", function()
    local c = helpers.client({ token_cache = {
      get = function() return { denied = { status = 401, message = "token request refused: Invalid client credentials" } } end,
      set = function() end } })
    local rec = helpers.call(c, "GET", "/u", nil, {})
    local err = rec.result.error
    assert.equal("auth", err.kind)
    assert.equal(401, err.status)
    assert.equal("token request refused: Invalid client credentials (remembered by the token cache)", err.message)
    assert.equal("POST", err.method)
    assert.equal("https://api.example.test/v2/auth/token", err.url)
    assert.equal(0, #rec.sends)
  end)

  it("lets a second call of the client wait for the first one's fetch, without asking the cache", function()
    local log = {}
    local store
    local cache = {
      get = function() log[#log + 1] = "get" if store then return store end return nil, "T-" .. #log end,
      set = function(_, t, ticket) log[#log + 1] = "set " .. tostring(ticket) store = t end,
      release = function(_, ticket, err) log[#log + 1] = "release " .. ticket .. (err and " err" or "") end,
    }
    local c = helpers.client({ token_cache = cache })
    local a = assert(c:prepare("GET", "/a"))
    local b = assert(c:prepare("GET", "/b"))
    local act_a = a:step(1000) -- a: get → ticket T-1, sends the token request
    assert.is_true(act_a.token_request)
    local act_b = b:step(1000) -- b: waits for a's fetch (same client), without asking the cache
    assert.equal("sleep", act_b.type)
    act_a = a:step(1000.01, tok())
    assert.equal("send", act_a.type)
    act_b = b:step(1000.06)
    assert.equal("send", act_b.type)
    assert.same({ "get", "set T-1" }, log)
  end)
end)

describe("engine: err.outcome — what a failed call may have done at the server", function()
  local function outcome_of(method, path, opts, responses)
    local rec = helpers.call(helpers.client({ max_retries = 1 }), method, path, opts, responses)
    assert.equal("fail", rec.result.type)
    return rec.result.error
  end

  it("not_sent: nothing reached the server (connect, DNS, TLS, bad data, the token)", function()
    assert.equal("not_sent", outcome_of("POST", "/files", { body = "x" },
      { tok(), { error = "connect", sent = false }, { error = "resolve" } }).outcome)
    assert.equal("not_sent", outcome_of("GET", "/u", nil, { { error = "tls" }, { error = "tls" } }).outcome)
    assert.equal("not_sent", outcome_of("GET", "/u", nil,
      { json(401, { title = "Invalid client credentials", status = 401 }) }).outcome)
    local c = helpers.client()
    local _, err = c:prepare("GET", "/u", { headers = { ["X-A"] = "a\r\nb" } })
    assert.equal("invalid", err.kind)
    assert.equal("not_sent", err.outcome)
  end)

  it("unknown: the request went out and no status came back", function()
    local err = outcome_of("POST", "/files", { body = "x" }, { tok(), { error = "recv", sent = true } })
    assert.equal("network", err.kind)
    assert.equal("unknown", err.outcome)
    assert.is_nil(err.status)
  end)

  it("done: a 2xx status arrived, only the rest was lost; status and headers say what is known", function()
    local err = outcome_of("POST", "/files", { body = "x" }, { tok(),
      { error = "partial", sent = true, status = 201, headers = { location = "/v2/files/f-1" },
        message = "receive failed: closed" } })
    assert.equal("network", err.kind)
    assert.equal("done", err.outcome)
    assert.equal(201, err.status)
    assert.equal("/v2/files/f-1", err.headers.location)
    assert.matches("request was carried out", err.message)
    assert.is_false(err.retryable)
    -- a 2xx answer whose JSON is broken: carried out too
    local derr = outcome_of("POST", "/files", { body = "x" }, { tok(),
      { status = 201, headers = { ["content-type"] = "application/json" }, body = "{broken" } })
    assert.equal("decode", derr.kind)
    assert.equal("done", derr.outcome)
  end)

  it("refused: the server answered with an error status", function()
    local err = outcome_of("POST", "/files", { body = "x" }, { tok(), json(400, { title = "Content type not supported" }) })
    assert.equal("refused", err.outcome)
    assert.equal("refused", outcome_of("GET", "/u", nil, { tok(), json(500, {}), json(503, {}) }).outcome)
  end)

  it("keeps the most telling attempt: a retried PATCH that timed out once stays unknown", function()
    local err = outcome_of("PATCH", "/projects/p1", { json = { name = "x" }, idempotent = true },
      { tok(), { error = "timeout", sent = true }, json(500, {}) })
    assert.equal("http", err.kind)
    assert.equal("unknown", err.outcome)
  end)
end)

describe("engine: a shared cache after a revocation", function()
  it("replays again when the cache handed over a token revoked with its own, then fetches", function()
    -- two workers share a cache: ours holds tok-0, the cache tok-1 (another worker's); a revocation
    -- refuses both. The call must not give up on the second 401: tok-1 was never fresh from its
    -- own token request.
    local store = {}
    local cache = { get = function(k) return store[k] end, set = function(k, t) store[k] = t end }
    local c = helpers.client({ token_cache = cache })
    helpers.call(c, "GET", "/u", nil, { tok({ access_token = "tok-0" }), OK }, 1000)
    local key = next(store)
    store[key] = { access_token = "tok-1", expires_at = 5000, lifetime = 3600 }
    local e401 = json(401, { title = "Invalid token", status = 401 })
    local rec = helpers.call(c, "POST", "/files", { body = "x" },
      { e401, e401, tok({ access_token = "tok-2" }), OK }, 1001)
    assert.equal("done", rec.result.type, tostring(rec.result.error))
    assert.equal("Bearer tok-0", rec.sends[1].headers.Authorization)
    assert.equal("Bearer tok-1", rec.sends[2].headers.Authorization)
    assert.is_true(rec.sends[3].token_request)
    assert.equal("Bearer tok-2", rec.sends[4].headers.Authorization)
  end)

  it("gives up when the token fresh from its own request is refused too", function()
    local c = helpers.client()
    local e401 = json(401, { title = "Invalid token", status = 401 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), e401, tok({ access_token = "tok-2" }), e401 })
    assert.equal("fail", rec.result.type)
    assert.equal("auth", rec.result.error.kind)
    assert.equal(4, #rec.sends)
  end)
end)

describe("engine: retries", function()
  it("retries a GET on 500/502/503/504 with full-jitter backoff", function()
    local c = helpers.client() -- random() = 0.5, base 0.5, cap 30
    local rec = helpers.call(c, "GET", "/u", nil, {
      tok(), json(500, {}), json(502, {}), json(503, {}), json(504, {}), OK })
    assert.equal("done", rec.result.type)
    assert.equal(5, rec.result.meta.attempts)
    -- each wait is at least 1 ms (what every driver can sleep) plus the jitter
    assert.same({ 0.251, 0.501, 1.001, 2.001 }, rec.sleeps)
  end)

  it("caps the backoff", function()
    local c = helpers.client({ backoff_base = 4, backoff_cap = 5, max_retries = 3 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), json(500, {}), json(500, {}), json(500, {}), OK })
    assert.same({ 2.001, 2.501, 2.501 }, rec.sleeps)
  end)

  it("draws every wait from [1 ms, 1 ms + base·2^n)", function()
    local draws = { 0, 0.999, 0.3 }
    local i = 0
    local c = helpers.client({ random = function() i = i + 1; return draws[i] end })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), json(500, {}), json(500, {}), json(500, {}), OK })
    assert.equal(0.001, rec.sleeps[1])
    assert.near(1.0, rec.sleeps[2], 1e-9)
    assert.near(0.601, rec.sleeps[3], 1e-9)
  end)

  it("gives up after max_retries and says the error is retryable", function()
    local c = helpers.client({ max_retries = 2 })
    local rec = helpers.call(c, "GET", "/u", nil, {
      tok(), json(503, { title = "Service Unavailable", detail = "later", status = 503 }),
      json(503, {}), json(503, { title = "Service Unavailable", detail = "later", status = 503 }) })
    local err = rec.result.error
    assert.equal("http", err.kind)
    assert.equal(503, err.status)
    assert.equal(3, err.attempts)
    assert.is_true(err.retryable)
    assert.equal("hypatos: http 503: Service Unavailable: later (GET https://api.example.test/v2/u, 3 attempts in 756 ms)",
      tostring(err))
  end)

  it("waits the backoff after a 5xx, not the quota reset the answer carries", function()
    local c = helpers.client() -- random() = 0.5
    local h = { ["x-ratelimit-reset"] = "50", ["x-ratelimit-remaining"] = "900", ["x-ratelimit-limit"] = "1000" }
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), json(503, {}, h), json(500, {}, h), OK })
    assert.equal("done", rec.result.type)
    assert.equal(3, rec.result.meta.attempts)
    assert.same({ 0.251, 0.501 }, rec.sleeps)
  end)

  it("waits what Retry-After says after a 5xx", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(502, {}, { ["retry-after"] = "4", ["x-ratelimit-reset"] = "50" }), OK })
    assert.same({ 4.2 }, rec.sleeps) -- 4 s + 0.5 × 10 % jitter
  end)

  it("fails a 5xx at once when its Retry-After is longer than max_wait", function()
    local c = helpers.client({ max_wait = 10 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), json(503, {}, { ["retry-after"] = "120" }) })
    local err = rec.result.error
    assert.equal("http", err.kind)
    assert.equal(120, err.retry_after)
    assert.same({}, rec.sleeps)
  end)

  it("gives a token request's 503 the backoff, not the quota reset", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, {
      json(503, {}, { ["x-ratelimit-reset"] = "55", ["x-ratelimit-remaining"] = "9", ["x-ratelimit-limit"] = "10" }),
      tok(), OK })
    assert.equal("done", rec.result.type)
    assert.same({ 0.251 }, rec.sleeps)
  end)

  it("honours a per-call max_retries", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", { max_retries = 0 }, { tok(), json(500, {}) })
    assert.equal(1, rec.result.error.attempts)
  end)

  it("does not retry other 4xx answers", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(404, { title = "User does not exist", detail = "no such user", status = 404 }) })
    local err = rec.result.error
    assert.equal("http", err.kind)
    assert.equal(404, err.status)
    assert.equal("User does not exist", err.title)
    assert.equal("no such user", err.detail)
    assert.same({ title = "User does not exist", detail = "no such user", status = 404 }, err.body)
    assert.is_false(err.retryable)
  end)

  it("retries an idempotent call after any transport failure", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      { error = "recv", sent = true }, { error = "closed", sent = true }, { error = "partial", sent = true },
      { error = "timeout", sent = true }, OK })
    assert.equal("done", rec.result.type)
    assert.equal(5, rec.result.meta.attempts)
  end)

  it("never re-sends a POST that may have reached the server", function()
    local c = helpers.client()
    local rec = helpers.call(c, "POST", "/files", { body = "%PDF", content_type = "application/pdf" },
      { tok(), { error = "closed", sent = true, message = "Empty reply from server" } })
    local err = rec.result.error
    assert.equal("network", err.kind)
    assert.equal(52, err.code)
    assert.is_false(err.retryable)
    assert.equal("Empty reply from server (not retried: the request may have reached the server)", err.message)
    assert.is_true(rec.sends[2].fresh)

    rec = helpers.call(c, "POST", "/files", { body = "%PDF", content_type = "application/pdf" },
      { { error = "recv", sent = true, message = "Connection reset by peer" } })
    assert.equal("Connection reset by peer (not retried: the request may have reached the server)",
      rec.result.error.message)
    assert.equal(1, #rec.sends)

    rec = helpers.call(c, "POST", "/files", { body = "%PDF", content_type = "application/pdf" },
      { json(500, { title = "Internal Server Error", detail = "boom", status = 500 }) })
    err = rec.result.error
    assert.equal("http", err.kind)
    assert.is_false(err.retryable)
    assert.equal("not retried, the request may have reached the server: Internal Server Error: boom", err.message)
  end)

  it("re-sends a POST that certainly did not leave, or was refused with 429", function()
    local c = helpers.client()
    local rec = helpers.call(c, "POST", "/files", { body = "x" }, { tok(),
      { error = "connect", sent = false }, { error = "resolve" }, { error = "tls" },
      json(429, { title = "Too Many Requests" }, { ["x-ratelimit-reset"] = "1" }),
      json(201, { id = "f1" }) })
    assert.equal("done", rec.result.type)
    assert.equal(5, rec.result.meta.attempts)
  end)

  it("retries an explicitly idempotent POST", function()
    local c = helpers.client()
    local rec = helpers.call(c, "POST", "/enrichment/suppliers", { json = { externalId = "s1" }, idempotent = true },
      { tok(), json(500, {}), { error = "recv", sent = true }, json(200, { id = "x" }) })
    assert.equal("done", rec.result.type)
  end)
end)

describe("engine: 429", function()
  it("waits what x-ratelimit-reset says, plus up to 10% jitter", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(429, { title = "Too Many Requests" }, { ["x-ratelimit-reset"] = "2", ["x-ratelimit-remaining"] = "0" }),
      OK })
    assert.same({ 2.1 }, rec.sleeps)
  end)

  it("prefers Retry-After, in seconds or as an HTTP date", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(429, {}, { ["retry-after"] = "3", ["x-ratelimit-reset"] = "10" }), OK })
    assert.same({ 3.15 }, rec.sleeps)
    local t0 = 1767225600 -- 2026-01-01T00:00:00Z
    rec = helpers.call(c, "GET", "/u", nil, {
      json(429, {}, { ["retry-after"] = "Thu, 01 Jan 2026 00:00:05 GMT" }), OK }, t0)
    assert.near((5 - 0.001) * 1.05, rec.sleeps[1], 1e-6)
  end)

  it("falls back to backoff when the server gives no wait, and ignores malformed values", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(429, {}, { ["x-ratelimit-reset"] = "soon", ["retry-after"] = "later" }), OK })
    assert.same({ 0.251 }, rec.sleeps)
  end)

  it("fails at once when the wait is longer than max_wait", function()
    local c = helpers.client({ max_wait = 30 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(429, { title = "Too Many Requests", detail = "quota", status = 429 }, { ["x-ratelimit-reset"] = "3600" }) })
    local err = rec.result.error
    assert.equal("rate_limited", err.kind)
    assert.equal(429, err.status)
    assert.equal(60, err.retry_after) -- no window announced: clamped to the API's longest (60 s)
    assert.is_true(err.retryable)
    assert.same({}, rec.sleeps)
  end)

  it("reports rate_limited when retries run out", function()
    local c = helpers.client({ max_retries = 1 })
    local r429 = json(429, {}, { ["x-ratelimit-reset"] = "1" })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), r429, r429 })
    assert.equal("rate_limited", rec.result.error.kind)
    assert.equal(1, rec.result.error.retry_after)
  end)
end)

describe("engine: deadline and timeouts", function()
  it("stops retrying when the next wait would cross the deadline", function()
    local c = helpers.client({ deadline = 2 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), json(429, {}, { ["x-ratelimit-reset"] = "5" }) })
    local err = rec.result.error
    assert.equal("timeout", err.kind)
    assert.equal(429, err.status)
    assert.equal("deadline reached after 1 attempt; last failure: HTTP 429", err.message)
  end)

  it("bounds each attempt by the time left before the deadline", function()
    local c = helpers.client({ timeout = 60 })
    local rec = helpers.call(c, "GET", "/u", { deadline = 10 }, { tok(), OK })
    assert.equal(10, rec.sends[1].timeout)
    assert.near(10 - 0.001, rec.sends[2].timeout, 1e-6)
    rec = helpers.call(c, "GET", "/u", { timeout = 2 }, { OK })
    assert.equal(2, rec.sends[1].timeout)
  end)

  it("uses token_timeout for the token request", function()
    local c = helpers.client({ token_timeout = 7 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), OK })
    assert.equal(7, rec.sends[1].timeout)
    assert.equal(60, rec.sends[2].timeout)
  end)

  it("reports a transport timeout as kind timeout", function()
    local c = helpers.client({ max_retries = 0 })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), { error = "timeout", sent = true,
      message = "Operation timed out after 1000 milliseconds" } })
    assert.equal("timeout", rec.result.error.kind)
    assert.equal(28, rec.result.error.code)
  end)
end)

describe("engine: pacing", function()
  local function limited(remaining, reset, limit, window)
    return json(200, { ok = true }, { ["x-ratelimit-limit"] = (limit or 10) .. ", " .. (limit or 10) .. ";w=" .. (window or 1),
      ["x-ratelimit-remaining"] = tostring(remaining), ["x-ratelimit-reset"] = tostring(reset) })
  end

  it("sends one request first while the quota is unknown (a token from a cache), then paces", function()
    local cache = { get = function() return { access_token = "tok-c", expires_at = 9000, lifetime = 3600 } end,
      set = function() end }
    local c = helpers.client({ token_cache = cache })
    local calls, acts = {}, {}
    for i = 1, 16 do
      calls[i] = assert(c:prepare("GET", "/u"))
      acts[i] = calls[i]:step(1000)
    end
    local sent = 0
    for i = 1, 16 do if acts[i].type == "send" then sent = sent + 1 end end
    assert.equal(1, sent) -- the others wait for its answer
    assert.equal("send", acts[1].type)
    assert.equal("sleep", acts[2].type)
    assert.is_true(acts[2].seconds <= 0.05)
    -- the answer: 4 of 10 left in this window
    acts[1] = calls[1]:step(1000.01, limited(4, 1))
    assert.equal("done", acts[1].type)
    -- until the window ends (≤ 1001.01) the waiting calls step at their wake times: the 4 left
    -- are spread, nothing more goes (the sent ones get no answer in this test)
    sent = 0
    local wake = {}
    for i = 2, 16 do wake[i] = 1000 + acts[i].seconds end
    for t = 1000.01, 1001.0, 0.005 do
      for i = 2, 16 do
        if acts[i].type == "sleep" and wake[i] <= t then
          acts[i] = calls[i]:step(t)
          if acts[i].type == "send" then sent = sent + 1 else wake[i] = t + acts[i].seconds end
        end
      end
    end
    assert.equal(4, sent)
    for i = 1, 16 do calls[i]:close() end
  end)

  it("does not hold the others back longer than 2 s for a first request that takes long", function()
    local c = helpers.client({ token_cache = { get = function()
      return { access_token = "tok-c", expires_at = 9000, lifetime = 3600 } end, set = function() end } })
    local a, b = assert(c:prepare("GET", "/a")), assert(c:prepare("GET", "/b"))
    assert.equal("send", a:step(1000).type)
    assert.equal("sleep", b:step(1001.9).type)
    assert.equal("send", b:step(1002.01).type)
    a:close()
    b:close()
  end)

  it("does not slow down while half the quota or more remains", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/u", nil, { tok(), limited(5, 1) }, 1000)
    assert.same({}, helpers.call(c, "GET", "/u", nil, { OK }, 1000.01).sleeps)
  end)

  it("spreads the rest of the quota over the time left", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), limited(3, 1) }, 1000)
    local sent = rec.now - 0.001 -- when the API request left
    rec = helpers.call(c, "GET", "/u", nil, { OK }, rec.now)
    -- 3 left for 1 s: one every 1/4 s after the last send
    assert.equal(1, #rec.sleeps)
    assert.near(sent + 0.25 - (rec.now - rec.sleeps[1] - 0.001), rec.sleeps[1], 1e-6)
  end)

  it("waits for the reset when the quota is used up", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), limited(0, 2, nil, 2) }, 1000)
    local t = rec.now
    rec = helpers.call(c, "GET", "/u", nil, { OK }, t)
    assert.near(2 + 0.005 - 0.0, rec.sleeps[1] + (t - (1000.002)) , 0.01)
    local rl = c:rate_limit()
    assert.equal(10, rl.limit)
    assert.equal(2, rl.window)
    assert.equal("10, 10;w=2", rl.policy)
  end)

  it("keeps the tightest reset seen in a window", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/u", nil, { tok(), limited(4, 1) }, 1000)      -- reset ≤ 1001.002
    helpers.call(c, "GET", "/u", nil, { limited(3, 1) }, 1000.5)            -- ≤ 1001.501: keep the first
    local rec = helpers.call(c, "GET", "/u", nil, { limited(0, 1) }, 1000.9)
    local rec2 = helpers.call(c, "GET", "/u", nil, { OK }, rec.now)
    assert.near(1001.002 + 0.005, rec.now + rec2.sleeps[1], 0.002)
  end)

  it("is off with throttle = false", function()
    local c = helpers.client({ throttle = false })
    helpers.call(c, "GET", "/u", nil, { tok(), limited(0, 2) }, 1000)
    assert.same({}, helpers.call(c, "GET", "/u", nil, { OK }, 1000.01).sleeps)
  end)

  it("fails as rate_limited rather than wait longer than max_wait", function()
    local c = helpers.client({ max_wait = 1 })
    helpers.call(c, "GET", "/u", nil, { tok(), limited(0, 30, nil, 60) }, 1000)
    local rec = helpers.call(c, "GET", "/u", nil, {}, 1000.01)
    assert.equal("rate_limited", rec.result.error.kind)
    assert.is_true(rec.result.error.retry_after > 29)
  end)

  it("reads the IETF RateLimit fields", function()
    local c = helpers.client()
    helpers.call(c, "GET", "/u", nil, { tok(), json(200, {}, {
      ratelimit = "limit=100, remaining=0, reset=3", ["ratelimit-policy"] = "100;w=60" }) }, 1000)
    local rl = c:rate_limit()
    assert.equal(100, rl.limit)
    assert.equal(0, rl.remaining)
    assert.equal(60, rl.window)
    local c2 = helpers.client()
    helpers.call(c2, "GET", "/u", nil, { tok(), json(200, {}, {
      ratelimit = '"default";r=7;t=2', ["ratelimit-policy"] = '"default";q=20;w=10' }) }, 1000)
    rl = c2:rate_limit()
    assert.equal(20, rl.limit)
    assert.equal(7, rl.remaining)
    assert.equal(10, rl.window)
  end)
end)

describe("engine: results", function()
  it("returns decoded JSON with meta", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      json(200, { totalCount = 3, data = hypatos.array() }, { ["x-ratelimit-remaining"] = "99",
        ["x-ratelimit-limit"] = "100", ["x-ratelimit-reset"] = "5" }) }, 1000)
    local v, meta = rec.result.value, rec.result.meta
    assert.equal(3, v.totalCount)
    assert.equal("3", tostring(v.totalCount))
    assert.equal("[]", hypatos.json_encode(v.data))
    assert.equal(200, meta.status)
    assert.equal(1, meta.attempts)
    assert.equal("application/json", meta.headers["content-type"])
    assert.equal(99, meta.rate_limit.remaining)
    assert.near(5, meta.rate_limit.reset, 0.01)
  end)

  it("returns true for empty bodies (202, 204)", function()
    local c = helpers.client()
    local rec = helpers.call(c, "POST", "/d/x/title", { body = "t", content_type = "text/plain" },
      { tok(), { status = 202, headers = {} } })
    assert.is_true(rec.result.value)
    rec = helpers.call(c, "DELETE", "/e/x", nil, { { status = 204, headers = {} } })
    assert.is_true(rec.result.value)
  end)

  it("returns bytes for raw calls and non-JSON bodies", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/files/1", nil, { tok(),
      { status = 200, headers = { ["content-type"] = "application/pdf" }, body = "%PDF-1.4" } })
    assert.equal("%PDF-1.4", rec.result.value)
    rec = helpers.call(c, "GET", "/x", { raw = true }, { json(200, { a = 1 }) })
    assert.equal('{"a":1}', rec.result.value)
    assert.equal("*/*", rec.sends[1].headers.Accept)
  end)

  it("fails as decode on a broken JSON body", function()
    local c = helpers.client()
    local rec = helpers.call(c, "GET", "/u", nil, { tok(),
      { status = 200, headers = { ["content-type"] = "application/json" }, body = '{"data": [' } })
    local err = rec.result.error
    assert.equal("decode", err.kind)
    assert.equal(200, err.status)
    assert.equal('{"data": [', err.body)
    assert.matches("^response body is not valid JSON", err.message)
  end)

  it("summarises 422 validation lists", function()
    local c = helpers.client()
    local detail = { { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" },
      { loc = { "body", "name" }, msg = "field required", type = "value_error.missing" } }
    local rec = helpers.call(c, "POST", "/enrichment/suppliers", { json = {} },
      { tok(), json(422, { detail = detail }) })
    local err = rec.result.error
    assert.equal(422, err.status)
    assert.equal("body.externalId: field required; body.name: field required", err.message)
    assert.same(detail, err.detail)
  end)
end)

describe("engine: hooks", function()
  it("shows requests and responses without the Authorization header", function()
    local seen = {}
    local c = helpers.client({
      on_request = function(r) seen[#seen + 1] = r end,
      on_response = function(r) seen[#seen + 1] = r end,
    })
    helpers.call(c, "GET", "/u", nil, { tok(), json(500, {}), OK })
    assert.equal(6, #seen)
    for _, r in ipairs(seen) do
      for k, v in pairs(r.headers or {}) do
        assert.is_nil(k:lower():find("authorization"))
        assert.is_nil(tostring(v):find("tok-1", 1, true))
        assert.is_nil(tostring(v):find("Basic", 1, true))
      end
    end
    assert.is_true(seen[1].token_request)
    assert.equal(200, seen[2].status)
    assert.equal(1, seen[3].attempt)
    assert.equal(500, seen[4].status)
    assert.equal(2, seen[5].attempt)
  end)

  it("lets a hook error propagate", function()
    local c = helpers.client({ on_request = function() error("hook broke") end })
    local call = assert(c:prepare("GET", "/u"))
    assert.has_error(function() call:step(1000) end)
  end)
end)

describe("engine: call:advance hands the callbacks to the driver", function()
  it("asks the cache, offers the new token, runs the hooks — as actions, in order", function()
    local seen, store = {}, {}
    local cache = { get = function(k) return store[k] end, set = function(k, t) store[k] = t end }
    local c = helpers.client({ token_cache = cache, on_request = function() end, on_response = function() end })
    local call = assert(c:prepare("GET", "/u"))
    local act = call:advance(1000)
    while act.type ~= "done" and act.type ~= "fail" do
      seen[#seen + 1] = act.type .. (act.name and ("/" .. act.name) or "")
      if act.type == "cache_get" then
        assert.matches("^hypatos%-token:v1:%x+$", act.key)
        assert.equal(cache.get, act.fn)
        act = call:advance(1000, act.fn(act.key, act.refused))
      elseif act.type == "cache_set" then
        assert.equal("tok-1", act.token.access_token)
        act.fn(act.key, act.token)
        act = call:advance(1000)
      elseif act.type == "hook" then
        assert.is_nil(act.info.headers and act.info.headers.Authorization)
        act.fn(act.info)
        act = call:advance(1000)
      elseif act.type == "send" then
        act = call:advance(1000, act.token_request and tok() or OK)
      end
    end
    assert.equal("done", act.type)
    assert.same({ "cache_get", "hook/on_request", "send", "hook/on_response", "cache_set",
      "hook/on_request", "send", "hook/on_response" }, seen)
    assert.equal("tok-1", select(2, next(store)).access_token)
  end)

  it("passes the refused token to the cache after a 401, and takes a new one from it", function()
    local refused_seen
    local store = {}
    local cache = { get = function(k, refused) refused_seen = refused return store[k] end,
      set = function(k, t) store[k] = t end }
    local c = helpers.client({ token_cache = cache })
    helpers.call(c, "GET", "/u", nil, { tok(), OK }, 1000)
    local key = next(store)
    store[key] = { access_token = "tok-other", expires_at = 9000, lifetime = 3600 } -- another process refreshed
    local rec = helpers.call(c, "GET", "/u", nil, { json(401, {}), OK }, 1001)
    assert.equal("done", rec.result.type)
    assert.equal("tok-1", refused_seen)
    assert.equal("Bearer tok-other", rec.sends[2].headers.Authorization)
  end)
end)

describe("engine: recycled calls (call:recycle, what the nginx driver does)", function()
  it("hands a recycled call to the client's next prepare, as good as a new one", function()
    local c = helpers.client()
    local a = assert(c:prepare("GET", "/a", { headers = { ["X-A"] = "1" } }))
    local rec = helpers.run(a, { tok(), OK })
    assert.equal("done", rec.result.type)
    a:recycle()
    local b = assert(c:prepare("GET", "/b", { query = { x = 1 } }))
    assert.is_true(rawequal(a, b))
    rec = helpers.run(b, { OK })
    assert.equal("https://api.example.test/v2/b?x=1", rec.sends[1].url)
    assert.is_nil(rec.sends[1].headers["X-A"])
    assert.same({ id = "u1" }, rec.result.value)
    b:recycle()
    local t = assert(c:prepare_token()) -- a token-only call out of the same spare
    assert.is_true(rawequal(a, t))
    assert.equal("tok-1", helpers.run(t, {}).result.value.access_token)
    t:close()
    assert.same({ requests = 2, token_requests = 1 }, c:stats())
  end)

  it("is closed to whoever still holds it", function()
    local c = helpers.client()
    local a = assert(c:prepare("GET", "/a"))
    helpers.run(a, { tok(), OK })
    a:recycle()
    a:recycle() -- idempotent
    local ok, err = pcall(a.step, a, 1000)
    assert.is_false(ok)
    assert.matches("hypatos.Call is closed", err, 1, true)
  end)

  it("lets go what the call held in the client, as close does", function()
    local c = helpers.client({ token_cache = { get = function()
      return { access_token = "tok-c", expires_at = 9000, lifetime = 3600 } end, set = function() end } })
    local a, b = assert(c:prepare("GET", "/a")), assert(c:prepare("GET", "/b"))
    assert.equal("send", a:step(1000).type)
    assert.equal("sleep", b:step(1000.01).type) -- the first request of the client is out
    a:recycle()
    assert.equal("send", b:step(1000.02).type)
    b:close()
  end)

  it("keeps at most 16 per client; none of a closed client", function()
    local c = helpers.client()
    local calls, seen = {}, {}
    for i = 1, 20 do calls[i] = assert(c:prepare("GET", "/a")) end
    for i = 1, 20 do calls[i]:recycle() end
    for i = 1, 20 do seen[i] = assert(c:prepare("GET", "/a")) end
    local reused = 0
    for i = 1, 20 do
      for j = 1, 20 do if rawequal(seen[i], calls[j]) then reused = reused + 1 end end
    end
    assert.equal(16, reused)
    for i = 1, 20 do seen[i]:close() end
    local d = helpers.client()
    local x = assert(d:prepare("GET", "/a"))
    d:close()
    x:recycle()
    assert.is_false(pcall(x.step, x, 1000))
  end)
end)
