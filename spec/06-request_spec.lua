-- Building a request: paths, queries, headers and bodies, checked before sending.
local helpers = require "spec.helpers"

local function first_send(c, method, path, opts)
  local call, err = c:prepare(method, path, opts)
  if not call then return nil, err end
  local act = call:step(1000)
  if act.token_request then act = call:step(1000.1, helpers.token_response()) end
  return act
end

describe("request building", function()
  local c = helpers.client()

  it("percent-encodes path parameters so an id cannot change the path", function()
    local act = first_send(c, "GET", "/documents/{id}/states", { params = { id = "a/../b?c#d e%" } })
    assert.equal("https://api.example.test/v2/documents/a%2F..%2Fb%3Fc%23d%20e%25/states", act.url)
    act = first_send(c, "GET", "/users/{id}", { params = { id = "6295dcd39db1ab740c3e296c" } })
    assert.equal("https://api.example.test/v2/users/6295dcd39db1ab740c3e296c", act.url)
    act = first_send(c, "GET", "/x/{n}", { params = { n = 42 } })
    assert.equal("https://api.example.test/v2/x/42", act.url)
  end)

  it("answers nil, err for empty or dot-segment ids, and sends nothing", function()
    for _, id in ipairs({ "", ".", ".." }) do
      local call, err = c:prepare("GET", "/users/{id}", { params = { id = id } })
      assert.is_nil(call)
      assert.equal("invalid", err.kind)
      assert.equal(0, err.attempts)
    end
    local _, err = c:prepare("GET", "/users/{id}", { params = { id = "" } })
    assert.equal('hypatos: invalid: path parameter "id" must not be empty (GET https://api.example.test/v2/users/{id})',
      tostring(err))
  end)

  it("answers nil, err for ids with CR, LF, NUL or other control characters", function()
    for _, id in ipairs({ "a\r\nb", "a\nb", "a\0b", "a\tb" }) do
      local call, err = c:prepare("GET", "/documents/{id}", { params = { id = id } })
      assert.is_nil(call)
      assert.equal("invalid", err.kind)
      assert.equal('path parameter "id" contains a control character (CR, LF or NUL)', err.message)
    end
  end)

  it("raises for path misuse", function()
    assert.has_error(function() c:prepare("GET", "users") end, 'hypatos.request: path must start with "/", got "users"')
    assert.has_error(function() c:prepare("GET", "/users/{id}") end,
      'hypatos.request: path parameter "id" is missing (no params table)')
    assert.has_error(function() c:prepare("GET", "/users/{id}", { params = {} }) end,
      'hypatos.request: path parameter "id" is missing')
    assert.has_error(function() c:prepare("GET", "/users/{id}", { params = { id = {} } }) end,
      'hypatos.request: path parameter "id" must be a string, got table')
    assert.has_error(function() c:prepare("GET", "/users/{id}", { params = { id = 1.5 } }) end,
      'hypatos.request: path parameter "id" must be a string, got a non-integer number')
    assert.has_error(function() c:prepare("GET", "/users", { params = { id = "x" } }) end,
      'hypatos.request: params has names that path "/users" does not use')
    assert.has_error(function() c:prepare("GET", "/users?x=1") end)
    assert.has_error(function() c:prepare("GET", "/a b") end)
    assert.has_error(function() c:prepare("GE T", "/a") end, 'hypatos.request: method "GE T" is not valid')
  end)

  it("encodes queries with sorted keys and repeated keys for arrays", function()
    local act = first_send(c, "GET", "/documents", { query = {
      state = { "done", "doneAutomatically" }, projectId = { "a", "b" }, limit = 50, offset = 0,
      active = true, search = "Müller & Co", empty = {} } })
    assert.equal("https://api.example.test/v2/documents?active=true&limit=50&offset=0" ..
      "&projectId=a&projectId=b&search=M%C3%BCller%20%26%20Co&state=done&state=doneAutomatically", act.url)
  end)

  it("encodes query keys holding NUL in full (%00), never cut at the NUL (issue 7.6)", function()
    local act = first_send(c, "GET", "/x", { query = { ["a\0b"] = "1", a = "2" } })
    assert.equal("https://api.example.test/v2/x?a=2&a%00b=1", act.url)
  end)

  it("survives finalizers that add query keys while the query is built (issue 7.2)", function()
    for _ = 1, 20 do
      local q = {}
      for i = 1, 40 do q["k" .. i] = i end
      for i = 1, 300 do
        setmetatable({}, { __gc = function() for j = 1, 50 do q["z" .. i .. "_" .. j] = j end end })
      end
      local act = first_send(c, "GET", "/x", { query = q })
      for i = 1, 40 do assert.truthy(act.url:find("k" .. i .. "=" .. i, 1, true)) end
    end
  end)

  it("raises for nested query values", function()
    assert.has_error(function() c:prepare("GET", "/d", { query = { a = { b = 1 } } }) end,
      'hypatos.request: query "a" must be a scalar or an array of scalars')
    assert.has_error(function() c:prepare("GET", "/d", { query = { a = { { 1 } } } }) end)
    assert.has_error(function() c:prepare("GET", "/d", { query = { [1] = "x" } }) end,
      "hypatos.request: query keys must be strings, got number")
  end)

  it("refuses CR, LF and NUL in header values as nil, err (kind invalid)", function()
    for _, v in ipairs({ "a\r\nX-Injected: 1", "a\nb", "a\0b" }) do
      local call, err = c:prepare("POST", "/files", { body = "x", headers = { ["X-Hy-Filename"] = v } })
      assert.is_nil(call)
      assert.equal("invalid", err.kind)
      assert.equal('header "X-Hy-Filename" contains a control character (CR, LF or NUL)', err.message)
    end
  end)

  it("raises for headers the client owns and bad header names", function()
    assert.has_error(function() c:prepare("GET", "/u", { headers = { Authorization = "Bearer x" } }) end,
      'hypatos.request: header "Authorization" is set by the client and cannot be passed')
    assert.has_error(function() c:prepare("GET", "/u", { headers = { ["Content-Length"] = "5" } }) end)
    assert.has_error(function() c:prepare("GET", "/u", { headers = { ["Bad Name"] = "x" } }) end,
      'hypatos.request: header name "Bad Name" is not valid')
    assert.has_error(function() c:prepare("GET", "/u", { headers = { X = true } }) end,
      'hypatos.request: header "X" must be a string, got boolean')
  end)

  it("sends JSON bodies with their type and the caller's headers", function()
    local act = first_send(c, "POST", "/projects", { json = { name = "P", tags = require("hypatos").array() },
      headers = { ["X-Trace"] = "t1" } })
    assert.equal('{"name":"P","tags":[]}', act.body)
    assert.equal("application/json", act.headers["Content-Type"])
    assert.equal("t1", act.headers["X-Trace"])
    assert.equal("application/json", act.headers.Accept)
    act = first_send(c, "POST", "/d/x/title", { body = "Title", content_type = "text/plain" })
    assert.equal("text/plain", act.headers["Content-Type"])
    act = first_send(c, "PATCH", "/e/x", { json = { a = 1 }, headers = { ["Content-Type"] = "application/merge-patch+json" } })
    assert.equal("application/merge-patch+json", act.headers["Content-Type"])
  end)

  it("answers nil, err (invalid) for JSON that cannot be written", function()
    local call, err = c:prepare("POST", "/x", { json = { amount = 0 / 0 } })
    assert.is_nil(call)
    assert.equal("invalid", err.kind)
    assert.equal("json: NaN or infinity cannot be written as JSON at amount", err.message)
  end)

  it("streams body files with their size, and answers nil, err (io) for unreadable ones", function()
    local dir, rm = helpers.tmpdir()
    helpers.write(dir .. "/a.pdf", "%PDF-1.4 hello")
    local act = first_send(c, "POST", "/files", { body_file = dir .. "/a.pdf", content_type = "application/pdf" })
    assert.equal(dir .. "/a.pdf", act.body_file)
    assert.equal(14, act.body_size)
    assert.is_true(act.stream)
    assert.is_true(act.fresh)
    local call, err = c:prepare("POST", "/files", { body_file = dir .. "/missing.pdf" })
    assert.is_nil(call)
    assert.equal("io", err.kind)
    assert.equal('body_file "' .. dir .. '/missing.pdf" cannot be read: No such file or directory', err.message)
    call, err = c:prepare("POST", "/files", { body_file = dir })
    assert.is_nil(call)
    assert.equal('body_file "' .. dir .. '" cannot be read: not a regular file', err.message)
    rm()
  end)

  it("raises for misused options", function()
    assert.has_error(function() c:prepare("POST", "/x", { body = "a", json = {} }) end,
      "hypatos.request: options body, body_file and json are exclusive")
    assert.has_error(function() c:prepare("GET", "/x", { tiemout = 1 }) end, 'hypatos.request: unknown option "tiemout"')
    assert.has_error(function() c:prepare("GET", "/x", { timeout = "1" }) end,
      'hypatos.request: option "timeout" must be a number, got string')
    assert.has_error(function() c:prepare("GET", "/x", { max_retries = -1 }) end,
      'hypatos.request: option "max_retries" must be an integer >= 0')
    assert.has_error(function() c:prepare("GET", "/x", { raw = 1 }) end,
      'hypatos.request: option "raw" must be a boolean, got number')
    assert.has_error(function() c:prepare("POST", "/x", { body = "a", content_type = "text/plain",
      headers = { ["content-type"] = "text/plain" } }) end,
      "hypatos.request: give Content-Type either in headers or as content_type, not both")
    assert.has_error(function() c:request("GET", "/x", "opts") end)
  end)

  it("marks methods idempotent by default as HTTP says, overridable", function()
    assert.is_false(first_send(c, "GET", "/x").fresh)
    assert.is_false(first_send(c, "DELETE", "/x").fresh)
    assert.is_false(first_send(c, "PUT", "/x", { body = "a" }).fresh)
    assert.is_true(first_send(c, "POST", "/x", { body = "a" }).fresh)
    assert.is_true(first_send(c, "PATCH", "/x", { body = "a" }).fresh)
    assert.is_false(first_send(c, "POST", "/x", { body = "a", idempotent = true }).fresh)
    assert.equal("DELETE", first_send(c, "delete", "/x").method)
  end)
end)

