-- spec/84-store_spec.lua — the shared store's rules (hypatos.store), exactly: its scripts run
-- against an in-memory Redis with a clock the spec sets (spec/fixtures/fake_redis.lua). The
-- limiter: one slot per request on the store's clock, reserved in one call, fed by what the
-- answers said (limit, window, remaining, reset, 429 pauses); the token: one fetch for the
-- fleet (a ticket), a generation so a late write never replaces a newer token, refused tokens
-- dropped only while current, refusals remembered. Then a client driving its engine with such a
-- store. The real thing (redis-server, processes, nginx) is spec/85.
local helpers = require "spec.helpers"
local fake_redis = require "spec.fixtures.fake_redis"
local shared = require "hypatos.store"

local QKEY = "hypatos-quota:v1:" .. ("a"):rep(32)
local TKEY = "hypatos-token:v1:" .. ("a"):rep(32) .. ("b"):rep(32)

local function setup()
  local F = fake_redis.new()
  local store = shared.new(F.eval, { now = function() return F.now end })
  return F, store
end

local OBS = { limit = 20, window = 1 }
local GAP = 1 / 20 * (1 + shared.SLACK)

describe("hypatos.store: the limiter", function()
  it("reserves one slot per request, 1/limit of the window (plus the slack) apart", function()
    local F, store = setup()
    local wait, reserved, fleet = store.acquire(QKEY, "u1", OBS, 60)
    assert.equal(0, wait)
    assert.is_true(reserved)
    assert.equal(1, fleet)
    for i = 1, 5 do
      wait, reserved = store.acquire(QKEY, "u1", nil, 60)
      assert.near(i * GAP, wait, 1e-5)
      assert.is_true(reserved)
    end
    F.now = F.now + 10 -- idle: the next one goes at once, no burst of saved slots
    assert.equal(0, (store.acquire(QKEY, "u1", nil, 60)))
    assert.near(GAP, (store.acquire(QKEY, "u1", nil, 60)), 1e-5)
  end)

  it("spaces requests by COLD_GAP until the quota is known", function()
    local _, store = setup()
    assert.equal(0, (store.acquire(QKEY, "u1", nil, 60)))
    assert.near(shared.COLD_GAP, (store.acquire(QKEY, "u2", nil, 60)), 1e-5)
  end)

  it("reserves nothing for a wait longer than the call accepts", function()
    local _, store = setup()
    store.acquire(QKEY, "u1", OBS, 60)
    local wait, reserved = store.acquire(QKEY, "u1", nil, 0.01)
    assert.near(GAP, wait, 1e-5)
    assert.is_false(reserved)
    assert.near(GAP, (store.acquire(QKEY, "u1", nil, 60)), 1e-5) -- the slot is still free
  end)

  it("pauses the fleet for a 429 or a Retry-After, from when the answer came", function()
    local F, store = setup()
    store.acquire(QKEY, "u1", OBS, 60)
    F.now = F.now + 0.5
    local wait = store.acquire(QKEY, "u1", { pause = 2, age = 0.2 }, 60)
    assert.near(1.8, wait, 1e-5)
    assert.near(1.8 + GAP, (store.acquire(QKEY, "u2", nil, 60)), 1e-5)
  end)

  it("pauses until the window's end when nothing is left, taking the tightest bound of the resets", function()
    local F, store = setup()
    F.now = 1000.2
    store.acquire(QKEY, "u1", { limit = 20, window = 1, remaining = 15, reset = 1, age = 0 }, 60) -- ≤ 1001.2
    F.now = 1000.9
    local wait = store.acquire(QKEY, "u1", { limit = 20, window = 1, remaining = 0, reset = 1, age = 0 }, 60)
    assert.near(0.3, wait, 1e-5) -- until 1001.2, not 1001.9
  end)

  it("pushes the next slot out when fewer are left than the pace would use", function()
    local F, store = setup()
    F.now = 1000.0
    -- 2 left for 0.9 s: the two go at the end, not at the pace (someone else used the window)
    local wait = store.acquire(QKEY, "u1", { limit = 20, window = 1, remaining = 2, reset = 0.9, age = 0 }, 60)
    assert.near(0.9 - 2 * GAP, wait, 1e-5)
  end)

  it("reserves nothing for an acquire the store runs after its client stopped waiting (a stall)", function()
    local F = fake_redis.new()
    local client_now, skew = 1000, 0 -- the store's clock is the client's + skew
    local stalled, queued = false, {}
    local function eval(script, keys, args)
      if stalled then -- the command waits in the stalled store; the client's wait times out
        queued[#queued + 1] = { script, keys, args }
        return nil, "timeout"
      end
      F.now = client_now + skew
      return F.eval(script, keys, args)
    end
    local store = shared.new(eval, { now = function() return client_now end, timeout = 0.1 })
    assert.equal(0, (store.acquire(QKEY, "u1", OBS, 60))) -- now; the offset is learnt
    stalled = true
    for _ = 1, 3 do assert.is_nil((store.acquire(QKEY, "u1", nil, 60))) end -- the client goes on alone
    -- 1 s later the store runs what waited: too late for its clients, it reserves nothing
    stalled, client_now = false, client_now + 1
    F.now = client_now + skew
    for _, q in ipairs(queued) do assert.equal("late", F.eval(q[1], q[2], q[3])[1]) end
    assert.equal(0, (store.acquire(QKEY, "u1", nil, 60))) -- a slot now, not after three phantom ones
    -- the client's clock goes back 5 s: its first ask looks late, the second (offset learnt) is not
    client_now, skew = client_now - 5, skew + 5
    assert.near(GAP, (store.acquire(QKEY, "u1", nil, 60)), 1e-6)
    -- a store built without a timeout sends no deadline
    local plain = shared.new(eval, { now = function() return client_now end })
    assert.near(2 * GAP, (plain.acquire(QKEY, "u2", nil, 60)), 1e-6)
  end)

  it("counts the fleet: the clients that asked lately", function()
    local F, store = setup()
    store.acquire(QKEY, "u1", OBS, 60)
    store.acquire(QKEY, "u2", nil, 60)
    local _, _, fleet = store.acquire(QKEY, "u3", nil, 60)
    assert.equal(3, fleet)
    F.now = F.now + shared.FLEET_TTL + 1
    _, _, fleet = store.acquire(QKEY, "u3", nil, 60)
    assert.equal(1, fleet)
  end)

  it("fails as a store that cannot be asked: acquire returns nil, err; get raises", function()
    local F, store = setup()
    F.down = true
    local wait, err = store.acquire(QKEY, "u1", nil, 60)
    assert.is_nil(wait)
    assert.matches("connection", err)
    assert.has_error(function() store.get(TKEY) end)
  end)
end)

describe("hypatos.store: the token", function()
  local function token(name, life)
    return { access_token = name, scope = "users.read", expires_at = 1000 + (life or 3600), lifetime = life or 3600 }
  end

  it("gives one fetch a ticket, makes the others wait, then hands out the token it stored", function()
    local F, store = setup()
    local t, ticket = store.get(TKEY)
    assert.is_nil(t)
    assert.matches("^1:", ticket)
    assert.equal(shared.POLL, store.get(TKEY)) -- another client: wait and ask again
    assert.is_true(store.set(TKEY, token("tok-1"), ticket))
    F.now = 1010
    local got = store.get(TKEY)
    assert.equal("tok-1", got.access_token)
    assert.equal("users.read", got.scope)
    assert.near(1000 + 3600, got.expires_at, 1e-6) -- from the store's remaining time
    assert.equal(3600, got.lifetime)
  end)

  it("refuses a late write: a holder whose lock expired cannot replace the newer token", function()
    local F, store = setup()
    local _, t1 = store.get(TKEY)
    F.now = F.now + shared.LOCK_TTL + 1 -- the first holder stalls past its lock
    local _, t2 = store.get(TKEY)
    assert.matches("^2:", t2)
    assert.is_true(store.set(TKEY, token("tok-new"), t2))
    assert.is_false(store.set(TKEY, token("tok-late"), t1))
    assert.equal("tok-new", store.get(TKEY).access_token)
  end)

  it("drops a refused token only while it is the stored one: one revocation, one new token", function()
    local F, store = setup()
    local _, t1 = store.get(TKEY)
    store.set(TKEY, token("tok-1"), t1)
    local _, t2 = store.get(TKEY, "tok-1") -- the first 401: dropped, this client fetches
    assert.matches("^2:", t2)
    assert.equal(shared.POLL, store.get(TKEY, "tok-1")) -- a late 401 of tok-1: wait for the new one
    store.set(TKEY, token("tok-2"), t2)
    F.now = F.now + 1
    assert.equal("tok-2", store.get(TKEY, "tok-1").access_token) -- late 401s never drop tok-2
  end)

  it("remembers a refusal of the credentials, then lets a fetch try again", function()
    local F, store = setup()
    local _, t1 = store.get(TKEY)
    store.release(TKEY, t1, { kind = "auth", status = 401, message = "token request refused: Invalid client credentials" })
    local d = store.get(TKEY)
    assert.same({ status = 401, message = "token request refused: Invalid client credentials" }, d.denied)
    F.now = F.now + shared.DENY_TTL + 1
    local t, t2 = store.get(TKEY)
    assert.is_nil(t)
    assert.matches("^2:", t2)
    -- a failure that is no refusal (the network) releases the lock and remembers nothing
    store.release(TKEY, t2, { kind = "network", message = "Connection refused" })
    assert.matches("^3:", select(2, store.get(TKEY)))
  end)

  it("refreshes ahead of expiry: one client fetches, the others keep the old token meanwhile", function()
    local F, store = setup()
    local _, t1 = store.get(TKEY)
    store.set(TKEY, token("tok-1", 100), t1)
    F.now = 1000 + 95 -- 5 s left, within the 10 s margin
    local t, t2 = store.get(TKEY)
    assert.is_nil(t)
    assert.matches("^2:", t2)
    local old = store.get(TKEY)
    assert.equal("tok-1", old.access_token)
    assert.near(5, old.lifetime, 0.01) -- usable for what it has left
  end)
end)

describe("a client with a shared store", function()
  local tok, json = helpers.token_response, helpers.json

  it("asks the store before every request, tells it what the answers said, shares the token", function()
    local F, store = setup()
    F.now = 1000
    local seen = {}
    local spy = setmetatable({ acquire = function(key, uid, obs, max_wait)
      seen[#seen + 1] = { key = key, uid = uid, obs = obs, max_wait = max_wait }
      return store.acquire(key, uid, obs, max_wait)
    end }, { __index = store })
    local c = helpers.client({ store = spy })
    local limited = json(200, { id = "u1" }, { ["x-ratelimit-limit"] = "20, 20;w=1",
      ["x-ratelimit-remaining"] = "18", ["x-ratelimit-reset"] = "1" })
    local rec = helpers.call(c, "GET", "/u", nil, { tok(), limited }, 1000)
    assert.equal("done", rec.result.type)
    assert.equal(1, #seen) -- the API request (the token request does not queue for a slot)
    assert.matches("^hypatos%-quota:v1:%x+$", seen[1].key)
    assert.matches("^%x+$", seen[1].uid)
    assert.is_nil(seen[1].obs) -- the token answer had no rate-limit headers
    assert.equal(60, seen[1].max_wait)
    rec = helpers.call(c, "GET", "/u", nil, { limited }, 1000.01)
    assert.same({ limit = 20, window = 1, remaining = 18, reset = 1 },
      { limit = seen[2].obs.limit, window = seen[2].obs.window, remaining = seen[2].obs.remaining,
        reset = seen[2].obs.reset })
    assert.equal("done", rec.result.type)
    local st = c:stats().store
    assert.equal("shared", st.mode)
    assert.equal(2, st.acquires)
    -- a second client of the tenant takes the token from the store: no token request
    local c2 = helpers.client({ store = store })
    rec = helpers.call(c2, "GET", "/u", nil, { limited }, 1000.02)
    assert.equal("Bearer tok-1", rec.sends[1].headers.Authorization)
    assert.equal(0, c2:stats().token_requests)
  end)

  it("asks for a new slot when the token was lost while a call waited for its slot", function()
    local F, store = setup()
    F.now = 1000
    local acquires = 0
    local spy = setmetatable({ acquire = function(...)
      acquires = acquires + 1
      return store.acquire(...)
    end }, { __index = store })
    local c = helpers.client({ store = spy })
    local limited = json(200, {}, { ["x-ratelimit-limit"] = "20, 20;w=1", ["x-ratelimit-remaining"] = "18",
      ["x-ratelimit-reset"] = "1" })
    helpers.call(c, "GET", "/u", nil, { tok(), limited }, 1000)
    local a, b = assert(c:prepare("GET", "/a")), assert(c:prepare("GET", "/b"))
    local act_b = b:step(1000) -- B: a slot GAP from now
    assert.equal("sleep", act_b.type)
    local act_a = a:step(1000) -- A: the slot after it
    assert.equal("sleep", act_a.type)
    local a_slot = 1000 + act_a.seconds
    F.now = 1000 + act_b.seconds
    act_b = b:step(F.now)
    assert.equal("send", act_b.type)
    act_b = b:step(F.now + 0.01, json(401, { message = "token revoked" })) -- the token is gone
    assert.equal("send", act_b.type)
    assert.matches("/auth/token$", act_b.url) -- B fetches the new one
    F.now = a_slot
    act_a = a:step(a_slot) -- A's slot is due, but there is no token: it waits for B's fetch
    assert.equal("sleep", act_a.type)
    act_b = b:step(a_slot + 0.05, tok({ access_token = "tok-2" }))
    assert.is_true(act_b.type == "send" or act_b.type == "sleep", act_b.type) -- B: its request, or its slot
    F.now = a_slot + 0.1
    local before = acquires
    act_a = a:step(a_slot + 0.1) -- A's slot is 0.1 s old now, and the token came in between
    assert.equal(before + 1, acquires) -- a new slot: late slots of calls that waited for a token
    -- would all be spent at once, and pile into one of the server's windows
    assert.equal("sleep", act_a.type) -- after B's new slot
    a:close()
    b:close()
  end)

  it("paces alone with its share of the quota while the store is down, and asks again later", function()
    local F, store = setup()
    local c = helpers.client({ store = store })
    helpers.call(c, "GET", "/u", nil, { tok(), json(200, {}) }, 1000)
    F.down = true
    local rec = helpers.call(c, "GET", "/u", nil, { json(200, {}) }, 1001)
    assert.equal("done", rec.result.type) -- no call lost
    assert.equal("fallback", c:stats().store.mode)
    assert.equal(1, c:stats().store.failures)
    F.down = false
    helpers.call(c, "GET", "/u", nil, { json(200, {}) }, 1000 + 1 + 3)
    assert.equal(3, c:stats().store.acquires) -- asked again after the breaker's 2 s
  end)

  it("writes the store's decisions as debug lines (never a token or a ticket)", function()
    local F, store = setup()
    local lines = {}
    local c = helpers.hypatos.new(helpers.opts({ store = store, debug = function(l) lines[#lines + 1] = l end }))
    local limited = json(200, {}, { ["x-ratelimit-limit"] = "20, 20;w=1", ["x-ratelimit-remaining"] = "18",
      ["x-ratelimit-reset"] = "1" })
    helpers.call(c, "GET", "/u", nil, { tok(), limited }, 1000)
    helpers.call(c, "GET", "/u", nil, { limited }, 1000)
    F.down = true
    helpers.call(c, "GET", "/u", nil, { limited }, 1000)
    local text = table.concat(lines, "\n")
    assert.matches("hypatos: debug store: token: this client fetches it", text, 1, true)
    assert.matches("hypatos: debug store: slot now, fleet 1", text, 1, true)
    assert.matches("hypatos: debug store: slot in 0%.%d+ s %(reserved%), fleet 1", text)
    assert.matches("hypatos: debug store: failed (connection: Connection refused): pacing alone", text, 1, true)
    assert.is_nil(text:find("tok-1", 1, true))
    assert.is_nil(text:find("1:", 1, true)) -- no ticket
  end)

  it("refuses a store and a token_cache together, and a store without its functions", function()
    local _, store = setup()
    assert.has_error(function() helpers.client({ store = store, token_cache = store }) end,
      'hypatos.new: options "store" and "token_cache" cannot both be given: the store keeps the token')
    assert.has_error(function() helpers.client({ store = { get = print } }) end,
      'hypatos.new: option "store" must be a store (a table with acquire, get, set and release functions) '
        .. "(acquire is missing)")
  end)
end)
