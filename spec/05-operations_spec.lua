-- spec/05-operations_spec.lua — lua/hypatos/operations.lua is the single source: every
-- operation has its method on a client (generated or written by hand), every route of the
-- local server has an operation and every operation a route, and the README's reference
-- table is the one the table generates.
local helpers = require "spec.helpers"
local ops = require "hypatos.operations"

-- Routes of the local server that are not API operations: the generic-request echo.
local function test_only(route)
  return route:match("^%u+ /v2/_echo")
end

describe("operations table", function()
  it("describes every entry completely and consistently", function()
    local SOURCES = { spec = true, docs = true, clients = true, none = true }
    local BODIES = { json = true, merge_patch = true, text = true, query = true }
    local seen = {}
    for _, o in ipairs(ops) do
      assert.is_nil(seen[o.call], o.call .. " twice")
      seen[o.call] = true
      assert.is_true(SOURCES[o.source] ~= nil, o.call)
      assert.is_true(o.body == nil or BODIES[o.body] ~= nil, o.call)
      assert.matches("^/", o.path)
      assert.is_string(o.scope)
      assert.is_boolean(o.idempotent)
      assert.is_true(#o.args >= #o.params, o.call)
      if o.operation_id then assert.equal("spec", o.source, o.call) end
      if o.source == "spec" then assert.is_string(o.operation_id, o.call) end
      if o.body == "merge_patch" then assert.same({ "externalId" }, o.params, o.call) end
    end
  end)

  it("gives every operation its method on a client", function()
    local c = helpers.client()
    for _, o in ipairs(ops) do
      local obj = c
      if o.resource ~= "client" then
        for part in o.resource:gmatch("[^.]+") do obj = obj[part] end
      end
      assert.is_not_nil(obj, o.call)
      assert.is_function(obj[o.name], o.call)
      if o.paginated ~= nil then
        assert.is_function(obj.pages, o.call)
        assert.is_function(obj.each, o.call)
      end
    end
    c:close()
  end)

  it("labels the operations no public source shows", function()
    local none = {}
    for _, o in ipairs(ops) do
      if o.source == "none" then none[#none + 1] = o.call end
    end
    assert.same({ "enrichment.goods_receipts:delete(external_id)", "enrichment.contracts:delete(external_id)",
      "enrichment.addresses:delete(external_id)" }, none)
  end)

  it("matches the local server's routes one to one", function()
    local srv = helpers.start_server()
    local ok, err = pcall(function()
      local routes = srv:control("GET", "/_mock/routes").routes
      local served = {}
      for _, r in ipairs(routes) do
        if not test_only(r) then served[r] = true end
      end
      local missing, extra = {}, {}
      for _, o in ipairs(ops) do
        local key = o.method .. " /v2" .. o.path
        if served[key] then served[key] = nil else missing[#missing + 1] = key .. " (" .. o.call .. ")" end
      end
      for r in pairs(served) do extra[#extra + 1] = r end
      table.sort(extra)
      assert.same({}, missing, "operations the local server does not serve")
      assert.same({}, extra, "local-server routes without an operation")
    end)
    srv:stop()
    assert(ok, err)
  end)

  it("is what the README's reference table shows", function()
    local f = assert(io.open("README.md", "rb"))
    local text = f:read("a")
    f:close()
    local table_md = text:match("<!%-%- reference:start %-%->\n(.-)\n<!%-%- reference:end %-%->")
    assert.is_string(table_md, "README.md lacks the reference markers")
    assert.equal(ops.markdown(), table_md, "run `lua5.4 tools/reference.lua --write`")
  end)
end)
