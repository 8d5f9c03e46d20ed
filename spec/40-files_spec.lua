-- client.files and client.emails against the local server: streaming, names, types.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

describe("files", function()
  local srv, c, dir, rm
  lazy_setup(function()
    srv = helpers.start_server()
    dir, rm = helpers.tmpdir()
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if rm then rm() end
  end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv, { backoff_base = 0.01 })
  end)

  it("uploads from disk and downloads the same bytes, type and name", function()
    local data = {}
    for i = 1, 20000 do data[i] = string.format("%08d\n", i) end
    data = "%PDF-1.4\n" .. table.concat(data)
    helpers.write(dir .. "/Rechnung 2026.pdf", data)
    local up, meta = c.files:upload({ path = dir .. "/Rechnung 2026.pdf" })
    assert.is_table(up, tostring(meta))
    assert.equal(201, meta.status)
    assert.matches("^%x+%-%x+%-%x+%-%x+%-%x+$", up.id)
    local bytes, dmeta = c.files:download(up.id)
    assert.equal(data, bytes)
    assert.equal("application/pdf", dmeta.content_type)
    assert.equal("Rechnung 2026.pdf", dmeta.filename)
    local log = srv:stats().log
    local post
    for _, e in ipairs(log) do if e.method == "POST" and e.path == "/v2/files" then post = e end end
    assert.equal("application/pdf", post.content_type)
    assert.equal(#data, math.floor(tonumber(post.content_length)))
  end)

  it("uploads a string with a name and infers the type from it", function()
    local up = assert(c.files:upload({ data = "\137PNG\r\n\26\n....", filename = "scan.PNG" }))
    local bytes, meta = c.files:download(up.id)
    assert.equal("\137PNG\r\n\26\n....", bytes)
    assert.equal("image/png", meta.content_type)
    assert.equal("scan.PNG", meta.filename)
  end)

  it("sends Latin-1 names as Latin-1 and others percent-encoded, and reads both back", function()
    local up = assert(c.files:upload({ data = "%PDF", filename = "Müller Größe.pdf" }))
    local _, meta = assert(c.files:download(up.id))
    assert.equal("Müller Größe.pdf", meta.filename)
    assert.equal("M\252ller Gr\246\223e.pdf", meta.headers["x-hy-filename"])
    up = assert(c.files:upload({ data = "%PDF", filename = "請求書.pdf" }))
    _, meta = assert(c.files:download(up.id))
    assert.equal("請求書.pdf", meta.filename)
    assert.equal("%E8%AB%8B%E6%B1%82%E6%9B%B8.pdf", meta.headers["x-hy-filename"])
  end)

  it("refuses names it cannot send, before sending, and the loop goes on", function()
    local results = {}
    for _, name in ipairs({ "ok.pdf", "bad\r\nX-Evil: 1.pdf", string.rep("a", 253) .. ".pdf", "fine.pdf" }) do
      local up, err = c.files:upload({ data = "%PDF", filename = name })
      results[#results + 1] = up and "ok" or err.kind
    end
    assert.same({ "ok", "invalid", "invalid", "ok" }, results)
    assert.equal(2, (srv:stats().by_route or {})["POST /v2/files"])
  end)

  it("refuses an unknown extension without content_type, and lets content_type decide", function()
    local up, err = c.files:upload({ data = "<x/>", filename = "invoice.dat" })
    assert.is_nil(up)
    assert.equal("invalid", err.kind)
    up = assert(c.files:upload({ data = "<x/>", filename = "invoice.dat", content_type = "application/xml" }))
    assert.is_string(up.id)
    local v, e2 = c.files:upload({ data = "x", filename = "a.docx",
      content_type = "application/vnd.openxmlformats-officedocument.wordprocessingml.document" })
    assert.is_nil(v)
    assert.equal("http", e2.kind)
    assert.equal(400, e2.status)
    assert.equal("Content type not supported", e2.title)
  end)

  it("reports a missing file as io, sending nothing", function()
    local up, err = c.files:upload({ path = dir .. "/nope.pdf" })
    assert.is_nil(up)
    assert.equal("io", err.kind)
    -- named by the caller's option and path (issue 18: not client:request's body_file)
    assert.equal('path "' .. dir .. '/nope.pdf" cannot be read: No such file or directory', err.message)
    assert.equal("not_sent", err.outcome)
    os.execute("mkdir -p '" .. dir .. "/folder.pdf'")
    up, err = c.files:upload({ path = dir .. "/folder.pdf" })
    assert.is_nil(up)
    assert.equal('path "' .. dir .. '/folder.pdf" cannot be read: not a regular file', err.message)
    assert.is_nil((srv:stats().by_route or {})["POST /v2/files"])
  end)

  it("streams a download to disk, appearing only when complete", function()
    local up = assert(c.files:upload({ data = string.rep("%PDF-chunk", 50000), filename = "big.pdf" }))
    local ok, meta = c.files:download(up.id, { path = dir .. "/out.pdf" })
    assert.is_true(ok)
    assert.equal("big.pdf", meta.filename)
    assert.equal(string.rep("%PDF-chunk", 50000), helpers.read(dir .. "/out.pdf"))
    -- an unknown id: an error, and no file
    local v, err = c.files:download("00000000-0000-4000-8000-000000000000", { path = dir .. "/none.pdf" })
    assert.is_nil(v)
    assert.equal(404, err.status)
    assert.equal("File not found", err.title)
    assert.is_nil(helpers.read(dir .. "/none.pdf"))
  end)

  it("retries a download cut off mid-body and writes the whole file once", function()
    local up = assert(c.files:upload({ data = string.rep("0123456789", 100000), filename = "cut.pdf" }))
    srv:fault({ method = "GET", path = "/v2/files/" .. up.id, kind = "close_mid_body" })
    local ok, meta = c.files:download(up.id, { path = dir .. "/cut.pdf" })
    assert.is_true(ok, tostring(meta))
    assert.equal(2, meta.attempts)
    assert.equal(string.rep("0123456789", 100000), helpers.read(dir .. "/cut.pdf"))
    local p = io.popen("ls -A " .. dir .. " | grep -c part")
    assert.equal("0", p:read("l"))
    p:close()
  end)

  it("does not re-send an upload after a 500 or a dropped connection", function()
    assert(c:token())
    srv:fault({ method = "POST", path = "/v2/files", kind = "status", status = 500 })
    local up, err = c.files:upload({ data = "%PDF", filename = "a.pdf" })
    assert.is_nil(up)
    assert.is_false(err.retryable)
    srv:fault({ method = "POST", path = "/v2/files", kind = "close" })
    up, err = c.files:upload({ data = "%PDF", filename = "b.pdf" })
    assert.is_nil(up)
    assert.equal("network", err.kind)
    assert.equal(2, srv:stats().by_route["POST /v2/files"])
  end)

  it("says what a failed upload may have done: refused, unknown, done (stored), not_sent", function()
    assert(c:token())
    srv:fault({ method = "POST", path = "/v2/files", kind = "status", status = 500 })
    local _, err = c.files:upload({ data = "%PDF", filename = "a.pdf" })
    assert.equal("refused", err.outcome)
    srv:fault({ method = "POST", path = "/v2/files", kind = "close" }) -- read, then dropped: nobody knows
    _, err = c.files:upload({ data = "%PDF", filename = "b.pdf" })
    assert.equal("network", err.kind)
    assert.equal("unknown", err.outcome)
    -- stored, then the answer cut after its status line: the file exists
    srv:fault({ method = "POST", path = "/v2/files", kind = "close_mid_body" })
    _, err = c.files:upload({ data = "%PDF-stored", filename = "c.pdf" })
    assert.equal("done", err.outcome, tostring(err))
    assert.equal(201, err.status)
    assert.is_table(err.headers)
    assert.equal(3, srv:stats().by_route["POST /v2/files"]) -- nothing re-sent
    -- nothing listens: nothing reached a server
    local dead = helpers.hypatos.new({ client_id = "x", client_secret = "y", base_url = "http://127.0.0.1:9/v2",
      max_retries = 0 })
    _, err = dead.files:upload({ data = "%PDF", filename = "d.pdf" })
    assert.equal("not_sent", err.outcome)
    dead:close()
  end)

  it("re-sends an upload refused with 429, rewinding the file", function()
    helpers.write(dir .. "/r.pdf", string.rep("r", 300000))
    assert(c:token())
    srv:fault({ method = "POST", path = "/v2/files", kind = "rate_limit", reset = 1 })
    local up, meta = c.files:upload({ path = dir .. "/r.pdf" })
    assert.is_table(up, tostring(meta))
    assert.equal(2, meta.attempts)
    assert.equal(string.rep("r", 300000), (c.files:download(up.id)))
  end)

  it("reports upload progress", function()
    helpers.write(dir .. "/p.pdf", string.rep("p", 200000))
    local seen = 0
    assert(c.files:upload({ path = dir .. "/p.pdf", progress = function(_, _, ul) seen = math.max(seen, ul) end }))
    assert.equal(200000, seen)
  end)

  it("raises for misuse", function()
    assert.has_error(function() c.files:upload({}) end, "hypatos: files:upload needs exactly one of path and data")
    assert.has_error(function() c.files:upload({ path = "a", data = "b" }) end)
    assert.has_error(function() c.files:upload({ pth = "a" }) end, 'hypatos: files:upload: unknown option "pth"')
    assert.has_error(function() c.files:upload("a.pdf") end)
    assert.has_error(function() c.files:download("x", { pth = "a" }) end, 'hypatos: files:download: unknown option "pth"')
  end)
end)

