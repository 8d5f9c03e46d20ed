-- client.projects against the local server: create, update, schema round trip.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

describe("projects", function()
  local srv, c
  lazy_setup(function() srv = helpers.start_server() end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv, { backoff_base = 0.01 })
  end)

  local NEW = {
    name = "Invoices DE", note = "created by a spec",
    ocr = { engine = "abbyy", features = hypatos.array(), languages = { "German", "English" } },
    extractionModelId = "63e6663823b4c1f5287398bb",
    completion = "automatic", duplicates = "allow",
    members = { allow = "all" },
  }

  it("lists, searches and iterates projects", function()
    local page = assert(c.projects:list())
    assert.is_true(#page.data >= 4)
    local name = page.data[1].name
    local found = assert(c.projects:list({ search = name:sub(1, 5):lower() }))
    assert.is_true(#found.data >= 1)
    local n = 0
    for _ in c.projects:each() do n = n + 1 end
    assert.equal(page.totalCount, n)
  end)

  it("creates a project, gets it, updates it, clears a field with null", function()
    local p, meta = c.projects:create(NEW)
    assert.is_table(p, tostring(meta))
    assert.equal(201, meta.status)
    assert.equal("Invoices DE", p.name)
    assert.same(assert(c.projects:get(p.id)).name, p.name)
    local u = assert(c.projects:update(p.id, { name = "Invoices DE (live)", note = hypatos.null, retentionDays = 30 }))
    assert.equal("Invoices DE (live)", u.name)
    assert.is_nil(u.note)
    assert.equal(30, u.retentionDays)
    assert.equal("30", tostring(u.retentionDays))
  end)

  it("reports validation errors (422) and unknown projects (404)", function()
    local bad = {}
    for k, v in pairs(NEW) do bad[k] = v end
    bad.name = ""
    local p, err = c.projects:create(bad)
    assert.is_nil(p)
    assert.equal(422, err.status)
    assert.equal("Request validation error", err.title)
    p, err = c.projects:get("aaaaaaaaaaaaaaaaaaaaaaaa")
    assert.is_nil(p)
    assert.equal(404, err.status)
    assert.equal("Project does not exist", err.title)
  end)

  it("round-trips a schema: empty arrays stay arrays, empty objects stay objects", function()
    local id = assert(c.projects:list()).data[1].id
    local schema, meta = c.projects:schema(id)
    assert.is_table(schema, tostring(meta))
    local text = meta.headers["content-length"] and hypatos.json.encode(schema)
    assert.matches('"normalization":%[%]', text)
    assert.matches('"rules":{}', text)
    -- clone it into a new project
    local copy = {}
    for k, v in pairs(NEW) do copy[k] = v end
    copy.name, copy.schema = "Clone", schema
    local p = assert(c.projects:create(copy))
    local schema2 = assert(c.projects:schema(p.id))
    assert.equal(hypatos.json.encode(schema), hypatos.json.encode(schema2))
  end)

  it("does not re-send create after a 500, but retries update", function()
    srv:fault({ method = "POST", path = "/v2/projects", kind = "status", status = 500 })
    local p, err = c.projects:create(NEW)
    assert.is_nil(p)
    assert.is_false(err.retryable)
    assert.equal(1, srv:stats().by_route["POST /v2/projects"])
    local id = assert(c.projects:list()).data[1].id
    srv:fault({ method = "PATCH", path = "/v2/projects/" .. id, kind = "status", status = 502 })
    local u, meta = c.projects:update(id, { note = "retried" })
    assert.is_table(u, tostring(meta))
    assert.equal(2, meta.attempts)
  end)
end)
