-- spec/01-mock_projects_spec.lua — the mock server's projects: seeded list with search,
-- sorting and paging; create and patch with their validation; schemas whose empty
-- arrays and objects round-trip as `[]` and `{}`.

local launcher = require "mock.launcher"
local testclient = require "mock.testclient"
local cjson = require "cjson"

describe("mock projects", function()
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

  local VALID = '{"name":"Inbound invoices","ocr":{"engine":"abbyy","features":["barcodes"],'
    .. '"languages":["German","English"]},"extractionModelId":"63e6663823b4c1f5287398bb","members":{"allow":"all"}}'

  local function create(body, ctype)
    return tc:request("POST", "/projects", { token = tok, body = body, ctype = ctype or "application/json" })
  end

  local function patch(id, body, ctype)
    return tc:request("PATCH", "/projects/" .. id, { token = tok, body = type(body) == "table" and cjson.encode(body) or body,
      ctype = ctype or "application/merge-patch+json" })
  end

  describe("list and get", function()
    it("lists the four seeded projects, newest first", function()
      local status, json = get("/projects")
      assert.equal(200, status)
      assert.equal(4, json.totalCount)
      assert.equal(4, #json.data)
      assert.equal(seed.projects[4].id, json.data[1].id)
      assert.equal(seed.projects[1].id, json.data[4].id)
      local automatic = 0
      for _, p in ipairs(json.data) do
        assert.equal(24, #p.id)
        assert.is_string(p.name)
        assert.is_string(p.extractionModelId)
        assert.is_string(p.ocr.engine)
        assert.is_string(p.members.allow)
        assert.truthy(p.duplicates == "allow" or p.duplicates == "fail")
        assert.is_string(p.createdAt)
        assert.is_string(p.createdBy)
        assert.is_string(p.updatedAt)
        assert.is_string(p.updatedBy)
        if p.completion == "automatic" then
          automatic = automatic + 1
          assert.equal(seed.automatic_project.id, p.id)
        end
      end
      assert.equal(1, automatic)
      local _, asc = get("/projects?sort=%2BcreatedAt")
      assert.equal(seed.projects[1].id, asc.data[1].id)
      local _, sp = get("/projects?sort=+createdAt")
      assert.same(asc, sp)
      local status2, err = get("/projects?sort=name")
      assert.equal(400, status2)
      assert.equal("Invalid sort definition", err.title)
    end)

    it("searches names and ids case-insensitively, and pages", function()
      local _, json = get("/projects?search=INVOICES")
      assert.equal(2, json.totalCount)
      _, json = get("/projects?search=" .. seed.projects[3].id:sub(-6))
      assert.equal(1, json.totalCount)
      assert.equal(seed.projects[3].id, json.data[1].id)
      _, json = get("/projects?search=nothing-like-this")
      assert.equal(0, json.totalCount)
      _, json = get("/projects?limit=1&offset=1")
      assert.equal(1, #json.data)
      assert.equal(seed.projects[3].id, json.data[1].id)
      assert.equal(400, (get("/projects?limit=x")))
    end)

    it("keeps empty arrays as [] in project JSON", function()
      local _, _, _, raw = get("/projects/" .. seed.projects[3].id)
      assert.matches('"features":[]', raw, 1, true)
    end)

    it("answers 400 for malformed and 404 for unknown ids", function()
      local status, json = get("/projects/xyz")
      assert.equal(400, status)
      assert.equal("Provided project identifier is invalid", json.title)
      status, json = get("/projects/ffffffffffffffffffffffff")
      assert.equal(404, status)
      assert.same({ title = "Project does not exist", detail = "The project with given identifier does not exist",
                    status = 404 }, json)
      assert.equal(404, (get("/projects/ffffffffffffffffffffffff/schema")))
      assert.equal(400, (get("/projects/xyz/schema")))
    end)

    it("serves schemas whose empty arrays and objects round-trip", function()
      for _, p in ipairs(seed.projects) do
        local status, json, _, raw = get("/projects/" .. p.id .. "/schema")
        assert.equal(200, status)
        assert.is_number(json.version)
        assert.is_true(#json.dataPoints >= 3)
        for _, dp in ipairs(json.dataPoints) do
          assert.is_string(dp.internalName)
          assert.is_string(dp.displayName)
          assert.is_string(dp.type)
          assert.equal("extractor", dp.source.type)
        end
        assert.is_boolean(json.features.derivation)
        assert.matches('"normalization":[]', raw, 1, true)
        assert.matches('"rules":{}', raw, 1, true)
        assert.matches('"enrichment":{}', raw, 1, true)
        assert.matches('"validation":{}', raw, 1, true)
      end
    end)

    it("needs projects.read / projects.write", function()
      local ro = tc:scoped_token("projects.read")
      assert.equal(200, (tc:request("GET", "/projects", { token = ro })))
      assert.equal(403, (tc:request("POST", "/projects", { token = ro, body = VALID, ctype = "application/json" })))
      local none = tc:scoped_token("documents.read")
      assert.equal(403, (tc:request("GET", "/projects/" .. seed.projects[1].id, { token = none })))
    end)
  end)

  describe("create", function()
    it("creates a project with defaults and the default schema", function()
      local status, json = create(VALID)
      assert.equal(201, status)
      assert.equal(24, #json.id)
      assert.equal("Inbound invoices", json.name)
      assert.equal("manual", json.completion)
      assert.equal("fail", json.duplicates)
      assert.same({ allow = "all" }, json.members)
      assert.same({ engine = "abbyy", features = { "barcodes" }, languages = { "German", "English" } }, json.ocr)
      assert.equal("test-client", json.createdBy)
      assert.equal(json.createdAt, json.updatedAt)
      assert.is_nil(json.note)
      local _, got = get("/projects/" .. json.id)
      assert.same(json, got)
      local _, list = get("/projects")
      assert.equal(5, list.totalCount)
      assert.equal(json.id, list.data[1].id)
      local _, schema = get("/projects/" .. json.id .. "/schema")
      assert.is_true(#schema.dataPoints > 0)
    end)

    it("stores a given schema exactly, empty arrays included", function()
      local schema = '{"version":7,"dataPoints":[{"internalName":"iban","displayName":"IBAN","type":"string",'
        .. '"source":{"type":"extractor"},"normalization":[],"rules":{},"tags":[ ]}],"features":{"derivation":false},'
        .. '"enrichment":{},"normalization":{},"validation":{},"extra":[[],{"a":[]}]}'
      local body = VALID:sub(1, -2) .. ',"completion":"automatic","duplicates":"allow","note":"n",'
        .. '"members":{"allow":"members","members":["642481be7a3cd6803f112201"]},"schema":' .. schema .. "}"
      local status, json = create(body)
      assert.equal(201, status)
      assert.equal("automatic", json.completion)
      assert.equal("allow", json.duplicates)
      assert.equal("n", json.note)
      assert.same({ allow = "members", members = { "642481be7a3cd6803f112201" } }, json.members)
      local _, got, _, raw = get("/projects/" .. json.id .. "/schema")
      assert.same(cjson.decode(schema), got)
      assert.matches('"normalization":[]', raw, 1, true)
      assert.matches('"tags":[]', raw, 1, true)
      assert.matches('"extra":[[],{"a":[]}]', raw, 1, true)
      assert.matches('"rules":{}', raw, 1, true)
    end)

    it("accepts google OCR and an empty feature list", function()
      local body = VALID:gsub('"ocr":{[^}]*}', '"ocr":{"engine":"google","features":[]}')
      local status, json, _, raw = create(body)
      assert.equal(201, status)
      assert.equal("google", json.ocr.engine)
      assert.matches('"features":[]', raw, 1, true)
    end)

    it("answers 422 with the field for validation failures", function()
      local function with(field, value)
        local t = cjson.decode(VALID)
        t[field] = value
        return cjson.encode(t)
      end
      local cases = {
        { with("name", cjson.null), "^name" },
        { VALID:gsub('"name":"Inbound invoices",', ""), "^name: field required" },
        { with("name", ""), "^name" },
        { with("name", ("x"):rep(61)), "^name" },
        { with("note", ""), "^note" },
        { with("note", ("x"):rep(1001)), "^note" },
        { with("extractionModelId", 5), "^extractionModelId" },
        { VALID:gsub(',"members":{"allow":"all"}', ""), "^members: field required" },
        { with("members", { allow = "some" }), "^members.allow" },
        { with("members", { allow = "members" }), "^members.members" },
        { with("completion", "auto"), "^completion" },
        { with("duplicates", "maybe"), "^duplicates" },
        { with("ocr", { engine = "tesseract", features = {} }), "^ocr.engine" },
        { with("ocr", { engine = "google" }), "^ocr.features" },
        { with("ocr", { engine = "google", features = { "plainText", "magic" } }), "^ocr.features%[1%]" },
        { with("ocr", { engine = "abbyy", features = { "plainText" }, languages = { "German" } }), "^ocr.features" },
        { with("ocr", { engine = "abbyy", features = { "barcodes" } }), "^ocr.languages" },
        { with("ocr", { engine = "abbyy", features = { "barcodes" }, languages = { "Klingon" } }), "^ocr.languages" },
        { with("ocr", { engine = "abbyy", features = { "barcodes" },
                        languages = { "German", "English", "French", "Polish", "Czech", "Danish" } }), "^ocr.languages" },
        { with("schema", "x"), "^schema" },
        { with("schema", { dataPoints = { { displayName = "x" } } }), "^schema.dataPoints%[0%].internalName" },
        { with("retentionDays", 0), "^retentionDays" },
        { with("isLive", "yes"), "^isLive" },
      }
      for _, c in ipairs(cases) do
        local status, json = create(c[1])
        assert.equal(422, status, c[1])
        assert.equal("Request validation error", json.title)
        assert.equal(422, json.status)
        assert.matches(c[2], json.detail)
      end
      assert.equal(4, select(2, get("/projects")).totalCount)
    end)

    it("answers 400 for a body that is not a JSON object and 415 for other media types", function()
      for _, b in ipairs{ "{nope", "[]", '"x"', "" } do
        local status, json = create(b)
        assert.equal(400, status, b)
        assert.equal("Payload data is invalid", json.title)
      end
      local status, json = create(VALID, "text/plain")
      assert.equal(415, status)
      assert.equal("Unsupported media type", json.title)
    end)
  end)

  describe("patch", function()
    it("updates given fields only and returns the project", function()
      local p = seed.projects[1]
      local _, before = get("/projects/" .. p.id)
      local status, json = patch(p.id, { name = "Renamed", completion = "automatic", isLive = false,
        retentionDays = 10, ocr = { engine = "google", features = { "plainText" } } })
      assert.equal(200, status)
      assert.equal("Renamed", json.name)
      assert.equal("automatic", json.completion)
      assert.is_false(json.isLive)
      assert.equal(10, json.retentionDays)
      assert.same({ engine = "google", features = { "plainText" } }, json.ocr)
      assert.equal(before.note, json.note)
      assert.equal(before.createdAt, json.createdAt)
      assert.equal("test-client", json.updatedBy)
      assert.not_equal(before.updatedAt, json.updatedAt)
      local _, got = get("/projects/" .. p.id)
      assert.same(json, got)
    end)

    it("clears note and retentionDays with null and accepts application/json", function()
      local p = seed.projects[1]
      local status, json = patch(p.id, '{"note":null,"retentionDays":null}', "application/json")
      assert.equal(200, status)
      assert.is_nil(json.note)
      assert.is_nil(json.retentionDays)
      assert.equal(p.name, json.name)
    end)

    it("replaces the schema", function()
      local p = seed.projects[2]
      local status = patch(p.id, '{"schema":{"version":9,"dataPoints":[],"features":{"derivation":true}}}')
      assert.equal(200, status)
      local _, schema, _, raw = get("/projects/" .. p.id .. "/schema")
      assert.equal(9, schema.version)
      assert.matches('"dataPoints":[]', raw, 1, true)
    end)

    it("validates like create", function()
      local p = seed.projects[1]
      for _, b in ipairs{ { name = "" }, '{"name":null}', { completion = "x" }, { members = { allow = "x" } },
                          '{"isLive":null}', { retentionDays = -3 } } do
        local status, json = patch(p.id, b)
        assert.equal(422, status, type(b) == "string" and b or cjson.encode(b))
        assert.equal("Request validation error", json.title)
      end
      local _, json = get("/projects/" .. p.id)
      assert.equal(p.name, json.name)
      assert.equal(415, (patch(p.id, { name = "x" }, "text/plain")))
      assert.equal(400, (patch(p.id, "{x")))
      assert.equal(404, (patch("ffffffffffffffffffffffff", { name = "x" })))
      assert.equal(400, (patch("x", { name = "x" })))
    end)
  end)
end)