describe("emails", function()
  local srv, c, dir, rm
  lazy_setup(function()
    srv = helpers.start_server()
    dir, rm = helpers.tmpdir()
    c = helpers.server_client(srv)
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if rm then rm() end
  end)

  it("returns the merged PDF of a document, in memory or on disk", function()
    local doc = assert(c.documents:list({ limit = 1 })).data[1]
    local pdf, meta = c.emails:content(doc.id)
    assert.is_string(pdf, tostring(meta))
    assert.equal("%PDF", pdf:sub(1, 4))
    assert.matches("^application/pdf", meta.content_type)
    assert.is_true((c.emails:content(doc.id, { path = dir .. "/mail.pdf" })))
    assert.equal(pdf, helpers.read(dir .. "/mail.pdf"))
    local v, err = c.emails:content("aaaaaaaaaaaaaaaaaaaaaaaa")
    assert.is_nil(v)
    assert.equal(404, err.status)
  end)
end)

describe("generic requests with raw bodies", function()
  local srv, c
  lazy_setup(function()
    srv = helpers.start_server()
    c = helpers.server_client(srv)
  end)
  lazy_teardown(function() if srv then srv:stop() end end)

  it("sends and receives raw XML with any method, path, query and headers", function()
    local xml = '<?xml version="1.0"?><Invoice><ID>42</ID></Invoice>'
    local text, meta = c:request("POST", "/_echo/{group}", { params = { group = "xml docs" },
      query = { format = "ubl" }, body = xml, content_type = "application/xml",
      headers = { Accept = "application/xml", ["X-Trace"] = "t-1" } })
    assert.equal(xml, text, tostring(meta))
    assert.matches("^application/xml", meta.headers["content-type"])
    assert.equal("POST", meta.headers["x-echo-method"])
    assert.equal("/v2/_echo/xml%20docs?format=ubl", meta.headers["x-echo-uri"])
    assert.equal("t-1", meta.headers["x-echo-x-trace"])
  end)

  it("passes any content type through the echo route", function()
    local body = string.rep("\0\1\2binary", 1000)
    local v, meta = c:request("PUT", "/_echo", { body = body, content_type = "application/octet-stream" })
    assert.equal(body, v, tostring(meta))
    local j = assert(c:request("POST", "/_echo", { json = { a = hypatos.array() } }))
    assert.equal("[]", hypatos.json.encode(j.a))
  end)
end)

