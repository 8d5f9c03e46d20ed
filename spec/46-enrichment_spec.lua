-- client.enrichment against the local server: upserts, merge patches, deletes, lookup tables.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

describe("enrichment", function()
  local srv, c
  lazy_setup(function() srv = helpers.start_server() end)
  lazy_teardown(function() if srv then srv:stop() end end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv, { backoff_base = 0.01 })
  end)

  local function stored(kind, ext)
    local ok, rec = pcall(srv.control, srv, "GET", "/_mock/enrichment/" .. kind .. "/" .. ext)
    return ok and rec or nil
  end

  local SUPPLIER = { externalId = "S-1", name = "Nordlicht GmbH", street = "Hafenstr. 1", countryCode = "DE",
    vatIds = { { id = "DE123456789", countryCode = "DE" } }, supplierBankAccounts = hypatos.array() }

  it("upserts by externalId: the same id twice", function()
    local a, meta = c.enrichment.suppliers:upsert(SUPPLIER)
    assert.is_table(a, tostring(meta))
    assert.equal(200, meta.status)
    local b = assert(c.enrichment.suppliers:upsert(SUPPLIER))
    assert.equal(a.id, b.id)
    assert.equal("Nordlicht GmbH", stored("suppliers", "S-1").name)
  end)

  it("covers every record type", function()
    local records = {
      invoices = { externalId = "I-1", documentId = "63cac12c37bb02accb396cae",
        invoiceLines = { { externalId = "1", netAmount = 10.5, quantity = 2 } } },
      companies = { externalId = "C-1", name = "Demo GmbH" },
      suppliers = SUPPLIER,
      purchase_orders = { externalId = "PO-1", purchaseOrderLines = { { purchaseOrderLineNumber = "00010" } } },
      gl_accounts = { externalId = "GL-1", code = "4000" },
      cost_centers = { externalId = "CC-1", code = "100" },
      approvers = { externalId = "A-1", email = "boss@example.com" },
      customers = { externalId = "CU-1", name = "Kunde AG" },
      goods_receipts = { externalId = "GR-1" },
      contracts = { externalId = "K-1" },
      addresses = { externalId = "AD-1" },
      products = { externalId = "MAT-1", description = "Toner" },
      profit_centers = { externalId = "PC-1", code = "PC1" },
      internal_orders = { externalId = "IO-1", internalOrderCode = "IO1" },
      projects = { externalId = "WBS-1", code = "P.01" },
      sales_orders = { externalId = "SO-1" },
      quotes = { externalId = "Q-1" },
    }
    local ops = require "hypatos.operations"
    local types = ops.enrichment_types()
    assert.equal(17, #types)
    for _, t in ipairs(types) do
      local kind, rec = t.name, records[t.name]
      assert.is_table(rec, kind)
      local v, meta = c.enrichment[kind]:upsert(rec)
      assert.is_table(v, kind .. ": " .. tostring(meta))
      assert.is_string(v.id)
      assert.equal("POST /v2/enrichment/" .. t.segment, srv:stats().log[#srv:stats().log].route, kind)
      if kind ~= "cost_centers" then
        local patched, pmeta = c.enrichment[kind]:patch(rec.externalId, { note = "patched" })
        assert.is_table(patched, kind .. ": " .. tostring(pmeta))
        assert.equal("patched", patched.note, kind)               -- the whole record comes back
        assert.equal(rec.externalId, patched.externalId, kind)
      end
      local has_delete = false
      for _, o in ipairs(ops.of("enrichment." .. kind)) do has_delete = has_delete or o.name == "delete" end
      if has_delete then
        assert.is_true((c.enrichment[kind]:delete(rec.externalId)), kind)
      else
        assert.has_error(function() c.enrichment[kind]:delete(rec.externalId) end)
      end
    end
  end)

  it("summarises 422 validation errors", function()
    local v, err = c.enrichment.suppliers:upsert({ name = "no id" })
    assert.is_nil(v)
    assert.equal(422, err.status)
    assert.equal("body.externalId: field required", err.message)
    assert.equal("externalId", err.detail[1].loc[2])
  end)

  it("patches with application/merge-patch+json", function()
    assert(c.enrichment.suppliers:upsert(SUPPLIER))
    local changes = { street = hypatos.null, city = "Hamburg" }
    local v, meta = c.enrichment.suppliers:patch("S-1", changes)
    assert.is_table(v, tostring(meta))
    assert.is_nil(changes.externalId)                        -- the caller's table is not changed
    local rec = stored("suppliers", "S-1")
    assert.is_nil(rec.street)
    assert.equal("Hamburg", rec.city)
    assert.equal("Nordlicht GmbH", rec.name)
    assert.same(rec, v)                                      -- the answer is the updated record, not {id}
    local log = srv:stats().log
    assert.equal("application/merge-patch+json", log[#log].content_type)
    -- the path's externalId goes into the body (every 2.51 PATCH schema requires it)
    assert.equal("PATCH /v2/enrichment/suppliers/{externalId}", log[#log].route)
    local bad, berr = c.enrichment.suppliers:patch("S-1", { externalId = "S-2" })
    assert.is_nil(bad)
    assert.equal("invalid", berr.kind)
    assert.matches("cannot change it", berr.message)
    local _, err = c.enrichment.suppliers:patch("nope", { city = "x" })
    assert.equal(404, err.status)
    assert.has_error(function() c.enrichment.cost_centers:patch("A-1", {}) end,
      "hypatos: enrichment.cost_centers has no patch in the API (only invoices, companies, suppliers, "
      .. "purchase_orders, gl_accounts, approvers, customers, goods_receipts, contracts, addresses, products, "
      .. "profit_centers, internal_orders, projects, sales_orders, quotes)")
  end)

  it("deletes records and single lines; 404 Problem for unknown ones", function()
    assert(c.enrichment.invoices:upsert({ externalId = "I-2", documentId = "63cac12c37bb02accb396cae",
      invoiceLines = { { externalId = "1" }, { externalId = "2" } } }))
    assert.is_true((c.enrichment.invoices:delete("I-2", { line_number = "2" })))
    assert.equal(1, #stored("invoices", "I-2").invoiceLines)
    local log = srv:stats().log
    assert.equal("lineNumber=2", log[#log].query)
    assert.is_true((c.enrichment.invoices:delete("I-2")))
    local v, err = c.enrichment.invoices:delete("I-2")
    assert.is_nil(v)
    assert.equal(404, err.status)
    assert.equal("Not found", err.title)
    assert.equal("/enrichment/invoices/I-2", err.body.instance)
    assert.has_error(function() c.enrichment.suppliers:delete("S-1", { line_number = 1 }) end)
  end)

  it("encodes external ids in the path", function()
    assert(c.enrichment.approvers:upsert({ externalId = "UserID#1234/x" }))
    assert.is_true((c.enrichment.approvers:delete("UserID#1234/x")))
  end)

  it("inserts and deletes lookup-table rows, refusing non-string values before sending", function()
    local v, meta = c.enrichment.lookup_tables:insert("tax-codes", { externalId = "V1", rate = "19", label = "Standard" })
    assert.is_table(v, tostring(meta))
    local again = assert(c.enrichment.lookup_tables:insert("tax-codes", { externalId = "V1", rate = "7" }))
    assert.equal(v.id, again.id)
    local bad, err = c.enrichment.lookup_tables:insert("tax-codes", { externalId = "V2", rate = 19 })
    assert.is_nil(bad)
    assert.equal("invalid", err.kind)
    assert.is_true((c.enrichment.lookup_tables:delete("tax-codes", "V1")))
    local _, e2 = c.enrichment.lookup_tables:delete("tax-codes", "V1")
    assert.equal(404, e2.status)
  end)

  it("retries upserts after a 500 or a dropped connection (they are idempotent)", function()
    srv:fault({ { method = "POST", path = "/v2/enrichment/suppliers", kind = "status", status = 500 },
      { method = "POST", path = "/v2/enrichment/suppliers", kind = "close" } })
    local v, meta = c.enrichment.suppliers:upsert(SUPPLIER)
    assert.is_table(v, tostring(meta))
    assert.is_true(meta.attempts >= 2) -- libcurl may re-send once itself on the dropped keep-alive connection
  end)
end)