describe("compiled operations (core.op, client:call): the resource methods' direct path", function()
  local core = require "hypatos.core"
  local srv, c, id
  lazy_setup(function()
    srv = helpers.start_server()
    c = helpers.server_client(srv)
    id = assert(c.users:list{ limit = 1 }).data[1].id
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("sends the operation with positional arguments, as client:request would", function()
    local op = core.op("GET", "/users/{id}", true)
    assert.equal("hypatos.Op(GET /users/{id})", tostring(op))
    local user, meta = c:call(op, id)
    assert.equal(id, user.id)
    assert.equal(200, meta.status)
    local page = c:call(core.op("GET", "/users", true, "query"), { limit = 2 })
    assert.equal(2, #page.data)
    assert.is_true(#c:call(core.op("GET", "/users", true, "query")).data > 2) -- no query: the default page
    local _, err = c:call(op, "") -- bad data: nil, err, nothing sent
    assert.equal("invalid", err.kind)
    assert.equal('path parameter "id" must not be empty', err.message)
  end)

  it("returns nothing at all for a call that needs the general path (options, other types)", function()
    local op = core.op("GET", "/users/{id}", true)
    assert.equal(0, select("#", c:call(op, id, { timeout = 5 })))
    assert.equal(0, select("#", c:call(op, { id })))
    assert.equal(0, select("#", c:call(core.op("POST", "/enrichment/suppliers", true, "json"), "not a table")))
    -- the resource method then raises as always
    assert.has_error(function() c.users:get({ id }) end, 'hypatos: users:get: path parameter "id" must be a string, got table')
    -- programming mistakes name the method and point at the caller's line
    for _, case in ipairs({ { nil, "is missing" }, { {}, "must be a string, got table" },
        { 1.5, "must be a string, got a non-integer number" }, { true, "must be a string, got boolean" } }) do
      local ok, err = pcall(function() local u = c.users:get(case[1]) return u end)
      assert.is_false(ok)
      assert.matches('^spec/06%-request_spec%.lua:%d+: hypatos: users:get: path parameter "id" ' .. case[2]:gsub("%-", "%%-")
        .. "$", err)
    end
    assert.equal(id, (c.users:get(id, { timeout = 5 })).id)
  end)

  it("prepares the same calls for a driver of its own (client:prepare_op), nothing for the general path", function()
    local function step(call)
      local act = call:step(core.now())
      call:close()
      return act
    end
    local op = core.op("GET", "/users/{id}", true)
    local a = step(assert(c:prepare_op(op, id)))
    local b = step(assert(c:prepare("GET", "/users/{id}", { params = { id = id }, idempotent = true })))
    assert.equal("send", a.type)
    assert.same(b, a)
    a = step(assert(c:prepare_op(core.op("GET", "/users", true, "query"), { limit = 2, q = "a b" })))
    assert.equal(srv.url .. "/users?limit=2&q=a%20b", a.url)
    a = step(assert(c:prepare_op(core.op("POST", "/enrichment/suppliers", true, "json"), { name = "x" })))
    assert.equal('{"name":"x"}', a.body)
    assert.equal("application/json", a.headers["Content-Type"])
    local call, err = c:prepare_op(op, "")
    assert.is_nil(call)
    assert.equal("invalid", err.kind)
    assert.equal(0, select("#", c:prepare_op(op, id, { timeout = 5 })))
    assert.equal(0, select("#", c:prepare_op(op, { id })))
  end)

  it("refuses an operation it cannot send", function()
    assert.has_error(function() core.op("GE T", "/x", true) end, 'hypatos.op: method "GE T" is not valid')
    assert.has_error(function() core.op("GET", "x", true) end, 'hypatos.op: path "x" is not valid')
    assert.has_error(function() core.op("GET", "/x", true, "xml") end,
      'hypatos.op: body must be nil, "json" or "query", got "xml"')
  end)
end)
