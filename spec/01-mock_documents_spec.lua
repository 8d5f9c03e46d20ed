-- spec/01-mock_documents_spec.lua — the mock server's documents: seeded list with
-- filters, sorting and paging; get and states; process-file and the state machine over
-- time; batches; transfer, external data, external id and title.

local launcher = require "mock.launcher"
local testclient = require "mock.testclient"
local socket = require "socket"
local cjson = require "cjson"

-- Epoch seconds of an ISO-8601 UTC timestamp with fraction (differences are what count).
local function epoch(s)
  local y, mo, d, h, mi, sec, frac = s:match("^(%d+)%-(%d+)%-(%d+)T(%d+):(%d+):(%d+)(%.?%d*)Z$")
  assert(y, "not an ISO timestamp: " .. tostring(s))
  return os.time{ year = y, month = mo, day = d, hour = h, min = mi, sec = sec } + (tonumber("0" .. frac) or 0)
end

local ISO = "^%d%d%d%d%-%d%d%-%d%dT%d%d:%d%d:%d%d%.%d%d%d%d%d%dZ$"
local FINAL = { done = true, doneAutomatically = true, failed = true, junk = true, rejected = true,
                transferred = true, transferFailed = true, split = true }

describe("mock documents", function()
  local srv, tc, tok, seed

  lazy_setup(function()
    srv = assert(launcher.start())
    tc = testclient.new(srv)
  end)

  lazy_teardown(function()
    if srv then srv:stop() end
  end)

  before_each(function()
    srv:reset()
    tok = tc:token()
    seed = srv:control("GET", "/_mock/seed")
  end)

  local function get(path) return tc:request("GET", path, { token = tok }) end
  local function post(path, json) return tc:request("POST", path, { token = tok, json = json }) end
  local function text(path, body, ctype)
    return tc:request("POST", path, { token = tok, body = body, ctype = ctype or "text/plain" })
  end
  local function manual_project() return seed.projects[1] end
  local function automatic_project() return seed.automatic_project end

  -- Upload a small file; returns its id.
  local function upload(name)
    local status, json = tc:request("POST", "/files", { token = tok, body = "%PDF-1.4 " .. (name or "x"),
      headers = { ["Content-Type"] = "application/pdf", ["X-Hy-Filename"] = name } })
    assert.equal(201, status)
    return json.id
  end

  -- Process a new file in `project`; returns the 202 answer.
  local function process(project, extra)
    local body = { fileId = upload("scan.pdf"), projectId = project.id }
    for k, v in pairs(extra or {}) do body[k] = v end
    local status, json = post("/documents/process-file", body)
    assert.equal(202, status)
    return json
  end

  describe("seed and list", function()
    it("lists the 25 seeded documents, newest first, as full documents", function()
      local status, json = get("/documents")
      assert.equal(200, status)
      assert.equal(25, json.totalCount)
      assert.equal(20, #json.data)
      assert.equal(20, json.limit)
      assert.equal(0, json.offset)
      assert.equal(seed.documents[25].id, json.data[1].id)
      for _, d in ipairs(json.data) do
        assert.matches("^%x+$", d.id)
        assert.equal(24, #d.id)
        assert.truthy(FINAL[d.state], d.state)
        assert.matches(ISO, d.createdAt)
        assert.matches(ISO, d.updatedAt)
        assert.is_string(d.createdBy)
        assert.is_string(d.updatedBy)
        assert.is_string(d.title)
        assert.is_string(d.fileId)
        assert.is_string(d.projectId)
        assert.is_string(d.entities.number.value)
        assert.is_number(d.entities.totalGrossAmount.value)
        assert.is_string(d.entities.supplier.name.value)
        assert.is_true(#d.entities.items >= 1)
      end
      local states = {}
      for _, d in ipairs(seed.documents) do states[d.state] = true end
      for _, s in ipairs{ "done", "doneAutomatically", "transferred", "transferFailed", "failed" } do
        assert.is_true(states[s], s)
      end
    end)

    it("sorts by createdAt and updatedAt both ways", function()
      local function ids(q)
        local _, json = get("/documents?limit=50&sort=" .. q)
        local out = {}
        for i, d in ipairs(json.data) do out[i] = d end
        return out
      end
      local function ordered(list, field, asc)
        for i = 2, #list do
          local a, b = list[i - 1][field], list[i][field]
          if asc then assert.is_true(a <= b) else assert.is_true(a >= b) end
        end
      end
      ordered(ids("-createdAt"), "createdAt", false)
      ordered(ids("createdAt"), "createdAt", true)
      ordered(ids("%2BcreatedAt"), "createdAt", true)
      ordered(ids("+createdAt"), "createdAt", true) -- an unencoded '+' arrives as a space
      ordered(ids("-updatedAt"), "updatedAt", false)
      ordered(ids("%2BupdatedAt"), "updatedAt", true)
      assert.equal(seed.documents[1].id, ids("createdAt")[1].id)
      for _, q in ipairs{ "name", "-id", "CREATEDAT", "" } do
        local status, json = get("/documents?sort=" .. q)
        assert.equal(400, status, q)
        assert.equal("Invalid sort definition", json.title)
        assert.equal(400, json.status)
      end
    end)

    it("filters by repeated projectId and state keys and by fileId", function()
      local p1, p2 = seed.projects[1].id, seed.projects[2].id
      local _, a = get("/documents?projectId=" .. p1)
      local _, b = get("/documents?projectId=" .. p2)
      local _, ab = get("/documents?projectId=" .. p1 .. "&projectId=" .. p2:upper())
      assert.is_true(a.totalCount > 0 and b.totalCount > 0)
      assert.equal(a.totalCount + b.totalCount, ab.totalCount)
      for _, d in ipairs(a.data) do assert.equal(p1, d.projectId) end
      local _, none = get("/documents?projectId=ffffffffffffffffffffffff")
      assert.equal(0, none.totalCount)
      local _, done = get("/documents?state=done&state=doneAutomatically&limit=50")
      for _, d in ipairs(done.data) do assert.truthy(d.state == "done" or d.state == "doneAutomatically") end
      assert.equal((seed.document_states.done or 0) + (seed.document_states.doneAutomatically or 0), done.totalCount)
      local _, both = get("/documents?state=transferred&projectId=" .. p1)
      for _, d in ipairs(both.data) do
        assert.equal("transferred", d.state)
        assert.equal(p1, d.projectId)
      end
      local _, byfile = get("/documents?fileId=" .. seed.documents[7].fileId)
      assert.equal(1, byfile.totalCount)
      assert.equal(seed.documents[7].id, byfile.data[1].id)
    end)

    it("rejects invalid filters with 400", function()
      for _, q in ipairs{ "projectId=123", "projectId=" .. seed.projects[1].id .. "&projectId=zz", "projectId" } do
        local status, json = get("/documents?" .. q)
        assert.equal(400, status, q)
        assert.equal("Provided project identifier is invalid", json.title)
      end
      for _, q in ipairs{ "state=bogus", "state=done&state=DONE" } do
        local status, json = get("/documents?" .. q)
        assert.equal(400, status, q)
        assert.equal("Provided state is invalid", json.title)
      end
    end)

    it("pages with the usual limit and offset rules", function()
      local _, json = get("/documents?limit=100")
      assert.equal(50, json.limit)
      assert.equal(25, #json.data)
      _, json = get("/documents?limit=10&offset=20")
      assert.equal(5, #json.data)
      assert.equal(20, json.offset)
      local status
      status, json = get("/documents?limit=-1")
      assert.equal(400, status)
      assert.equal("Limit out of range", json.title)
      status, json = get("/documents?offset=x")
      assert.equal(400, status)
      assert.equal("Offset out of range", json.title)
    end)
  end)

  describe("get and states", function()
    it("gets a document like the list shows it", function()
      local _, list = get("/documents?limit=1")
      local status, json = get("/documents/" .. list.data[1].id)
      assert.equal(200, status)
      assert.same(list.data[1], json)
    end)

    it("answers 404 for unknown and malformed ids", function()
      for _, id in ipairs{ "ffffffffffffffffffffffff", "nope", "677930d7c0ffee5eed7d00011" } do
        local status, json = get("/documents/" .. id)
        assert.equal(404, status)
        assert.same({ title = "Document does not exist", detail = "The document with given identifier does not exist",
                      status = 404 }, json)
        assert.equal(404, (get("/documents/" .. id .. "/states")))
      end
    end)

    it("gives the state history as a top-level array, oldest first", function()
      local d = seed.documents[5] -- transferred
      local status, json, _, body = get("/documents/" .. d.id .. "/states")
      assert.equal(200, status)
      assert.matches("^%[", body)
      assert.same({ "new", "processing", "extracted", "done", "transferred" },
        (function() local s = {} for i, h in ipairs(json) do s[i] = h.state end return s end)())
      for i = 2, #json do assert.is_true(epoch(json[i - 1].updatedAt) < epoch(json[i].updatedAt)) end
      local _, doc = get("/documents/" .. d.id)
      assert.equal(json[#json].updatedAt, doc.updatedAt)
      assert.equal(json[4].updatedAt, doc.completedAt)
    end)

    it("needs documents.read", function()
      local t = tc:scoped_token("files.read")
      assert.equal(403, (tc:request("GET", "/documents", { token = t })))
      local ro = tc:token("readonly-client", "readonly-secret")
      assert.equal(200, (tc:request("GET", "/documents", { token = ro })))
      assert.equal(403, (tc:request("POST", "/documents/process-file", { token = ro, json = {} })))
    end)
  end)

  describe("processing", function()
    it("moves a document through its states over processing_time", function()
      srv:configure{ processing_time = 0.4 }
      local accepted = process(automatic_project(), { externalId = "EXT-1", externalData = { batch = "b1", n = 2 } })
      assert.equal(automatic_project().id, accepted.projectId)
      assert.is_string(accepted.fileId)
      local id = accepted.documentId
      local _, doc = get("/documents/" .. id)
      assert.equal("new", doc.state)
      assert.same({}, doc.entities)
      assert.is_nil(doc.completedAt)
      assert.equal("test-client", doc.createdBy)
      assert.equal("scan.pdf", doc.title)
      assert.equal("EXT-1", doc.externalId)
      assert.same({ batch = "b1", n = 2 }, doc.externalData)
      assert.equal(accepted.fileId, doc.fileId)
      local seen, deadline = { "new" }, socket.gettime() + 3
      repeat
        socket.sleep(0.02)
        _, doc = get("/documents/" .. id)
        if doc.state ~= seen[#seen] then seen[#seen + 1] = doc.state end
        if doc.state == "extracted" then assert.is_string(doc.entities.number.value) end
      until FINAL[doc.state] or socket.gettime() > deadline
      assert.same({ "new", "processing", "extracted", "doneAutomatically" }, seen)
      assert.is_string(doc.entities.number.value)
      assert.is_number(doc.entities.items[1].quantity.value)
      local _, states = get("/documents/" .. id .. "/states")
      assert.equal(4, #states)
      local t0 = epoch(states[1].updatedAt)
      for i = 2, 4 do
        assert.near(0.1 * (i - 1), epoch(states[i].updatedAt) - t0, 0.002)
      end
      assert.equal(states[4].updatedAt, doc.completedAt)
      assert.equal(states[4].updatedAt, doc.updatedAt)
      assert.equal("system", doc.completedBy)
      local _, list = get("/documents?state=doneAutomatically&limit=1")
      assert.equal(id, list.data[1].id)
    end)

    it("ends in done in a manual project and at once with processing_time 0", function()
      srv:configure{ processing_time = 0 }
      local accepted = process(manual_project())
      local _, doc = get("/documents/" .. accepted.documentId)
      assert.equal("done", doc.state)
      assert.matches(ISO, doc.completedAt)
      local _, states = get("/documents/" .. accepted.documentId .. "/states")
      assert.equal(4, #states)
      assert.equal("done", states[4].state)
    end)

    it("fails every fail_every-th processed document", function()
      srv:configure{ processing_time = 0, fail_every = 2 }
      local got = {}
      for i = 1, 4 do
        local _, doc = get("/documents/" .. process(manual_project()).documentId)
        got[i] = doc.state
      end
      assert.same({ "done", "failed", "done", "failed" }, got)
    end)

    it("validates process-file requests", function()
      local fid, pid = upload(), manual_project().id
      local cases = {
        { 400, "Payload data is invalid", "{nope" },
        { 400, "Payload data is invalid", "[]" },
        { 400, "Payload data is invalid", { projectId = pid } },
        { 400, "Payload data is invalid", { fileId = fid } },
        { 400, "Payload data is invalid", { fileId = 5, projectId = pid } },
        { 400, "Payload data is invalid", { fileId = fid, projectId = "abc" } },
        { 400, "Payload data is invalid", { fileId = fid, projectId = pid, externalData = { a = { b = 1 } } } },
        { 400, "Payload data is invalid", { fileId = fid, projectId = pid, externalId = 7 } },
        { 404, "File does not exist", { fileId = "00000000-0000-4000-8000-000000000000", projectId = pid } },
        { 404, "Project does not exist", { fileId = fid, projectId = "ffffffffffffffffffffffff" } },
      }
      for _, c in ipairs(cases) do
        local status, json = post("/documents/process-file", c[3])
        assert.equal(c[1], status, cjson.encode(c[3]))
        assert.equal(c[2], json.title)
        assert.equal(c[1], json.status)
      end
      local status, json = tc:request("POST", "/documents/process-file", { token = tok,
        body = cjson.encode{ fileId = fid, projectId = pid }, ctype = "text/plain" })
      assert.equal(400, status)
      assert.equal("Unsupported content type", json.title)
      assert.equal(0, srv:stats().statuses["202"] or 0)
    end)

    it("processes several files as one document (process-file-batch)", function()
      srv:configure{ processing_time = 0 }
      local ids = { upload("a.pdf"), upload("b.pdf"), upload("c.pdf") }
      local status, json = post("/cases/process-file-batch", { fileIds = ids, projectId = manual_project().id })
      assert.equal(202, status)
      assert.same(ids, json.fileIds)
      assert.equal(manual_project().id, json.projectId)
      local _, doc = get("/documents/" .. json.documentId)
      assert.equal(ids[1], doc.fileId)
      assert.equal("a.pdf", doc.title)
      -- A Latin-1 file name (as header values are) becomes a UTF-8 title.
      local fid = upload("M\252ller.pdf")
      local _, j = post("/documents/process-file", { fileId = fid, projectId = manual_project().id })
      local _, latin = get("/documents/" .. j.documentId)
      assert.equal("Müller.pdf", latin.title)
      local _, byfile = get("/documents?fileId=" .. ids[3])
      assert.equal(1, byfile.totalCount)
      assert.equal(json.documentId, byfile.data[1].id)
      local cases = {
        { 400, "Payload data is invalid", '{"fileIds":[],"projectId":"' .. manual_project().id .. '"}' },
        { 400, "Payload data is invalid", { fileIds = "x", projectId = manual_project().id } },
        { 400, "Payload data is invalid", { fileIds = ids } },
        { 404, "File does not exist", { fileIds = { ids[1], "nope" }, projectId = manual_project().id } },
        { 404, "Project does not exist", { fileIds = ids, projectId = "ffffffffffffffffffffffff" } },
      }
      for _, c in ipairs(cases) do
        local st, answer = post("/cases/process-file-batch", c[3])
        assert.equal(c[1], st)
        assert.equal(c[2], answer.title)
      end
      assert.equal(6, srv:stats().by_route["POST /v2/cases/process-file-batch"])
    end)
  end)

  describe("updates", function()
    local id
    before_each(function() id = seed.documents[1].id end) -- a done document

    it("records a transfer in the state history", function()
      local status, json, _, body = post("/documents/" .. id .. "/transfer", { successful = true })
      assert.equal(202, status)
      assert.equal("", body)
      assert.is_nil(json)
      local _, doc = get("/documents/" .. id)
      assert.equal("transferred", doc.state)
      assert.equal("test-client", doc.updatedBy)
      assert.equal(202, (post("/documents/" .. id .. "/transfer", { successful = false, message = "ERP down" })))
      local _, states = get("/documents/" .. id .. "/states")
      assert.equal("transferred", states[#states - 1].state)
      assert.equal("transferFailed", states[#states].state)
      _, doc = get("/documents/" .. id)
      assert.equal("transferFailed", doc.state)
      assert.equal(states[#states].updatedAt, doc.updatedAt)
    end)

    it("validates transfer requests", function()
      for _, b in ipairs{ {}, { successful = "yes" }, { successful = true, message = 5 }, "[1]" } do
        local status, json = post("/documents/" .. id .. "/transfer", b)
        assert.equal(400, status)
        assert.equal("Payload data is invalid", json.title)
      end
      local status, json = post("/documents/ffffffffffffffffffffffff/transfer", { successful = true })
      assert.equal(404, status)
      assert.equal("Document does not exist", json.title)
    end)

    it("replaces external data, drops long keys, allows 20 entries", function()
      local long = ("k"):rep(51)
      local body = { a = "x", n = 1.5, b = true, [long] = "dropped", [("ä"):rep(50)] = "kept" }
      assert.equal(202, (post("/documents/" .. id .. "/external-data", body)))
      local _, doc = get("/documents/" .. id)
      assert.same({ a = "x", n = 1.5, b = true, [("ä"):rep(50)] = "kept" }, doc.externalData)
      local twenty = {}
      for i = 1, 20 do twenty["key" .. i] = tostring(i) end
      twenty[long] = "ignored, not counted"
      assert.equal(202, (post("/documents/" .. id .. "/external-data", twenty)))
      _, doc = get("/documents/" .. id)
      twenty[long] = nil
      assert.same(twenty, doc.externalData)
      twenty.key21 = "21"
      local status, json = post("/documents/" .. id .. "/external-data", twenty)
      assert.equal(400, status)
      assert.equal("Payload data is invalid", json.title)
      for _, bad in ipairs{ { a = { 1 } }, { a = { b = "c" } }, "[1,2]", "{x" } do
        assert.equal(400, (post("/documents/" .. id .. "/external-data", bad)))
      end
      assert.equal(202, (post("/documents/" .. id .. "/external-data", "{}")))
      local _, _, _, raw = get("/documents/" .. id)
      assert.matches('"externalData":{}', raw, 1, true)
      status, json = text("/documents/" .. id .. "/external-data", '{"a":"b"}')
      assert.equal(400, status)
      assert.equal("Unsupported content type", json.title)
      assert.equal(404, (post("/documents/ffffffffffffffffffffffff/external-data", {})))
    end)

    it("sets the external id from a text/plain body", function()
      assert.equal(202, (text("/documents/" .. id .. "/external-id", "ERP 4711/ä")))
      local _, doc = get("/documents/" .. id)
      assert.equal("ERP 4711/ä", doc.externalId)
      local status, json = text("/documents/" .. id .. "/external-id", "")
      assert.equal(400, status)
      assert.equal("Payload data is invalid", json.title)
      status, json = text("/documents/" .. id .. "/external-id", '"x"', "application/json")
      assert.equal(400, status)
      assert.equal("Unsupported content type", json.title)
      assert.equal(202, (text("/documents/" .. id .. "/external-id", "x", "text/plain; charset=utf-8")))
    end)

    it("sets the title, 1 to 256 characters (not bytes)", function()
      local title = ("€"):rep(256) -- 768 bytes
      assert.equal(202, (text("/documents/" .. id .. "/title", title)))
      local _, doc = get("/documents/" .. id)
      assert.equal(title, doc.title)
      assert.matches(ISO, doc.updatedAt)
      assert.equal("test-client", doc.updatedBy)
      for _, bad in ipairs{ "", ("a"):rep(257), ("€"):rep(257), "bad \255 utf8" } do
        local status, json = text("/documents/" .. id .. "/title", bad)
        assert.equal(400, status)
        assert.equal("Payload data is invalid", json.title)
      end
      assert.equal(400, (text("/documents/" .. id .. "/title", "x", "application/json")))
      assert.equal(404, (text("/documents/ffffffffffffffffffffffff/title", "x")))
    end)

    it("restores the seed on reset", function()
      text("/documents/" .. id .. "/title", "changed")
      srv:reset()
      tok = tc:token()
      local _, doc = get("/documents/" .. id)
      assert.equal(seed.documents[1].title, doc.title)
    end)
  end)
end)
