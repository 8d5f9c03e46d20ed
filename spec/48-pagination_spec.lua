-- spec/48-pagination_spec.lua — pages/each against the local server, which behaves like the
-- real API: limit is clamped to 50, and the companies list is not paginated at all.
local helpers = require "spec.helpers"

describe("pagination", function()
  local srv, c, seed
  lazy_setup(function()
    srv = helpers.start_server()
    seed = srv:control("GET", "/_mock/seed")
  end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv)
  end)

  local function ids(iter)
    local out, seen = {}, {}
    for item in iter do
      assert.is_nil(seen[item.id], "yielded twice: " .. item.id)
      seen[item.id] = true
      out[#out + 1] = item.id
    end
    return out
  end

  local function log_queries()
    local out = {}
    for _, e in ipairs(srv:stats().log) do
      if e.route == "GET /v2/users" then out[#out + 1] = e.query end
    end
    return out
  end

  it("yields every item with a limit above the server's clamp of 50", function()
    assert.equal(57, seed.users.total)
    assert.equal(57, #ids(c.users:each({ limit = 100 })))
    -- above 50 is sent as 50
    assert.same({ "limit=50&offset=0", "limit=50&offset=50" }, log_queries())
    local pager, sizes = c.users:pages({ limit = 100 }), {}
    for page in pager:iter() do sizes[#sizes + 1] = #page.data end
    assert.same({ 50, 7 }, sizes)
  end)

  it("judges a short page against the limit the server applied (the envelope's limit)", function()
    -- a server that clamps harder than 50 still pages through everything
    srv:fault{ path = "/v2/users", kind = "status", status = 200,
      body = { data = { { id = "a" }, { id = "b" } }, limit = 2, offset = 0, totalCount = 3 } }
    srv:fault{ path = "/v2/users", kind = "status", status = 200,
      body = { data = { { id = "c" } }, limit = 2, offset = 2, totalCount = 3 } }
    assert.same({ "a", "b", "c" }, ids(c.users:each({ limit = 40 })))
  end)

  it("takes limit and offset as numbers or digit strings; anything else raises naming the key", function()
    local all = ids(c.users:each())
    assert.equal(57, #all)
    local from10 = ids(c.users:each({ offset = "10", limit = "20" }))
    assert.equal(47, #from10)
    assert.equal(all[11], from10[1])
    assert.same(from10, ids(c.users:each({ offset = 10, limit = 20 })))
    assert.has_error(function() c.users:each({ limit = "twenty" }) end,
      'hypatos: query "limit" must be a non-negative integer (a number or a string of digits), got "twenty"')
    assert.has_error(function() c.users:pages({ offset = -1 }) end,
      'hypatos: query "offset" must be a non-negative integer (a number or a string of digits), got -1')
    assert.has_error(function() c.users:pages({ limit = 2.5 }) end)
  end)

  it("checks list's limit and offset as pages does, and clamps its limit to 50 before sending", function()
    local page = assert(c.users:list({ limit = "20", offset = "10" }))
    assert.equal(20, #page.data)
    assert.equal(10, page.offset)
    page = assert(c.users:list({ limit = 500 }))
    assert.equal(50, #page.data)
    page = assert(c.users:list({ limit = 0, offset = 56 }))
    assert.equal(1, #page.data)
    assert.same({ "limit=20&offset=10", "limit=50", "limit=50&offset=56" }, log_queries())
    for _, bad in ipairs{ { limit = "twenty" }, { limit = -1 }, { limit = 1.5 }, { limit = "" }, { offset = -1 },
        { offset = "x" }, { offset = true } } do
      local key = next(bad)
      local ok, err = pcall(function() local r = c.users:list(bad) return r end)
      assert.is_false(ok)
      assert.matches('^spec/48%-pagination_spec%.lua:%d+: hypatos: query "' .. key
        .. '" must be a non%-negative integer', err)
    end
    assert.same({ "limit=20&offset=10", "limit=50", "limit=50&offset=56" }, log_queries()) -- nothing sent
    local q = { limit = 500 }
    assert(c.users:list(q))
    assert.equal(500, q.limit) -- the caller's table is left alone
  end)

  it("yields every company exactly once although the API does not paginate them", function()
    local expected = {}
    for _, co in ipairs(assert(c.companies:list()).data) do expected[#expected + 1] = co.id end
    assert.equal(3, #expected)
    for _, limit in ipairs{ 1, 2, 3, 50 } do
      assert.same(expected, ids(c.companies:each({ limit = limit })), "limit " .. limit)
    end
    local pager, pages = c.companies:pages(), 0
    for _ in pager:iter() do pages = pages + 1 end
    assert.equal(1, pages)
    assert.equal(6, srv:stats().by_route["GET /v2/companies"]) -- list, one fetch per each (4) and one for pages
  end)
end)