describe("hypatos.filename.safe", function()
  local safe = require("hypatos.filename").safe
  it("reduces a name from a server to a safe base name, or nil (issue 7.13)", function()
    local cases = {
      { "../../\226\130\172.bashrc", "\226\130\172.bashrc" }, { "a\r\nb.pdf", "ab.pdf" }, { "a\0b.pdf", "ab.pdf" },
      { "C:\\x\\y.pdf", "y.pdf" }, { "  .hidden ", "hidden" }, { "a<b>c?.pdf", "abc.pdf" },
      { "Rechnung 2026.pdf", "Rechnung 2026.pdf" }, { "..", nil }, { ".", nil }, { "/", nil }, { "x/..", nil },
      { "", nil }, { "\0\r\n", nil },
    }
    for _, case in ipairs(cases) do assert.equal(case[2], safe(case[1]), ("%q"):format(case[1])) end
    assert.is_nil(safe(nil))
    local long = safe(string.rep("\195\169", 200)) -- 400 bytes of é
    assert.equal(254, #long) -- cut at a character boundary below 255 bytes
    assert.is_truthy(utf8.len(long))
  end)

  it("drops Unicode format and bidi controls, so a name shows what it is (issue 16 §11)", function()
    local RLO = "\226\128\174" -- U+202E RIGHT-TO-LEFT OVERRIDE
    local cases = {
      { "invoice" .. RLO .. "fdp.exe", "invoicefdp.exe" }, -- would display as invoiceexe.pdf
      { "a\226\128\139b\226\128\140c\226\128\141d\226\128\142e\226\128\143f.pdf", "abcdef.pdf" }, -- U+200B–U+200F
      { "\226\128\170a\226\128\171b\226\128\172c\226\128\173d.pdf", "abcd.pdf" }, -- U+202A–U+202D
      { "\226\129\166a\226\129\167b\226\129\168c\226\129\169.pdf", "abc.pdf" }, -- U+2066–U+2069
      { "\239\187\191bom.pdf", "bom.pdf" }, { "a\216\156b.pdf", "ab.pdf" }, -- U+FEFF, U+061C
      { "a\226\128\168b\226\128\169c.pdf", "abc.pdf" }, -- U+2028, U+2029
      { RLO .. ".bashrc", "bashrc" }, { RLO, nil }, { "x" .. RLO .. " ", "x" },
      -- a control byte inside an override's bytes: no override reassembled by dropping it
      { "a\226\128\1\174b.pdf", "ab.pdf" }, { "a\226\226\128\174\128\174b.pdf", "ab.pdf" },
      { "\226\128\148 dash.pdf", "\226\128\148 dash.pdf" }, -- U+2014 EM DASH stays
    }
    for _, case in ipairs(cases) do assert.equal(case[2], safe(case[1]), ("%q"):format(case[1])) end
  end)
end)
