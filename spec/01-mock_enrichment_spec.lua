-- spec/01-mock_enrichment_spec.lua — the mock server's enrichment endpoints: upserts of
-- all seventeen record types with pydantic-style 422 answers, JSON merge patches, deletes
-- (whole records and single lines) with problem+json 404s, lookup tables, and the
-- control endpoints that show the stored records.

local launcher = require "mock.launcher"
local testclient = require "mock.testclient"
local cjson = require "cjson"

describe("mock enrichment", function()
  local srv, tc, tok

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
  end)

  local function post(kind, body)
    return tc:request("POST", "/enrichment/" .. kind, { token = tok, json = body })
  end
  local function patch(kind, ext, body, ctype)
    return tc:request("PATCH", "/enrichment/" .. kind .. "/" .. testclient.escape(ext), { token = tok,
      body = type(body) == "table" and cjson.encode(body) or body, ctype = ctype or "application/merge-patch+json" })
  end
  local function delete(kind, ext, query)
    return tc:request("DELETE", "/enrichment/" .. kind .. "/" .. testclient.escape(ext) .. (query or ""), { token = tok })
  end
  -- The stored record (as sent, after patches) and its id, from the control API.
  local function stored(kind, ext)
    local status, json, h = tc:request("GET", "/_mock/enrichment/" .. kind .. "/" .. testclient.escape(ext))
    if status == 404 then return nil end
    return json, h["x-mock-id"]
  end

  -- A minimal valid record per type.
  local VALID = {
    ["invoices"] = { externalId = "INV-1", documentId = "63cac12c37bb02accb396cae",
                     invoiceLines = { { externalId = "L1", quantity = 2, netAmount = 10.5 } } },
    ["companies"] = { externalId = "DE01", name = "Hypatos Demo GmbH" },
    ["suppliers"] = { externalId = "0000100000", name = "Nordwind Bürobedarf GmbH" },
    ["purchase-orders"] = { externalId = "4500016221",
                            purchaseOrderLines = { { purchaseOrderLineNumber = "00010" } } },
    ["gl-accounts"] = { externalId = "0000100GL1", code = "GL 1" },
    ["cost-centers"] = { externalId = "0000100CO1", code = "CO1" },
    ["approvers"] = { externalId = "UserID#1234", email = "a.b@example.com" },
    ["customers"] = { externalId = "C-1", name = "Acme Corp." },
    ["goods-receipts"] = { externalId = "GR-1", anything = { goes = true } },
    ["contracts"] = { externalId = "K-1" },
    ["addresses"] = { externalId = "A-1", street = "Hauptstr. 1" },
    ["products"] = { externalId = "MAT-1", description = "Toner" },
    ["profit-centers"] = { externalId = "PC-1", code = "PC 1" },
    ["internal-orders"] = { externalId = "IO-1", internalOrderCode = "IO1" },
    ["projects"] = { externalId = "WBS-1", code = "P.01.02" },
    ["sales-orders"] = { externalId = "SO-1" },
    ["quotes"] = { externalId = "Q-1" },
  }
  -- with a delete (the 2.15 types and three 2.51 ones) …
  local DELETABLE = { "invoices", "companies", "suppliers", "purchase-orders", "gl-accounts", "cost-centers",
                      "approvers", "customers", "goods-receipts", "contracts", "addresses" }
  -- … and all of them
  local TYPES = { "invoices", "companies", "suppliers", "purchase-orders", "gl-accounts", "cost-centers",
                  "approvers", "customers", "goods-receipts", "contracts", "addresses", "products",
                  "profit-centers", "internal-orders", "projects", "sales-orders", "quotes" }

  describe("insert", function()
    it("upserts every type by externalId, keeping the id", function()
      for _, kind in ipairs(TYPES) do
        local status, json = post(kind, VALID[kind])
        assert.equal(200, status, kind)
        assert.matches("^%x+%-%x+%-4%x+%-%x+%-%x+$", json.id)
        local again = {}
        for k, v in pairs(VALID[kind]) do again[k] = v end
        again.extraField = "second version"
        local status2, json2 = post(kind, again)
        assert.equal(200, status2)
        assert.equal(json.id, json2.id, kind)
        local rec, id = stored(kind, VALID[kind].externalId)
        assert.equal(json.id, id)
        assert.equal("second version", rec.extraField)
        assert.equal(VALID[kind].externalId, rec.externalId)
      end
      local counts = srv:control("GET", "/_mock/enrichment")
      for _, kind in ipairs(TYPES) do assert.equal(1, counts[kind], kind) end
      assert.same({}, counts["lookup-tables"])
      local other = {}
      for k, v in pairs(VALID.companies) do other[k] = v end
      other.externalId = "DE02"
      local _, json = post("companies", other)
      assert.not_equal(select(2, stored("companies", "DE01")), json.id)
      assert.equal(2, srv:control("GET", "/_mock/enrichment").companies)
    end)

    it("answers 422 with one pydantic-style item per problem", function()
      local status, json = post("invoices", '{"invoiceLines":[]}')
      assert.equal(422, status)
      assert.same({
        { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" },
        { loc = { "body", "invoiceLines" }, msg = "ensure this value has at least 1 items",
          type = "value_error.list.min_items", ctx = { limit_value = 1 } },
        { loc = { "body" }, msg = "one of documentId, documents is required", type = "value_error" },
      }, json.detail)
      status, json = post("companies", {})
      assert.equal(422, status)
      assert.same({
        { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" },
        { loc = { "body", "name" }, msg = "field required", type = "value_error.missing" },
      }, json.detail)
    end)

    it("checks patterns and types of known fields, nested ones included", function()
      local cases = {
        { "companies", { externalId = "DE 01", name = "x" }, { "body", "externalId" }, "value_error.str.regex" },
        { "companies", { externalId = "DE01", name = "   " }, { "body", "name" }, "value_error.str.regex" },
        { "companies", { externalId = 17, name = "x" }, { "body", "externalId" }, "type_error.str" },
        { "companies", { externalId = "DE01", name = "x", countryCode = "Germany" }, { "body", "countryCode" },
          "type_error.enum" },
        { "companies", { externalId = "DE01", name = "x", vatIds = { { id = 5 } } }, { "body", "vatIds", 0, "id" },
          "type_error.str" },
        { "companies", { externalId = "DE01", name = "x", customFields = { a = 1 } }, { "body", "customFields", "a" },
          "type_error.str" },
        { "suppliers", { externalId = "S1", name = "x", blockedForPosting = "no" }, { "body", "blockedForPosting" },
          "type_error.bool" },
        { "suppliers", { externalId = "S1", name = "x", supplierBankAccounts = { { iban = "DE1" } } },
          { "body", "supplierBankAccounts", 0, "externalId" }, "value_error.missing" },
        { "suppliers", { externalId = "S1", name = "x", supplierSubsidiaries = "all" },
          { "body", "supplierSubsidiaries" }, "type_error.list" },
        { "invoices", { externalId = "I", documentId = "123", invoiceLines = { {} } }, { "body", "documentId" },
          "value_error.str.regex" },
        { "invoices", { externalId = "I", documents = { { type = "invoice" } }, invoiceLines = { {} } },
          { "body", "documents", 0, "id" }, "value_error.missing" },
        { "invoices", { externalId = "I", documentId = "63cac12c37bb02accb396cae", invoiceLines = { { quantity = "2" } } },
          { "body", "invoiceLines", 0, "quantity" }, "type_error.float" },
        { "invoices", { externalId = "I", documentId = "63cac12c37bb02accb396cae", invoiceLines = { {} },
          issuedDate = "2023-02-30" }, { "body", "issuedDate" }, "value_error.date" },
        { "invoices", { externalId = "I", documentId = "63cac12c37bb02accb396cae", invoiceLines = { {} },
          currency = "euro" }, { "body", "currency" }, "type_error.enum" },
        { "purchase-orders", { externalId = "P", purchaseOrderLines = { {} } },
          { "body", "purchaseOrderLines", 0, "purchaseOrderLineNumber" }, "value_error.missing" },
        { "gl-accounts", { externalId = "G" }, { "body", "code" }, "value_error.missing" },
        { "cost-centers", { externalId = "C", code = " CO1" }, { "body", "code" }, "value_error.str.regex" },
        { "approvers", { externalId = "A", email = "not-an-address" }, { "body", "email" }, "value_error.email" },
        { "customers", { externalId = "C" }, { "body", "name" }, "value_error.missing" },
        { "goods-receipts", { number = "x" }, { "body", "externalId" }, "value_error.missing" },
        { "contracts", { externalId = "" }, { "body", "externalId" }, "value_error.str.regex" },
        { "addresses", { externalId = cjson.null }, { "body", "externalId" }, "type_error.none.not_allowed" },
      }
      for _, c in ipairs(cases) do
        local status, json = post(c[1], c[2])
        assert.equal(422, status, cjson.encode(c[2]))
        assert.same(c[3], json.detail[1].loc)
        assert.equal(c[4], json.detail[1].type, cjson.encode(c[2]))
        assert.is_string(json.detail[1].msg)
      end
      local _, json = post("companies", { externalId = "DE 01", name = "x" })
      assert.equal('string does not match regex "^\\S+$"', json.detail[1].msg)
      assert.same({ pattern = "^\\S+$" }, json.detail[1].ctx)
    end)

    it("answers 422 for a body that is not a JSON object", function()
      for _, b in ipairs{ "[]", "[1]", '"x"', "{bad", "" } do
        local status, json = post("contracts", b)
        assert.equal(422, status, b)
        assert.same({ "body" }, json.detail[1].loc)
      end
    end)

    it("needs enrichment.write", function()
      local t = tc:scoped_token("enrichment.delete")
      assert.equal(403, (tc:request("POST", "/enrichment/contracts", { token = t, json = VALID.contracts })))
      assert.equal(404, (post("nonsense", VALID.contracts)))
    end)
  end)

  describe("merge patch", function()
    it("applies RFC 7396 semantics", function()
      local body = '{"externalId":"0000100000","name":"Old","city":"Berlin","vatIds":[{"id":"DE1","countryCode":"DE"}],'
        .. '"defaultAccountAssignment":{"glAccountCode":"GL1","costCenterCode":"CC1"},"customFields":{"a":"1","b":"2"}}'
      local _, created = post("suppliers", body)
      local status, json = patch("suppliers", "0000100000",
        '{"externalId":"0000100000","name":"New","city":null,"vatIds":[],"defaultAccountAssignment":{"costCenterCode":"CC2"},'
        .. '"customFields":{"b":null,"c":"3"},"street":"Hauptstr. 1"}')
      assert.equal(200, status)
      local rec = stored("suppliers", "0000100000")
      assert.same(rec, json) -- the answer is the whole updated record
      assert.equal(created.id, select(2, stored("suppliers", "0000100000")))
      assert.equal("New", rec.name)
      assert.is_nil(rec.city)
      assert.equal("Hauptstr. 1", rec.street)
      assert.same({ glAccountCode = "GL1", costCenterCode = "CC2" }, rec.defaultAccountAssignment)
      assert.same({ a = "1", c = "3" }, rec.customFields)
      local _, _, _, raw = tc:request("GET", "/_mock/enrichment/suppliers/0000100000")
      assert.matches('"vatIds":[]', raw, 1, true) -- arrays are replaced, never merged
    end)

    it("is offered for every type but cost-centers, and answers the whole record", function()
      for _, kind in ipairs(TYPES) do
        post(kind, VALID[kind])
        if kind == "cost-centers" then
          assert.equal(405, (patch(kind, VALID[kind].externalId, { externalId = VALID[kind].externalId })), kind)
        else
          local status, json = patch(kind, VALID[kind].externalId, { externalId = VALID[kind].externalId,
            note = "patched" })
          assert.equal(200, status, kind)
          assert.equal("patched", json.note, kind)
          assert.equal(VALID[kind].externalId, json.externalId)
          assert.equal("patched", stored(kind, VALID[kind].externalId).note)
        end
      end
    end)

    it("needs the externalId in the body, like the 2.51 schemas", function()
      post("products", VALID.products)
      local status, json = patch("products", "MAT-1", { description = "Ink" })
      assert.equal(422, status)
      assert.same({ { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" } },
        json.detail)
      assert.equal("Toner", stored("products", "MAT-1").description)
    end)

    it("needs application/merge-patch+json, a known record and a valid result", function()
      post("companies", VALID.companies)
      local status, json = patch("companies", "DE01", { externalId = "DE01", name = "x" }, "application/json")
      assert.equal(415, status)
      assert.equal("Unsupported media type", json.title)
      assert.equal(415, json.status)
      local h
      status, json, h = patch("companies", "NOPE", { externalId = "NOPE", name = "x" })
      assert.equal(404, status)
      assert.equal("application/problem+json", h["content-type"])
      assert.same({ title = "Not found", type = "about:blank", status = 404, instance = "/enrichment/companies/NOPE",
                    detail = json.detail }, json)
      status, json = patch("companies", "DE01", { externalId = "DE01", name = cjson.null })
      assert.equal(422, status)
      assert.same({ "body", "name" }, json.detail[1].loc)
      status = patch("companies", "DE01", { externalId = "DE99" })
      assert.equal(422, status)
      assert.equal(422, (patch("companies", "DE01", "[1]")))
      assert.equal("Hypatos Demo GmbH", stored("companies", "DE01").name)
    end)
  end)

  describe("delete", function()
    it("deletes records of every type that has a delete; a second delete is 404", function()
      for _, kind in ipairs(DELETABLE) do
        post(kind, VALID[kind])
        local status, json, _, body = delete(kind, VALID[kind].externalId)
        assert.equal(204, status, kind)
        assert.equal("", body)
        assert.is_nil(json)
        assert.is_nil(stored(kind, VALID[kind].externalId))
        local h
        status, json, h = delete(kind, VALID[kind].externalId)
        assert.equal(404, status)
        assert.equal("application/problem+json", h["content-type"])
        assert.equal("Not found", json.title)
        assert.equal("about:blank", json.type)
        assert.equal(404, json.status)
        assert.is_string(json.detail)
        assert.equal("/enrichment/" .. kind .. "/" .. testclient.escape(VALID[kind].externalId), json.instance)
      end
      assert.equal(0, srv:control("GET", "/_mock/enrichment").invoices)
      post("products", VALID.products)
      assert.equal(405, (delete("products", "MAT-1"))) -- no delete is documented for the 2.51 types
    end)

    it("deletes single lines of invoices and purchase orders", function()
      post("invoices", { externalId = "INV-2", documentId = "63cac12c37bb02accb396cae",
                         invoiceLines = { { externalId = "L1" }, { externalId = "L2" } } })
      assert.equal(204, (delete("invoices", "INV-2", "?lineNumber=L1")))
      assert.same({ { externalId = "L2" } }, stored("invoices", "INV-2").invoiceLines)
      local status, json = delete("invoices", "INV-2", "?lineNumber=L1")
      assert.equal(404, status)
      assert.equal("Not found", json.title)
      assert.equal(204, (delete("invoices", "INV-2", "?lineNumber=L2")))
      local _, _, _, raw = tc:request("GET", "/_mock/enrichment/invoices/INV-2")
      assert.matches('"invoiceLines":[]', raw, 1, true)
      post("purchase-orders", { externalId = "PO-1", purchaseOrderLines = { { purchaseOrderLineNumber = "00010" },
                                                                           { purchaseOrderLineNumber = "00020" } } })
      assert.equal(204, (delete("purchase-orders", "PO-1", "?lineNumber=00020")))
      assert.same({ { purchaseOrderLineNumber = "00010" } }, stored("purchase-orders", "PO-1").purchaseOrderLines)
      assert.equal(404, (delete("purchase-orders", "PO-1", "?lineNumber=00030")))
      assert.equal(204, (delete("purchase-orders", "PO-1")))
      assert.is_nil(stored("purchase-orders", "PO-1"))
    end)

    it("needs enrichment.delete", function()
      post("contracts", VALID.contracts)
      local t = tc:scoped_token("enrichment.write")
      assert.equal(403, (tc:request("DELETE", "/enrichment/contracts/K-1", { token = t })))
    end)
  end)

  describe("lookup tables", function()
    it("upserts flat rows of strings by externalId within a table", function()
      local status, json = post("lookup-tables/vendors", { externalId = "V1", name = "Nordwind", iban = "DE1" })
      assert.equal(200, status)
      local _, again = post("lookup-tables/vendors", { externalId = "V1", name = "Nordwind AG" })
      assert.equal(json.id, again.id)
      local _, other = post("lookup-tables/cost-codes", { externalId = "V1", code = "7" })
      assert.not_equal(json.id, other.id)
      local _, rec, h = tc:request("GET", "/_mock/enrichment/lookup-tables/vendors/V1")
      assert.same({ externalId = "V1", name = "Nordwind AG" }, rec)
      assert.equal(json.id, h["x-mock-id"])
      assert.same({ vendors = 1, ["cost-codes"] = 1 }, srv:control("GET", "/_mock/enrichment")["lookup-tables"])
    end)

    it("answers 422 for missing externalId and values that are not strings", function()
      local status, json = post("lookup-tables/vendors", { name = "x", n = 1, flag = true, nested = { a = "b" } })
      assert.equal(422, status)
      assert.same({
        { loc = { "body", "externalId" }, msg = "field required", type = "value_error.missing" },
        { loc = { "body", "flag" }, msg = "str type expected", type = "type_error.str" },
        { loc = { "body", "n" }, msg = "str type expected", type = "type_error.str" },
        { loc = { "body", "nested" }, msg = "str type expected", type = "type_error.str" },
      }, json.detail)
      assert.equal(422, (post("lookup-tables/vendors", { externalId = "has space" })))
      assert.equal(422, (post("lookup-tables/vendors", "[]")))
    end)

    it("deletes rows; unknown rows and tables are problem+json 404s", function()
      post("lookup-tables/vendors", { externalId = "V1" })
      assert.equal(204, (delete("lookup-tables/vendors", "V1")))
      local status, json, h = delete("lookup-tables/vendors", "V1")
      assert.equal(404, status)
      assert.equal("application/problem+json", h["content-type"])
      assert.equal("/enrichment/lookup-tables/vendors/V1", json.instance)
      assert.equal(404, (delete("lookup-tables/none", "V1")))
      local w = tc:scoped_token("enrichment.write")
      assert.equal(403, (tc:request("DELETE", "/enrichment/lookup-tables/vendors/V1", { token = w })))
      local st = srv:stats()
      assert.equal(4, st.by_route["DELETE /v2/enrichment/lookup-tables/{tableName}/{externalId}"])
      assert.equal(1, st.by_route["POST /v2/enrichment/lookup-tables/{tableName}"])
    end)
  end)

  describe("control endpoints", function()
    it("answer 404 for unknown records and paths, 405 for other methods", function()
      assert.equal(404, (tc:request("GET", "/_mock/enrichment/invoices/none")))
      assert.equal(404, (tc:request("GET", "/_mock/enrichment/nonsense/x")))
      assert.equal(404, (tc:request("GET", "/_mock/enrichment/lookup-tables/t/x")))
      assert.equal(405, (tc:request("POST", "/_mock/enrichment")))
    end)
  end)
end)
