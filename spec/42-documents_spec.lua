-- client.documents against the local server: listing, processing, waiting, updates.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

describe("documents", function()
  local srv, c, seed
  lazy_setup(function()
    srv = helpers.start_server({ config = { processing_time = 0.4 } })
    seed = srv:control("GET", "/_mock/seed")
  end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv, { backoff_base = 0.01 })
  end)

  local function project_id()
    local page = assert(c.projects:list())
    return page.data[1].id
  end

  it("lists with repeated state and projectId keys, and iterates every document", function()
    local all = {}
    for d in c.documents:each() do all[#all + 1] = d end
    assert.is_true(#all >= 20)
    local page = assert(c.documents:list({ state = { "done", "doneAutomatically" }, limit = 50 }))
    for _, d in ipairs(page.data) do
      assert.is_true(d.state == "done" or d.state == "doneAutomatically")
    end
    local pid = all[1].projectId
    local n = 0
    for d in c.documents:each({ projectId = { pid } }) do
      n = n + 1
      assert.equal(pid, d.projectId)
    end
    assert.is_true(n >= 1)
    local log = srv:stats().log
    local q = log[#log].query
    assert.equal("limit=50&offset=0&projectId=" .. pid, q)
  end)

  it("reports the API's validation errors with their titles", function()
    local v, err = c.documents:list({ projectId = { "not-an-id" } })
    assert.is_nil(v)
    assert.equal(400, err.status)
    assert.equal("Provided project identifier is invalid", err.title)
    v, err = c:request("GET", "/documents", { query = { limit = -1 } }) -- list checks limit before sending
    assert.is_nil(v)
    assert.equal("Limit out of range", err.title)
    assert.has_error(function() c.documents:list({ limit = -1 }) end,
      'hypatos: query "limit" must be a non-negative integer (a number or a string of digits), got -1')
    v, err = c.documents:get("aaaaaaaaaaaaaaaaaaaaaaaa")
    assert.is_nil(v)
    assert.equal(404, err.status)
    assert.equal("Document does not exist", err.title)
    assert.equal("hypatos: http 404: Document does not exist: The document with given identifier does not exist " ..
      "(GET " .. srv.url .. "/documents/aaaaaaaaaaaaaaaaaaaaaaaa)", tostring(err))
  end)

  it("pages with pages() and stops on a short page", function()
    local pager = c.documents:pages({ limit = 10 })
    local sizes = {}
    while true do
      local page, meta = pager:next()
      if not page then
        assert.is_nil(meta)
        break
      end
      sizes[#sizes + 1] = #page.data
    end
    local total = 0
    for _, s in ipairs(sizes) do total = total + s end
    assert.equal(total, assert(c.documents:list()).totalCount)
    assert.is_true(sizes[#sizes] < 10 or total % 10 == 0)
  end)

  it("uploads, processes, follows the states and waits for the end", function()
    local up = assert(c.files:upload({ data = "%PDF-1.4 invoice", filename = "inv.pdf" }))
    local pid = project_id()
    local job, meta = c.documents:process_file({ fileId = up.id, projectId = pid, externalId = "ext-1" })
    assert.is_table(job, tostring(meta))
    assert.equal(202, meta.status)
    assert.equal(up.id, job.fileId)
    local doc = assert(c.documents:get(job.documentId))
    assert.equal("new", doc.state)
    local t0 = helpers.now()
    local final = assert(c.documents:wait(job.documentId, { interval = 0.05, timeout = 10 }))
    assert.is_true(final.state == "done" or final.state == "doneAutomatically")
    assert.is_true(helpers.now() - t0 < 5)
    assert.is_table(final.entities)
    local states = assert(c.documents:states(job.documentId))
    assert.equal("new", states[1].state)
    assert.equal(final.state, states[#states].state)
    assert.is_true(#states >= 3)
  end)

  it("gives up waiting with a timeout error that carries the last document", function()
    srv:configure({ processing_time = 30 })
    local up = assert(c.files:upload({ data = "%PDF", filename = "slow.pdf" }))
    local job = assert(c.documents:process_file({ fileId = up.id, projectId = project_id() }))
    local sleeps = {}
    local doc, err = c.documents:wait(job.documentId, { timeout = 0.5, interval = 0.1,
      sleep = function(s) sleeps[#sleeps + 1] = s; hypatos.sleep(s) end })
    assert.is_nil(doc)
    assert.equal("timeout", err.kind)
    assert.equal(job.documentId, err.document.id)
    assert.matches("^document %x+ is still \"%a+\" after 0.5 s$", err.message)
    assert.near(0.1, sleeps[1], 1e-9)
    assert.near(0.15, sleeps[2], 1e-9)
    for i = 2, #sleeps - 1 do assert.is_true(sleeps[i] >= sleeps[i - 1]) end
  end)

  it("waits for chosen states", function()
    local up = assert(c.files:upload({ data = "%PDF", filename = "x.pdf" }))
    local job = assert(c.documents:process_file({ fileId = up.id, projectId = project_id() }))
    local doc = assert(c.documents:wait(job.documentId, { states = { "processing", "extracted" }, interval = 0.02,
      timeout = 5 }))
    assert.is_true(doc.state == "processing" or doc.state == "extracted")
  end)

  it("submits several files as one case", function()
    local a = assert(c.files:upload({ data = "%PDF a", filename = "a.pdf" }))
    local b = assert(c.files:upload({ data = "%PDF b", filename = "b.pdf" }))
    local job, meta = c.documents:process_file_batch({ fileIds = { a.id, b.id }, projectId = project_id() })
    assert.is_table(job, tostring(meta))
    assert.is_string(job.documentId)
  end)

  it("does not re-send process_file after a dropped connection", function()
    local up = assert(c.files:upload({ data = "%PDF", filename = "once.pdf" }))
    srv:fault({ method = "POST", path = "/v2/documents/process-file", kind = "close" })
    local job, err = c.documents:process_file({ fileId = up.id, projectId = project_id() })
    assert.is_nil(job)
    assert.equal("network", err.kind)
    assert.equal(1, srv:stats().by_route["POST /v2/documents/process-file"])
  end)

  it("sets title, external id, external data and transfer results (202 → true)", function()
    local id = assert(c.documents:list({ limit = 1 })).data[1].id
    assert.is_true((c.documents:set_title(id, "Rechnung März")))
    assert.is_true((c.documents:set_external_id(id, "ERP-4711")))
    assert.is_true((c.documents:set_external_data(id, { erp = "sap", batch = "7" })))
    assert.is_true((c.documents:transfer(id, { successful = false, message = "ERP down" })))
    local doc = assert(c.documents:get(id))
    assert.equal("Rechnung März", doc.title)
    assert.equal("ERP-4711", doc.externalId)
    assert.same({ erp = "sap", batch = "7" }, doc.externalData)
    assert.equal("transferFailed", doc.state)
    assert.is_true((c.documents:set_external_data(id, {})))
    assert.same({}, assert(c.documents:get(id)).externalData or {})
    local v, err = c.documents:set_title(id, string.rep("t", 257))
    assert.is_nil(v)
    assert.equal(400, err.status)
  end)

  it("retries the idempotent updates after a 503 or a dropped connection", function()
    local id = assert(c.documents:list({ limit = 1 })).data[1].id
    srv:fault({ { method = "POST", path = "/v2/documents/" .. id .. "/title", kind = "status", status = 503 },
      { method = "POST", path = "/v2/documents/" .. id .. "/title", kind = "close" } })
    local ok, meta = c.documents:set_title(id, "again")
    assert.is_true(ok, tostring(meta))
    -- libcurl itself may re-send once on the reused connection the server dropped
    assert.is_true(meta.attempts >= 2)
  end)

  it("treats split as a final state: wait returns at once for a split document", function()
    local page = assert(c.documents:list({ state = { "split" } }))
    assert.equal(1, #page.data)
    local t0 = helpers.now()
    local doc, err = c.documents:wait(page.data[1].id, { timeout = 3, interval = 0.05 })
    assert.is_table(doc, tostring(err))
    assert.equal("split", doc.state)
    assert.is_true(helpers.now() - t0 < 2)
    assert.equal(1, srv:stats().by_route["GET /v2/documents/{id}"])
  end)

  describe("set_external_data refuses what the API would silently lose", function()
    local id
    before_each(function() id = assert(c.documents:list({ limit = 1 })).data[1].id end)

    local function refused(map, pattern)
      local before = srv:stats().by_route["POST /v2/documents/{id}/external-data"] or 0
      local v, err = c.documents:set_external_data(id, map)
      assert.is_nil(v)
      assert.equal("invalid", err.kind)
      assert.matches(pattern, err.message)
      assert.equal("POST", err.method)
      assert.matches("/documents/" .. id .. "/external%-data$", err.url)
      assert.equal(before, srv:stats().by_route["POST /v2/documents/{id}/external-data"] or 0) -- nothing sent
    end

    it("more than 20 keys", function()
      local map = {}
      for i = 1, 21 do map["k" .. i] = "v" end
      refused(map, "holds 21 keys; the API keeps at most 20")
      map.k21 = nil
      assert.is_true((c.documents:set_external_data(id, map)))
      assert.equal(20, (function() local n = 0 for _ in pairs(assert(c.documents:get(id)).externalData) do
        n = n + 1 end return n end)())
    end)

    it("a key longer than 50 characters (counted in characters, not bytes)", function()
      refused({ [string.rep("k", 51)] = "v" }, 'key "' .. string.rep("k", 51) .. '" is 51 characters long')
      local fifty = string.rep("ä", 50)     -- 100 bytes, 50 characters: kept
      assert.is_true((c.documents:set_external_data(id, { [fifty] = "v" })))
      assert.equal("v", assert(c.documents:get(id)).externalData[fifty])
    end)

    it("keys that differ only in case, and values that are not scalars", function()
      refused({ ERP = "sap", erp = "sap" }, 'keys "ERP" and "erp" differ only in case')
      refused({ nested = { a = "b" } }, 'value of "nested" must be a string, number or boolean, got table')
      refused({ gone = hypatos.null }, "got hypatos.null")
      refused({ [1] = "x" }, "keys must be strings")
      refused({ n = 0 / 0 }, "not a finite number")
    end)

    it("sends numbers and booleans as strings, exactly", function()
      assert.is_true((c.documents:set_external_data(id, { batch = 7, rate = 0.1, big = 2 ^ 53, ok = true,
        no = false })))
      assert.same({ batch = "7", rate = "0.1", big = "9007199254740992", ok = "true", no = "false" },
        assert(c.documents:get(id)).externalData)
    end)
  end)

  it("raises for misuse", function()
    assert.has_error(function() c.documents:process_file("x") end, "hypatos: documents:process_file body must be a table, got string")
    assert.has_error(function() c.documents:set_title("x", 5) end, "hypatos: documents:set_title text must be a string, got number")
    assert.has_error(function() c.documents:wait("x", { tmeout = 1 }) end, 'hypatos: documents:wait: unknown option "tmeout"')
    assert.has_error(function() c.documents:list("x") end, "hypatos: query must be a table, got string")
    assert.has_error(function() c.documents:get("x", { retries = 1 }) end)
  end)

  it("answers nil, err for an empty id instead of listing", function()
    local v, err = c.documents:get("")
    assert.is_nil(v)
    assert.equal("invalid", err.kind)
    assert.is_nil(seed.nothing)
  end)

  it("waits for the final states the README lists (documents.TERMINAL_STATES)", function()
    local readme = assert(helpers.read("README.md"))
    local section = assert(readme:match("### Waiting for documents(.-)\n## "))
    local list = assert(section:match("default `documents.TERMINAL_STATES`: (.-)%)"))
    local listed = {}
    for state in list:gmatch("`([%w]+)`") do listed[#listed + 1] = state end
    assert.same(c.documents.TERMINAL_STATES or require("hypatos.documents").TERMINAL_STATES, listed)
  end)
end)
