-- The `hypatos` command (bin/hypatos) run as a subprocess against the local server: every
-- command, every format, the exit statuses 0/1/2/64, no secret on stderr, --debug lines, no
-- control character from a hostile server on the terminal, CSV formulas neutralised,
-- downloads to a safe name, progress only on a terminal; `hypatos serve` started and stopped
-- by signal; usage errors a command finds (its usage, one line), Ctrl-C under a progress line
-- (cleared first), a bad HYPATOS_BASE_URL / HYPATOS_REDIS_URL named as such; hypatos.testing;
-- and the README's busted example.
local helpers = require "spec.helpers"
local hypatos = helpers.hypatos

local srv, c, dir, cleanup, root

-- Quotes a string for /bin/sh.
local function sh(s)
  return "'" .. tostring(s):gsub("'", "'\\''") .. "'"
end

--- The shell command that runs bin/hypatos with args (only the server's credentials and PATH
-- in its environment, plus opts.env; opts.cwd, opts.stdin).
local function command(args, opts)
  opts = opts or {}
  local env = { PATH = os.getenv("PATH"), HYPATOS_BASE_URL = srv.url, HYPATOS_CLIENT_ID = srv.client_id,
    HYPATOS_CLIENT_SECRET = srv.client_secret }
  for k, v in pairs(helpers.lua_env()) do if k ~= "LUA_PATH" and k ~= "LUA_CPATH" then env[k] = v end end
  for k, v in pairs(opts.env or {}) do env[k] = v or nil end
  local cmd = { "cd", sh(opts.cwd or root), "&&", "env -i" }
  for k, v in pairs(env) do cmd[#cmd + 1] = k .. "=" .. sh(v) end
  cmd[#cmd + 1] = sh(root .. "/bin/hypatos")
  for _, a in ipairs(args) do cmd[#cmd + 1] = sh(a) end
  if opts.stdin then
    helpers.write(dir .. "/stdin", opts.stdin)
    cmd[#cmd + 1] = "<" .. sh(dir .. "/stdin")
  end
  return table.concat(cmd, " ")
end

--- Runs bin/hypatos with args (see `command`). Returns exit code, stdout, stderr.
local function run(args, opts)
  local p = io.popen(command(args, opts) .. " 2>" .. sh(dir .. "/stderr"))
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out, helpers.read(dir .. "/stderr")
end

--- Runs bin/hypatos with args (see `command`) in a pseudo-terminal (`script` from util-linux):
-- stdin, stdout and stderr are the terminal. Returns the exit status (script -e passes it on)
-- and the output, stdout and stderr merged.
local function tty(args, opts)
  local p = io.popen("script -qefc " .. sh(command(args, opts)) .. " /dev/null")
  local out = p:read("a")
  local _, _, code = p:close()
  return code, out
end

--- Starts bin/hypatos with args (see `command`) in the background, its stdin /dev/null; with
-- opts.tty in a pseudo-terminal (`script`, stdout and stderr merged), else stdout and stderr
-- apart. Returns the pid of bin/hypatos itself (its shell writes its pid, then execs it), the
-- pid of the subshell waiting for it, and the base name of its files (.out, .err; .rc holds
-- the exit status once it ended).
local function start(args, opts)
  opts = opts or {}
  local base = dir .. "/bg"
  for _, ext in ipairs({ ".pid", ".out", ".err", ".rc" }) do os.remove(base .. ext) end
  local inner = "echo $$ > " .. sh(base .. ".pid") .. "; " .. command(args, opts):gsub("&& env %-i", "&& exec env -i", 1)
  local outer = opts.tty and ("script -qefc " .. sh(inner) .. " /dev/null") or ("sh -c " .. sh(inner))
  local p = io.popen(("(%s > %s 2> %s < /dev/null; echo $? > %s) > /dev/null 2>&1 & echo $!")
    :format(outer, sh(base .. ".out"), sh(base .. ".err"), sh(base .. ".rc")))
  local waiter = assert(tonumber(p:read("l")))
  p:close()
  local pid
  local t0 = helpers.now()
  repeat
    pid = tonumber(helpers.read(base .. ".pid") or "")
    if not pid then os.execute("sleep 0.02") end
  until pid or helpers.now() - t0 > 5
  return assert(pid, "bin/hypatos did not start"), waiter, base
end

--- Waits (at most `limit` seconds) until what `start` started has ended; kills what is left
-- of it by pid. Returns the exit status (nil when it had to be killed), stdout (in a terminal:
-- the terminal's output), stderr.
local function finish(pid, waiter, base, limit)
  local t0 = helpers.now()
  while not (helpers.read(base .. ".rc") or ""):find("\n") and helpers.now() - t0 < (limit or 5) do
    os.execute("sleep 0.05")
  end
  local code = tonumber((helpers.read(base .. ".rc") or ""):match("%d+"))
  for _, id in ipairs({ pid, waiter }) do
    if helpers.alive(id) then os.execute("kill -KILL " .. id) end
  end
  return code, helpers.read(base .. ".out") or "", helpers.read(base .. ".err") or ""
end

--- Fails when a command's output shows a Lua error (a file position, a bad argument).
local function no_lua_error(out)
  assert.is_nil(out:find("%.lua:%d+:"), out)
  assert.is_nil(out:find("bad argument", 1, true), out)
  assert.is_nil(out:find("traceback", 1, true), out)
end

--- The lines of a text (without line ends).
local function lines(text)
  local t = {}
  for l in text:gmatch("([^\n]*)\n") do t[#t + 1] = l end
  return t
end

--- Every line of a JSONL text, decoded.
local function jsonl(text)
  local t = {}
  for i, l in ipairs(lines(text)) do t[i] = hypatos.json.decode(l) end
  return t
end

--- How many items the API lists for a resource (through the library).
local function count(resource, query)
  local n = 0
  for _ in c[resource]:each(query) do n = n + 1 end
  return n
end

local PDF = "examples/data/pdfs/invoice-2025-0412.pdf"
local FINAL = { done = true, doneAutomatically = true, failed = true }

describe("hypatos command", function()
  lazy_setup(function()
    srv = helpers.start_server({ config = { processing_time = 0.3 } })
    dir, cleanup = helpers.tmpdir()
    local p = io.popen("pwd")
    root = p:read("l")
    p:close()
  end)
  lazy_teardown(function()
    if srv then srv:stop() end
    if cleanup then cleanup() end
  end)
  before_each(function()
    srv:reset()
    c = helpers.server_client(srv)
  end)

  describe("usage", function()
    it("--help lists the commands and exits 0", function()
      local code, out, err = run({ "--help" })
      assert.equal(0, code, err)
      for _, cmd in ipairs({ "token", "users", "companies", "projects", "documents", "files", "enrichment",
        "request", "serve" }) do
        assert.matches("\n   " .. cmd .. " ", out, 1, true)
      end
      assert.matches("64 usage error", out, 1, true)
      assert.matches("130 stopped by Ctrl-C", out, 1, true)
    end)

    it("exits 64 with one error line for a missing command, an unknown option or a bad value", function()
      for _, args in ipairs({ {}, { "users" }, { "users", "list", "--nope" }, { "users", "list", "--format", "xml" },
        { "files", "upload" }, { "files", "upload", "a.pdf", "--concurrency", "0" }, { "serve", "--quota", "5" },
        { "enrichment", "bogus", "delete", "X" }, { "enrichment", "products", "delete", "X" },
        { "request", "GET", "/users", "-q", "novalue" } }) do
        local code, out, err = run(args)
        assert.equal(64, code, table.concat(args, " ") .. ": " .. err)
        assert.equal("", out)
        local errs = {}
        for _, l in ipairs(lines(err)) do if l:match("^hypatos: ") then errs[#errs + 1] = l end end
        assert.equal(1, #errs, err)
      end
    end)
  end)

  describe("token", function()
    it("shows scopes, expiry and the token URL, never the token unless --show-token", function()
      local code, out, err = run({ "token", "--format", "json" })
      assert.equal(0, code, err)
      local t = hypatos.json.decode(out)
      assert.matches("users.read", t.scopes, 1, true)
      assert.equal(srv.url .. "/auth/token", t.token_url)
      assert.is_true(t.expires_in > 3500)
      assert.matches("^%d%d%d%d%-%d%d%-%d%dT", t.expires_at)
      assert.is_nil(t.access_token)
      code, out = run({ "token", "--show-token", "--format", "json" })
      assert.equal(0, code)
      local tok = hypatos.json.decode(out).access_token
      assert.is_string(tok)
      assert.is_true(#tok > 8)
      code, out = run({ "token", "--format", "table" })
      assert.equal(0, code)
      assert.matches("\nscopes +companies%.read", out)
      assert.is_nil(out:find(tok, 1, true))
    end)

    it("keeps the token between runs in a file of the user's (0600), bound to the credentials", function()
      local home = dir .. "/home"
      os.execute("rm -rf " .. sh(home) .. " && mkdir " .. sh(home))
      local before = srv:stats().token_requests
      for _ = 1, 3 do
        local code, _, err = run({ "users", "list", "--format", "json" }, { env = { HOME = home } })
        assert.equal(0, code, err)
      end
      assert.equal(before + 1, srv:stats().token_requests) -- three runs, one token
      local p = io.popen("stat -c '%a %n' " .. sh(home) .. "/.cache/hypatos " .. sh(home) .. "/.cache/hypatos/*")
      local listing = p:read("a")
      p:close()
      assert.matches("^700 ", listing)
      assert.matches("\n600 [^\n]*/hypatos%-token%-v1%-%x+%.json\n", listing)
      assert.is_nil(listing:find(srv.client_id, 1, true))
      -- another secret never reads it: refused as usual, with a token request of its own
      local code, _, err = run({ "users", "list" }, { env = { HOME = home, HYPATOS_CLIENT_SECRET = "wrong" } })
      assert.equal(1, code)
      assert.matches("auth 401", err)
      assert.equal(before + 2, srv:stats().token_requests)
    end)
  end)

  describe("listings", function()
    it("jsonl (the default off a terminal): every user of every page, one object per line", function()
      local code, out, err = run({ "users", "list" })
      assert.equal(0, code, err)
      assert.equal("", err)
      local items = jsonl(out)
      assert.equal(count("users"), #items)
      assert.is_true(#items > 50) -- more than one page
      local seen = {}
      for _, u in ipairs(items) do
        assert.is_string(u.id)
        assert.is_nil(seen[u.id])
        seen[u.id] = true
      end
    end)

    it("json: one array", function()
      for _, r in ipairs({ "users", "companies", "projects" }) do
        local code, out, err = run({ r, "list", "--format", "json" })
        assert.equal(0, code, err)
        local arr = hypatos.json.decode(out)
        assert.equal(count(r), #arr, r)
        assert.is_string(arr[1].id)
      end
    end)

    it("csv: a header with flattened nested fields, one row per item", function()
      local code, out, err = run({ "projects", "list", "--format", "csv" })
      assert.equal(0, code, err)
      local rows = {}
      for l in out:gmatch("([^\r\n]*)\r\n") do rows[#rows + 1] = l end
      assert.matches("^id,", rows[1])
      assert.matches(",name,", rows[1], 1, true)
      assert.matches(",ocr%.engine,", rows[1])
      assert.matches(",members%.members%.1,", rows[1])
      assert.equal(count("projects") + 1, #rows)
    end)

    it("table: aligned columns with id first", function()
      local code, out, err = run({ "companies", "list", "--format", "table" })
      assert.equal(0, code, err)
      local l = lines(out)
      assert.matches("^id +active +createdAt +name$", l[1])
      assert.equal(count("companies") + 1, #l)
      local col = l[1]:find("name", 1, true)
      for i = 2, #l do assert.is_true(#l[i] >= col, l[i]) end
    end)

    it("documents list --state S... --project ID", function()
      local code, out, err = run({ "documents", "list", "--state", "done", "--state", "junk" })
      assert.equal(0, code, err)
      local docs = jsonl(out)
      assert.equal(count("documents", { state = { "done", "junk" } }), #docs)
      for _, d in ipairs(docs) do assert.is_truthy(d.state == "done" or d.state == "junk") end
      local project = docs[1].projectId
      code, out = run({ "documents", "list", "--project", project })
      assert.equal(0, code)
      docs = jsonl(out)
      assert.equal(count("documents", { projectId = { project } }), #docs)
      for _, d in ipairs(docs) do assert.equal(project, d.projectId) end
    end)

    it("exits 1 with the API's reason for a state that does not exist", function()
      local code, out, err = run({ "documents", "list", "--state", "finished" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: http 400: Provided state is invalid[^\n]*\n$", err)
    end)
  end)

  describe("get, states, schema", function()
    it("gets one of each resource; an unknown id exits 1", function()
      for _, r in ipairs({ "users", "companies", "projects", "documents" }) do
        local id = c[r]:list({ limit = 1 }).data[1].id
        local code, out, err = run({ r, "get", id, "--format", "json" })
        assert.equal(0, code, err)
        assert.equal(id, hypatos.json.decode(out).id)
      end
      local code, out, err = run({ "users", "get", "0123456789abcdef01234567" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: http 404: [^\n]*\n$", err)
    end)

    it("documents states and projects schema", function()
      local doc = c.documents:list({ limit = 1, state = { "done" } }).data[1]
      local code, out, err = run({ "documents", "states", doc.id })
      assert.equal(0, code, err)
      local states = jsonl(out)
      assert.is_true(#states >= 2)
      assert.equal("new", states[1].state)
      local project = c.projects:list({ limit = 1 }).data[1].id
      code, out, err = run({ "projects", "schema", project, "--format", "json" })
      assert.equal(0, code, err)
      assert.same(c.projects:schema(project), hypatos.json.decode(out))
      code, out = run({ "projects", "schema", project, "--format", "csv" })
      assert.equal(0, code)
      assert.matches("dataPoints%.1%.internalName", out)
    end)
  end)

  describe("files", function()
    it("uploads many files: one line per file; one bad file exits 2 and is reported", function()
      helpers.write(dir .. "/empty.pdf", "")
      local code, out, err = run({ "files", "upload", PDF, dir .. "/empty.pdf", PDF })
      assert.equal(2, code, err)
      local rows = jsonl(out)
      assert.equal(3, #rows)
      assert.equal(PDF, rows[1].path)
      assert.is_string(rows[1].fileId)
      assert.is_string(rows[3].fileId)
      assert.equal(dir .. "/empty.pdf", rows[2].path)
      assert.is_nil(rows[2].fileId)
      assert.matches("File is empty", rows[2].error, 1, true)
      local l = lines(err)
      assert.equal(1, #l, err)
      assert.matches("^hypatos: .*empty%.pdf: http 400: File is empty", l[1])
      assert.is_nil(err:find("\r", 1, true)) -- no progress: stderr is not a terminal
      assert.equal(3, srv:stats().by_route["POST /v2/files"])
      code = run({ "files", "upload", dir .. "/empty.pdf", dir .. "/missing.pdf" })
      assert.equal(1, code)
    end)

    it("--project and --wait: processed into documents and waited for", function()
      local project = c.projects:list({ limit = 1 }).data[1].id
      local code, out, err = run({ "files", "upload", PDF, PDF, "--project", project, "--wait", "--timeout", "20",
        "--concurrency", "2", "--format", "csv" })
      assert.equal(0, code, err)
      local rows = {}
      for l in out:gmatch("([^\r\n]*)\r\n") do rows[#rows + 1] = l end
      assert.equal("path,fileId,documentId,state,error,outcome", rows[1])
      assert.equal(3, #rows)
      for i = 2, 3 do
        local path, file, docid, state = rows[i]:match("^([^,]*),([^,]*),([^,]*),([^,]*),,$")
        assert.equal(PDF, path)
        assert.is_truthy(FINAL[state], rows[i])
        local d = assert(c.documents:get(docid))
        assert.equal(file, d.fileId)
        assert.equal(project, d.projectId)
      end
    end)

    it("reports files that may have been stored and files stored with the answer lost", function()
      srv:fault({ { method = "POST", path = "/v2/files", kind = "close" },
        { method = "POST", path = "/v2/files", kind = "close_mid_body" } })
      local code, out, err = run({ "files", "upload", PDF, PDF, PDF, "--concurrency", "1" })
      assert.equal(2, code, err)
      local rows = jsonl(out)
      assert.equal("unknown", rows[1].outcome)
      assert.equal("done", rows[2].outcome)
      assert.is_nil(rows[3].outcome)
      assert.is_string(rows[3].fileId)
      local l = lines(err)
      assert.matches(": may have been stored: network", l[1])
      assert.matches(": stored, answer lost: network", l[2])
      assert.matches("1 file may have been stored or processed and 1 was stored or processed with the answer lost",
        l[3], 1, true)
    end)

    it("--wait past --timeout reports the state reached and exits 1", function()
      srv:configure({ processing_time = 60 })
      local code, out = run({ "files", "upload", PDF, "--wait", "--timeout", "0.3" })
      assert.equal(1, code)
      local row = jsonl(out)[1]
      assert.is_string(row.documentId)
      assert.is_truthy(row.state == "new" or row.state == "processing", row.state)
      assert.matches("^timeout", row.error)
    end)

    it("downloads to the server's file name made safe, never to the raw name", function()
      local work = dir .. "/dl"
      os.execute("rm -rf " .. sh(work) .. " && mkdir -p " .. sh(work .. "/sub"))
      local f = assert(c.files:upload({ path = PDF }))
      local code, out, err = run({ "files", "download", f.id }, { cwd = work .. "/sub" })
      assert.equal(0, code, err)
      assert.equal("invoice-2025-0412.pdf\n", out)
      assert.equal(helpers.read(PDF), helpers.read(work .. "/sub/invoice-2025-0412.pdf"))
      -- the same again: an existing file is kept
      code, out, err = run({ "files", "download", f.id }, { cwd = work .. "/sub" })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("exists already", err)
      -- a hostile name from the server
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/files/" .. f.id, body = "bytes",
        headers = { ["X-Hy-Filename"] = "../../.bashrc", ["Content-Type"] = "application/octet-stream" } })
      code, out, err = run({ "files", "download", f.id }, { cwd = work .. "/sub" })
      assert.equal(0, code, err)
      assert.equal("bashrc\n", out)
      assert.equal("bytes", helpers.read(work .. "/sub/bashrc"))
      assert.is_nil(helpers.read(work .. "/.bashrc"))
      local p = io.popen("ls -A " .. sh(work .. "/sub"))
      assert.equal("bashrc\ninvoice-2025-0412.pdf\n", p:read("a"))
      p:close()
      -- -o PATH and -o -
      code, out, err = run({ "files", "download", f.id, "-o", work .. "/x.pdf" })
      assert.equal(work .. "/x.pdf\n", out)
      assert.equal(0, code, err)
      assert.equal(helpers.read(PDF), helpers.read(work .. "/x.pdf"))
      code, out = run({ "files", "download", f.id, "-o", "-" })
      assert.equal(0, code)
      assert.equal(helpers.read(PDF), out)
      code, out, err = run({ "files", "download", "0123456789abcdef" }, { cwd = work })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("^hypatos: http 4", err)
    end)

    it("stops at once on Ctrl-C with exit status 130 and leaves no partial download", function()
      local work = dir .. "/int"
      os.execute("rm -rf " .. sh(work) .. " && mkdir -p " .. sh(work))
      local f = assert(c.files:upload({ path = PDF }))
      srv:fault{ path_pattern = "^/v2/files/", kind = "delay", delay = 10, count = -1 }
      local env = { "HYPATOS_BASE_URL=" .. sh(srv.url), "HYPATOS_CLIENT_ID=" .. sh(srv.client_id),
        "HYPATOS_CLIENT_SECRET=" .. sh(srv.client_secret) }
      for k, v in pairs(helpers.lua_env()) do
        if k ~= "LUA_PATH" and k ~= "LUA_CPATH" then env[#env + 1] = k .. "=" .. sh(v) end
      end
      local cmd = ("cd %s && env %s %s files download %s -o %s > /dev/null 2> %s & echo $!"):format(sh(work),
        table.concat(env, " "), sh(root .. "/bin/hypatos"), sh(f.id), sh(work .. "/out.pdf"), sh(dir .. "/int.err"))
      local pid = assert(tonumber(io.popen(cmd):read("l")))
      local t0 = helpers.now()
      while #srv:stats().log < 3 and helpers.now() - t0 < 5 do os.execute("sleep 0.05") end -- the GET is out
      os.execute("sleep 0.3")
      os.execute("kill -INT " .. pid)
      local t1 = helpers.now()
      while helpers.alive(pid) and helpers.now() - t1 < 5 do os.execute("sleep 0.05") end
      local gone = not helpers.alive(pid)
      if not gone then os.execute("kill -KILL " .. pid) end
      srv:control("DELETE", "/_mock/faults")
      local left = io.popen("ls -A " .. sh(work)):read("a")
      assert.is_true(gone, "the command did not stop on SIGINT")
      assert.is_true(helpers.now() - t1 < 2, "stopping took too long")
      assert.equal("", left, "files left: " .. left)
      assert.equal("hypatos: interrupted\n", helpers.read(dir .. "/int.err")) -- one clean line
      -- the exit status, through a shell that waits for it
      local p = io.popen(("cd %s && env %s sh -c %s; echo \"rc=$?\""):format(sh(work), table.concat(env, " "),
        sh(sh(root .. "/bin/hypatos") .. " files download " .. sh(f.id) .. " -o out.pdf 2>/dev/null & "
          .. "sleep 1; kill -INT $!; wait $!")))
      srv:fault{ path_pattern = "^/v2/files/", kind = "delay", delay = 10, count = -1 }
      local out = p:read("a")
      p:close()
      srv:control("DELETE", "/_mock/faults")
      assert.matches("rc=130", out)
    end)

    it("stops a multi-file upload on Ctrl-C with exit status 130 and one clean line", function()
      srv:fault{ method = "POST", path = "/v2/files", kind = "delay", delay = 10, count = -1 }
      local cmd = command({ "files", "upload", PDF, PDF, PDF }):gsub("&& env %-i", "&& exec env -i", 1)
      local p = io.popen(("sh -c %s; echo \"rc=$?\""):format(sh("(" .. cmd .. " >/dev/null 2>"
        .. sh(dir .. "/int-up.err") .. ") & "
        .. "sleep 0.6; kill -INT $!; wait $!")))
      local out = p:read("a")
      p:close()
      srv:control("DELETE", "/_mock/faults")
      assert.matches("rc=130", out)
      assert.equal("hypatos: interrupted\n", helpers.read(dir .. "/int-up.err"))
    end)

    it("shows a progress bar with bytes and rate when stderr is a terminal", function()
      local f = assert(c.files:upload({ path = PDF }))
      local cmd = ("cd %s && HYPATOS_BASE_URL=%s HYPATOS_CLIENT_ID=%s HYPATOS_CLIENT_SECRET=%s %s files download %s -o %s")
        :format(sh(root), srv.url, srv.client_id, srv.client_secret, sh(root .. "/bin/hypatos"), f.id, sh(dir .. "/tty.pdf"))
      local p = io.popen("script -qefc " .. sh(cmd) .. " /dev/null")
      local out = p:read("a")
      p:close()
      assert.matches("downloading " .. f.id, out, 1, true)
      assert.matches("977 B / 977 B", out, 1, true)
      assert.matches("B/s", out, 1, true)
      p = io.popen("script -qefc " .. sh(cmd .. " --quiet") .. " /dev/null")
      out = p:read("a")
      p:close()
      assert.is_nil(out:find("downloading", 1, true))
    end)
  end)

  describe("documents wait", function()
    it("prints the document once final; exits 1 at the timeout", function()
      local project = c.projects:list({ limit = 1 }).data[1].id
      local f = assert(c.files:upload({ path = PDF }))
      local job = assert(c.documents:process_file({ fileId = f.id, projectId = project }))
      local code, out, err = run({ "documents", "wait", job.documentId, "--timeout", "20", "--format", "json" })
      assert.equal(0, code, err)
      local doc = hypatos.json.decode(out)
      assert.equal(job.documentId, doc.id)
      assert.is_truthy(FINAL[doc.state])
      srv:configure({ processing_time = 60 })
      job = assert(c.documents:process_file({ fileId = f.id, projectId = project }))
      code, out, err = run({ "documents", "wait", job.documentId, "--timeout", "0.3" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: timeout: document %x+ is still \"%a+\"", err)
    end)
  end)

  describe("enrichment", function()
    it("upserts JSONL: a summary, refused records on stderr, exit 2", function()
      local path = dir .. "/suppliers.jsonl"
      helpers.write(path, '{"externalId":"S-1","name":"Eins GmbH","countryCode":"DE"}\n'
        .. '{"externalId":"S-2","name":"Zwei","countryCode":"Germany"}\n\n'
        .. 'not json\n{"externalId":"S-3","name":"Drei AG","countryCode":"AT"}\n')
      local code, out, err = run({ "enrichment", "suppliers", "upsert", path, "--concurrency", "2" })
      assert.equal(2, code, err)
      assert.equal("accepted: 2, refused: 2\n", out)
      local l = lines(err)
      assert.equal(2, #l, err)
      assert.matches("^hypatos: line 2 %(S%-2%): http 422: body%.countryCode: ", l[1])
      assert.matches("^hypatos: line 4: not JSON", l[2])
      assert.equal("Drei AG", srv:control("GET", "/_mock/enrichment/suppliers/S-3").name)
      code, out = run({ "enrichment", "suppliers", "upsert", "-" }, { stdin = '{"externalId":"S-4","name":"Vier"}\n' })
      assert.equal(0, code)
      assert.equal("accepted: 1, refused: 0\n", out)
    end)

    it("upserts CSV (quoted fields, dotted columns nest) and deletes", function()
      local path = dir .. "/po.csv"
      helpers.write(path, "externalId,name,countryCode,vatIds.1.id,vatIds.1.countryCode\r\n"
        .. 'S-9,"Neun, ""Quote"" KG",DE,DE123456789,DE\r\nS-10,Zehn,,,\r\n')
      local code, out, err = run({ "enrichment", "suppliers", "upsert", path })
      assert.equal(0, code, err)
      assert.equal("accepted: 2, refused: 0\n", out)
      assert.same({ externalId = "S-9", name = 'Neun, "Quote" KG', countryCode = "DE",
        vatIds = { { id = "DE123456789", countryCode = "DE" } } },
        srv:control("GET", "/_mock/enrichment/suppliers/S-9"))
      assert.same({ externalId = "S-10", name = "Zehn" }, srv:control("GET", "/_mock/enrichment/suppliers/S-10"))
      code, out, err = run({ "enrichment", "suppliers", "delete", "S-9" })
      assert.equal(0, code, err)
      assert.equal("deleted S-9\n", out)
      code, out, err = run({ "enrichment", "suppliers", "delete", "S-9" })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("^hypatos: http 404", err)
      code = run({ "enrichment", "purchase-orders", "upsert", dir .. "/none.jsonl" })
      assert.equal(1, code)
    end)

    it("refuses a CSV without an externalId column before sending anything (the example's sample)", function()
      local before = srv:stats().requests
      local code, out, err = run({ "enrichment", "suppliers", "upsert", "examples/data/suppliers.csv" })
      assert.equal(1, code)
      assert.equal("", out)
      assert.equal("hypatos: examples/data/suppliers.csv: no externalId column (the columns: supplier_id,name,street,"
        .. "postcode,city,country,…): records are upserted by their externalId, and the columns are the API's field"
        .. " names (externalId,name,…)\n", err)
      assert.equal(before, srv:stats().requests) -- nothing was sent (control calls are not counted)
    end)

    it("exits 1 when every record is refused", function()
      local path = dir .. "/bad.jsonl"
      helpers.write(path, '{"name":"no id"}\n')
      local code, out = run({ "enrichment", "suppliers", "upsert", path })
      assert.equal(1, code)
      assert.equal("accepted: 0, refused: 1\n", out)
    end)
  end)

  describe("request", function()
    it("GET with repeated query keys, POST with --json from stdin, -o to a file", function()
      local code, out, err = run({ "request", "GET", "/documents", "-q", "state=done", "-q", "state=junk", "-q",
        "limit=3" })
      assert.equal(0, code, err)
      local page = hypatos.json.decode(out)
      assert.equal(3, #page.data)
      for _, d in ipairs(page.data) do assert.is_truthy(d.state == "done" or d.state == "junk") end
      code, out, err = run({ "request", "post", "/enrichment/suppliers", "--json", "-" },
        { stdin = '{"externalId":"R-1","name":"Per Request"}' })
      assert.equal(0, code, err)
      assert.is_string(hypatos.json.decode(out).id)
      assert.equal("Per Request", srv:control("GET", "/_mock/enrichment/suppliers/R-1").name)
      local f = assert(c.files:upload({ path = PDF }))
      code, out, err = run({ "request", "GET", "/files/" .. f.id, "-o", dir .. "/req.pdf" })
      assert.equal(0, code, err)
      assert.equal("", out)
      assert.equal(helpers.read(PDF), helpers.read(dir .. "/req.pdf"))
      code, out = run({ "request", "GET", "/files/" .. f.id })
      assert.equal(0, code)
      assert.equal(helpers.read(PDF), out)
      code, out, err = run({ "request", "GET", "/nowhere" })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("^hypatos: http 404", err)
      code, out, err = run({ "request", "POST", "/enrichment/suppliers", "--json", "-" }, { stdin = "{nope" })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("is not JSON", err)
    end)
  end)

  describe("control characters and formulas from the server (issue 16.3, 16.4)", function()
    local OSC, CSI = "\27]0;pwned\7", "\194\155" -- an OSC title sequence; U+009B, the one-byte CSI
    local HOSTILE = { id = "u-1", name = OSC .. " J\195\188rgen " .. CSI .. "2J", ["\27[31mrole"] = "x\127y",
      bad = "caf\233" }

    --- Fails when text holds a C0 control (but those in `allowed`), DEL, a C1 control or a byte
    -- that is not UTF-8.
    local function clean(text, allowed, what)
      local pattern = "[%z\1-\31\127]"
      for i = 1, #text do
        local ch = text:sub(i, i)
        if ch:find(pattern) and not (allowed or "\n"):find(ch, 1, true) then
          error(("%s: control byte %d at %d in %q"):format(what or "output", ch:byte(), i, text), 2)
        end
      end
      assert.is_nil(text:find("\194[\128-\159]"), (what or "output") .. ": a C1 control in " .. ("%q"):format(text))
      assert.is_truthy(utf8.len(text), (what or "output") .. ": not UTF-8: " .. ("%q"):format(text))
    end

    --- Queues a listing of users with hostile text (the answer to the next GET /v2/users).
    local function hostile_listing()
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users",
        body = { data = { HOSTILE }, totalCount = 1 } })
    end

    it("table: headers and cells escaped, UTF-8 kept", function()
      hostile_listing()
      local code, out, err = run({ "users", "list", "--format", "table" })
      assert.equal(0, code, err)
      clean(out)
      local l = lines(out)
      assert.equal(2, #l, out)
      assert.matches("^id +\\x1B%[31mrole +bad +name$", l[1])
      assert.matches("^u%-1 +x\\x7Fy +caf\\xE9 +\\x1B%]0;pwned\\x07 J\195\188rgen \\u009B2J$", l[2])
    end)

    it("table: the keys and values of a single object escaped", function()
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users/u-1",
        body = { id = "u-1", [OSC .. "key"] = { [CSI .. "inner"] = "v" .. CSI }, name = HOSTILE.name } })
      local code, out, err = run({ "users", "get", "u-1", "--format", "table" })
      assert.equal(0, code, err)
      clean(out)
      assert.matches("\n\\x1B%]0;pwned\\x07key%.\\u009Binner +v\\u009B\n", out)
      assert.matches("\nname +\\x1B%]0;pwned\\x07 J\195\188rgen \\u009B2J\n", out)
    end)

    it("json and jsonl: C1 controls written as \\u0080-\\u009f (the same value)", function()
      for _, format in ipairs({ "json", "jsonl" }) do
        srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users",
          body = { data = { { id = "u-1", name = HOSTILE.name } }, totalCount = 1 } })
        local code, out, err = run({ "users", "list", "--format", format })
        assert.equal(0, code, err)
        clean(out, "\n", format)
        assert.matches("\\u001b]0;pwned\\u0007 J\195\188rgen \\u009b2J", out, 1, true)
        local v = hypatos.json.decode(out)
        assert.equal(HOSTILE.name, (v[1] or v).name)
      end
    end)

    it("csv: formulas neutralised, controls escaped, numbers left alone; --csv-raw writes cells as received", function()
      local row = { id = "u-1", formula = '=HYPERLINK("http://evil.example/?x","click")', at = "@SUM(A1:A9)",
        plus = "+49 30 1234", minus = "-1+cmd|' /C calc'!A0", tab = "\tx", cr = "\rx", amount = -12.5,
        text_amount = "-12.50", big = -1e300, address = "Hauptstr. 1\r\nBerlin", ["=col"] = OSC, c1 = CSI .. "31m" }
      local function queue()
        srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users",
          body = { data = { row }, totalCount = 1 } })
      end
      queue()
      local code, out, err = run({ "users", "list", "--format", "csv" })
      assert.equal(0, code, err)
      clean(out, "\t\r\n", "csv") -- TAB, CR and LF: inside cells, as RFC 4180 allows
      assert.equal("id,'=col,address,amount,at,big,c1,cr,formula,minus,plus,tab,text_amount\r\n"
        .. 'u-1,\\x1B]0;pwned\\x07,"Hauptstr. 1\r\nBerlin",-12.5,\'@SUM(A1:A9),-1e+300,\\u009B31m,"\'\rx",'
        .. '"\'=HYPERLINK(""http://evil.example/?x"",""click"")",\'-1+cmd|\' /C calc\'!A0,\'+49 30 1234,\'\tx,'
        .. "-12.50\r\n", out)
      queue()
      code, out, err = run({ "users", "list", "--format", "csv", "--csv-raw" })
      assert.equal(0, code, err)
      assert.equal("id,=col,address,amount,at,big,c1,cr,formula,minus,plus,tab,text_amount\r\n"
        .. "u-1," .. OSC .. ',"Hauptstr. 1\r\nBerlin",-12.5,@SUM(A1:A9),-1e+300,' .. CSI .. '31m,"\rx",'
        .. '"=HYPERLINK(""http://evil.example/?x"",""click"")",-1+cmd|\' /C calc\'!A0,+49 30 1234,\tx,'
        .. "-12.50\r\n", out)
      -- a single object too
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users/u-1", body = row })
      code, out, err = run({ "users", "get", "u-1", "--format", "csv" })
      assert.equal(0, code, err)
      assert.matches("\r\nu%-1,\\x1B%]0;pwned\\x07,", out)
      assert.matches(",\"'=HYPERLINK(\"\"http", out, 1, true)
      -- --csv-raw belongs to --format csv
      code, out, err = run({ "users", "list", "--csv-raw", "--format", "jsonl" })
      assert.equal(64, code)
      assert.equal("", out)
      assert.matches("^Usage: hypatos %[%-h%]", err) -- the usage, then the error line
      assert.matches("\nhypatos: %-%-csv%-raw goes with %-%-format csv %(see hypatos %-%-help%)\n$", err)
    end)

    it("error lines: a problem's title and detail escaped", function()
      srv:fault({ kind = "status", status = 400, method = "GET", path = "/v2/users",
        body = { title = OSC .. "Bad", detail = CSI .. "2J\27[31mred\tand\rmore", status = 400 } })
      local code, out, err = run({ "users", "list" })
      assert.equal(1, code)
      assert.equal("", out)
      clean(err, "\n", "stderr")
      assert.matches("^hypatos: http 400: \\x1B%]0;pwned\\x07Bad: \\u009B2J\\x1B%[31mred\\x09and more", err)
      assert.equal(1, #lines(err))
    end)

    it("--debug lines: a hostile rate-limit header escaped", function()
      -- nginx percent-encodes C0 in a header it sends: the C1 CSI through the local server ...
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/companies",
        body = { data = {}, totalCount = 0 }, headers = { ["x-ratelimit-remaining"] = "7" .. CSI .. "2J" } })
      local code, _, err = run({ "companies", "list", "--debug" })
      assert.equal(0, code, err)
      clean(err, "\n", "stderr")
      assert.matches("/v2/companies[^\n]*rate%-limit remaining 7\\u009B2J%)\n", err)
      -- ... and ESC/BEL through the raw-socket hostile server
      local hostile = require "spec.fixtures.hostile"
      local hs = assert(hostile.start())
      local ok, e = pcall(function()
        local out
        code, out, err = run({ "users", "list", "--debug", "--format", "table" },
          { env = { HYPATOS_BASE_URL = hs:url("controls") } })
        assert.equal(0, code, err)
        clean(err, "\n", "stderr")
        clean(out, "\n", "stdout")
        assert.matches("/controls/users%?limit=50&offset=0 %-> 200 %([^\n]*rate%-limit remaining "
          .. "7\\x1B%]0;pwned\\x07\\u009B2J%)\n", err)
        assert.matches("\nu%-1 +\\x1B%]0;pwned\\x07 J\195\188rgen \\u009B2J\n", out)
      end)
      hs:stop()
      assert(ok, e)
    end)
  end)

  describe("secrets and --debug", function()
    it("--debug: one line per attempt with method, URL, status, attempt, elapsed, remaining; no secret", function()
      srv:fault({ kind = "status", status = 503, method = "GET", path = "/v2/users" })
      local code, out, err = run({ "token", "--show-token", "--format", "json", "--debug" })
      assert.equal(0, code, err)
      local tok = hypatos.json.decode(out).access_token
      code, out, err = run({ "users", "list", "--debug" })
      assert.equal(count("users"), #jsonl(out))
      assert.equal(0, code, err)
      local l = lines(err)
      assert.matches("^hypatos: debug POST http://127%.0%.0%.1:%d+/v2/auth/token %[token%] %-> 200 %(attempt 1, "
        .. "[%d.]+ ms, rate%-limit remaining %d+%)$", l[1])
      assert.matches("^hypatos: debug GET http://127%.0%.0%.1:%d+/v2/users%?limit=50&offset=0 %-> 503 %(attempt 1, ",
        l[2])
      assert.matches("^hypatos: debug GET http://127%.0%.0%.1:%d+/v2/users%?limit=50&offset=0 %-> 200 %(attempt 2, ",
        l[3])
      assert.is_true(#l >= 4)
      for _, line in ipairs(l) do assert.matches("^hypatos: debug ", line) end
      for _, secret in ipairs({ srv.client_secret, tok, "Bearer", "Basic ", "uthorization" }) do
        assert.is_nil(err:find(secret, 1, true), secret)
      end
      -- HYPATOS_DEBUG=1 (the library's own switch) does the same
      code, out, err = run({ "companies", "list" }, { env = { HYPATOS_DEBUG = "1" } })
      assert.equal(count("companies"), #jsonl(out))
      assert.equal(0, code)
      assert.matches("^hypatos: debug POST [^\n]+\nhypatos: debug GET [^\n]+/v2/companies", err)
    end)

    it("refused credentials: one line, exit 1, without the secret", function()
      local code, out, err = run({ "users", "list" }, { env = { HYPATOS_CLIENT_SECRET = "not-the-secret" } })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: auth 401[^\n]*\n$", err)
      assert.is_nil(err:find("not-the-secret", 1, true))
      code, out, err = run({ "users", "list" }, { env = { HYPATOS_CLIENT_SECRET = false, HYPATOS_CLIENT_ID = false } })
      assert.equal("", out)
      assert.equal(1, code)
      assert.matches("^hypatos: [^\n]*HYPATOS_CLIENT_ID[^\n]*\n$", err)
    end)
  end)

  describe("serve", function()
    --- Starts `hypatos serve args…` in the background; returns its pid and output file names.
    local function serve(args)
      local out, err = dir .. "/serve.out", dir .. "/serve.err"
      os.remove(out)
      os.remove(err)
      local words = {}
      for i, a in ipairs(args) do words[i] = sh(a) end
      local p = io.popen(("cd %s && exec env -i PATH=%s %s serve %s >%s 2>%s & echo $!"):format(sh(root),
        sh(os.getenv("PATH")), sh(root .. "/bin/hypatos"), table.concat(words, " "), sh(out), sh(err)))
      local pid = tonumber(p:read("l"))
      p:close()
      local deadline = helpers.now() + 10
      while helpers.now() < deadline and not (helpers.read(err) or ""):find("local server on", 1, true)
        and helpers.alive(pid) do
        os.execute("sleep 0.05")
      end
      return pid, out, err
    end

    --- Waits until pid is gone (true) or 10 s passed (false).
    local function gone(pid)
      local deadline = helpers.now() + 10
      while helpers.alive(pid) do
        if helpers.now() > deadline then return false end
        os.execute("sleep 0.05")
      end
      return true
    end

    local function free_port()
      local socket = require "socket"
      local s = assert(socket.bind("127.0.0.1", 0))
      local _, port = s:getsockname()
      s:close()
      return tonumber(port)
    end

    for _, sig in ipairs({ "TERM", "INT" }) do
      it("prints the three variables, serves on --port with --quota, and SIG" .. sig .. " stops its nginx", function()
        local port = free_port()
        local pid, out_file, err_file = serve({ "--port", tostring(port), "--quota", "3/60", "--latency", "0.01" })
        local ok, e = pcall(function()
          local out = helpers.read(out_file)
          assert.equal(("export HYPATOS_BASE_URL='http://127.0.0.1:%d/v2'\nexport HYPATOS_CLIENT_ID='test-client'\n"
            .. "export HYPATOS_CLIENT_SECRET='test-secret'\n"):format(port), out)
          local nginx = tonumber(helpers.read(err_file):match("nginx pid (%d+)"))
          assert.is_truthy(nginx and helpers.alive(nginx))
          local client = hypatos.new({ base_url = ("http://127.0.0.1:%d/v2"):format(port), client_id = "test-client",
            client_secret = "test-secret", max_wait = 0, max_retries = 0, throttle = false })
          assert(client.companies:list())
          assert(client.companies:list())
          local v, err = client.companies:list() -- the token request and three calls: over the quota
          assert.is_nil(v)
          assert.equal("rate_limited", err.kind)
          client:close()
          os.execute("kill -" .. sig .. " " .. pid)
          assert.is_true(gone(pid), "hypatos serve still runs")
          assert.is_true(gone(nginx), "its nginx still runs")
          assert.matches("local server stopped %(" .. sig .. "%)", helpers.read(err_file))
        end)
        if helpers.alive(pid) then os.execute("kill -TERM " .. pid) gone(pid) end
        assert(ok, e)
      end)
    end

    it("says what is missing when nginx is not there; a taken port fails with exit 1", function()
      local testing = require "hypatos.testing"
      local s, why = testing.start({ nginx = "/nonexistent/nginx" })
      assert.is_nil(s)
      assert.matches("needs nginx with its Lua module; missing: /nonexistent/nginx", why, 1, true)
      assert.matches("apt-get install nginx libnginx-mod-http-lua", why, 1, true)
      local code, out, err = run({ "serve", "--port", tostring(srv.port) })
      assert.equal(1, code)
      assert.equal("", out)
      assert.matches("^hypatos: nginx failed to start: [^\n]*Address already in use", err)
    end)
  end)

  describe("the debug client option", function()
    it("sends one line per attempt to a function, keeps the caller's on_response and table", function()
      local got, seen = {}, 0
      local opts = { base_url = srv.url, client_id = srv.client_id, client_secret = srv.client_secret,
        debug = function(line) got[#got + 1] = line end, on_response = function() seen = seen + 1 end }
      local client = hypatos.new(opts)
      srv:fault({ kind = "status", status = 502, path = "/v2/companies" })
      assert(client.companies:list())
      assert.equal(3, #got)
      assert.equal(3, seen)
      assert.matches("^hypatos: debug GET http://127%.0%.0%.1:%d+/v2/companies %-> 502 %(attempt 1, ", got[2])
      assert.matches("%-> 200 %(attempt 2, [%d.]+ ms, rate%-limit remaining %d+%)$", got[3])
      assert.is_function(opts.debug) -- the caller's table is left alone
      assert.is_nil(next(hypatos.new({ base_url = srv.url, client_id = "a", client_secret = "b", debug = false })
        :options().on_response or {}))
      assert.has_error(function() hypatos.new({ client_id = "a", client_secret = "b", debug = "yes" }) end,
        'hypatos.new: option "debug" must be a boolean or a function, got string')
      client:close()
    end)
  end)

  describe("issue 18", function()
    local SMALL = "%PDF-1.4\n%%EOF\n" -- 15 bytes: a rate below 1 KiB/s once the server has latency

    --- A small PDF file in the spec's directory; returns its path.
    local function small(name)
      local path = dir .. "/" .. (name or "small.pdf")
      helpers.write(path, SMALL)
      return path
    end

    describe("progress in a terminal, the server with latency", function()
      before_each(function() srv:configure({ latency = 0.1 }) end)

      it("files upload: one file, then three through client:map", function()
        local code, out = tty({ "files", "upload", small() })
        no_lua_error(out)
        assert.equal(0, code, out)
        assert.matches("uploading 1 file", out, 1, true)
        assert.matches(" B/s", out, 1, true)
        assert.matches("15 B / 15 B  100%", out, 1, true)
        assert.is_nil(out:find("29 B", 1, true), out) -- the token request's body is not the file's
        code, out = tty({ "files", "upload", small("a.pdf"), small("b.pdf"), small("c.pdf"), "--concurrency", "2" })
        no_lua_error(out)
        assert.equal(0, code, out)
        assert.matches("uploading 3 files", out, 1, true)
        assert.equal(3, srv:stats().by_route["POST /v2/files"] - 1)
      end)

      it("files download", function()
        local f = assert(c.files:upload({ data = SMALL, filename = "small.pdf" }))
        local code, out = tty({ "files", "download", f.id, "-o", dir .. "/small-out.pdf" })
        no_lua_error(out)
        assert.equal(0, code, out)
        assert.matches("downloading " .. f.id, out, 1, true)
        assert.equal(SMALL, helpers.read(dir .. "/small-out.pdf"))
      end)

      it("documents wait, and files upload --wait", function()
        local project = c.projects:list({ limit = 1 }).data[1].id
        srv:configure({ processing_time = 2 }) -- not final at the first look, however slow the start
        local f = assert(c.files:upload({ data = SMALL, filename = "small.pdf" }))
        local job = assert(c.documents:process_file({ fileId = f.id, projectId = project }))
        local code, out = tty({ "documents", "wait", job.documentId, "--timeout", "20" })
        no_lua_error(out)
        assert.equal(0, code, out)
        assert.matches("waiting for document " .. job.documentId, out, 1, true)
        srv:configure({ processing_time = 0.3 })
        code, out = tty({ "files", "upload", small(), "--project", project, "--wait", "--timeout", "20" })
        no_lua_error(out)
        assert.equal(0, code, out)
      end)

      it("a rate below 1 KiB/s is shown in whole bytes", function()
        local progress = require "hypatos.cli.progress"
        assert.equal("814 B", progress.bytes(814.17))
        assert.equal("0 B", progress.bytes(0.4))
        assert.equal("1023 B", progress.bytes(1023.7))
        assert.equal("1.5 KiB", progress.bytes(1536))
      end)
    end)

    it("table: false is shown as false, a missing field as -", function()
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users",
        body = { data = { { id = "u-1", active = false, isLive = false }, { id = "u-2", active = true } },
          totalCount = 2 } })
      local code, out, err = run({ "users", "list", "--format", "table" })
      assert.equal(0, code, err)
      assert.same({ "id   active  isLive", "u-1  false   false", "u-2  true    -" }, lines(out))
    end)

    it("table: columns aligned by display width (accents, combining marks, CJK)", function()
      srv:fault({ kind = "status", status = 200, method = "GET", path = "/v2/users",
        body = { data = {
          { id = "u-1", email = "a", name = "J\195\188rgen", role = "x" },
          { id = "u-2", email = "b", name = "\229\177\177\231\148\176\229\164\170\233\131\142", role = "x" },
          { id = "u-3", email = "c", name = "Zo\195\171", role = "x" },
          { id = "u-4", email = "d", name = "Zoe\204\136", role = "x" },
          { id = "u-5", email = "e", name = ("\229\177\177"):rep(30), role = "x" },
        }, totalCount = 5 } })
      local code, out, err = run({ "users", "list", "--format", "table" })
      assert.equal(0, code, err)
      --- A line: id, email, then name padded to 39 columns (the widest cell) and the role.
      local function row(id, email, name, columns, role)
        return id .. "  " .. email .. (" "):rep(5 - #email) .. "  " .. name .. (" "):rep(39 - columns) .. "  " .. role
      end
      assert.same({
        row("id ", "email", "name", 4, "role"),
        row("u-1", "a", "J\195\188rgen", 6, "x"),
        row("u-2", "b", "\229\177\177\231\148\176\229\164\170\233\131\142", 8, "x"),
        row("u-3", "c", "Zo\195\171", 3, "x"),
        row("u-4", "d", "Zoe\204\136", 3, "x"),
        row("u-5", "e", ("\229\177\177"):rep(19) .. "…", 39, "x"), -- cut to 40 columns: 19 wide characters and …
      }, lines(out))
    end)

    it("table: a long path is cut from the left, keeping the file name", function()
      local deep = dir .. "/" .. ("a-rather-long-directory-name/"):rep(3)
      os.execute("mkdir -p " .. sh(deep))
      helpers.write(deep .. "/invoice-number-0412.pdf", SMALL)
      local code, out, err = run({ "files", "upload", deep .. "/invoice-number-0412.pdf", "--format", "table" })
      assert.equal(0, code, err)
      local row = lines(out)[2]
      assert.matches("^…[^ ]*/invoice%-number%-0412%.pdf  ", row)
      assert.equal(40, utf8.len(row:match("^(%S+)")))
    end)

    it("list --limit N: the first N items, without fetching the pages after them", function()
      local all = c.documents:list({ limit = 50 }).data
      assert.is_true(#all >= 13)
      local before = srv:stats().by_route["GET /v2/documents"] or 0
      local code, out, err = run({ "documents", "list", "--limit", "12", "--format", "jsonl" })
      assert.equal(0, code, err)
      local ids = {}
      for line in out:gmatch("[^\n]+") do ids[#ids + 1] = hypatos.json.decode(line).id end
      assert.equal(12, #ids)
      for i = 1, 12 do assert.equal(all[i].id, ids[i]) end
      assert.equal(before + 1, srv:stats().by_route["GET /v2/documents"]) -- one page of 12
      code, out = run({ "companies", "list", "--limit", "1", "--format", "jsonl" }) -- not paginated: cut here
      assert.equal(0, code)
      assert.equal(1, select(2, out:gsub("\n", "")))
      code, out, err = run({ "users", "list", "--limit", "0" })
      assert.equal(64, code, err)
      assert.equal("", out)
      assert.matches("--limit must be an integer >= 1, got '0'", err, 1, true)
    end)

    it("documents wait --timeout 0 polls once", function()
      local project = c.projects:list({ limit = 1 }).data[1].id
      srv:configure({ processing_time = 60 })
      local f = assert(c.files:upload({ data = SMALL, filename = "small.pdf" }))
      local job = assert(c.documents:process_file({ fileId = f.id, projectId = project }))
      local code, out, err = run({ "documents", "wait", job.documentId, "--timeout", "0" })
      assert.equal(1, code, err)
      assert.equal("", out)
      assert.matches("^hypatos: timeout: document %x+ is still \"%a+\" after 0 s", err)
      local done = c.documents:list({ limit = 1, state = { "done" } }).data[1].id
      code, out, err = run({ "documents", "wait", done, "--timeout", "0", "--format", "json" })
      assert.equal(0, code, err)
      assert.equal(done, hypatos.json.decode(out).id)
      code, out, err = run({ "documents", "wait", done, "--timeout=-1" })
      assert.equal(64, code, err)
      assert.equal("", out)
      assert.matches("--timeout must be a number >= 0, got '-1'", err, 1, true)
    end)

    it("files upload --content-type; an unknown extension names that option", function()
      local path = dir .. "/scan.dat"
      helpers.write(path, SMALL)
      local code, out, err = run({ "files", "upload", path })
      assert.equal(1, code)
      assert.equal(dir .. "/scan.dat", jsonl(out)[1].path)
      assert.matches('^hypatos: [^\n]*scan%.dat: invalid: cannot tell the content type of "scan%.dat" from its '
        .. "name; give %-%-content%-type", err)
      assert.is_nil(err:find("pass content_type", 1, true))
      assert.is_nil(srv:stats().by_route["POST /v2/files"])
      code, out, err = run({ "files", "upload", path, "--content-type", "application/pdf" })
      assert.equal(0, code, err)
      assert.is_string(jsonl(out)[1].fileId)
      local log = srv:stats().log
      assert.equal("application/pdf", log[#log].content_type)
      assert.equal("scan.dat", log[#log].x_hy_filename)
    end)

    it("a missing file is named as given, without the library's internal option", function()
      local code, out, err = run({ "files", "upload", "nope.pdf" })
      assert.equal(1, code)
      assert.equal("nope.pdf", jsonl(out)[1].path)
      assert.matches('^hypatos: nope%.pdf: io: path "nope%.pdf" cannot be read: No such file or directory', err)
      assert.is_nil(err:find("body_file", 1, true))
    end)

    it("a usage error under a command prints that command's usage", function()
      local cases = {
        { { "files", "upload", "a.pdf", "--concurrency", "0" }, "Usage: hypatos files upload " },
        { { "users", "list", "--nope" }, "Usage: hypatos users list " },
        { { "documents", "wait" }, "Usage: hypatos documents wait " },
        { { "enrichment", "suppliers" }, "Usage: hypatos enrichment " },
        { { "--nope" }, "Usage: hypatos [-h]" },
      }
      for _, case in ipairs(cases) do
        local code, out, err = run(case[1])
        assert.equal(64, code, err)
        assert.equal("", out)
        assert.equal(1, select(2, err:gsub("Usage:", "")), err)
        assert.equal(case[2], err:sub(1, #case[2]), err)
      end
    end)

    it("a token request that fails for good reports its attempts and the time spent", function()
      -- (the network failure of the issue is spec/10's, on a fake clock: here 503s that ask for no
      -- wait keep the spec fast; the engine counts and times every token failure the same way)
      srv:fault({ kind = "status", status = 503, method = "POST", path = "/v2/auth/token", count = 5,
        headers = { ["Retry-After"] = "0" }, body = { title = "Unavailable", status = 503 } })
      local t0 = helpers.now()
      local code, out, err = run({ "users", "list" })
      local took = helpers.now() - t0
      assert.equal(1, code)
      assert.equal("", out)
      local n, spent, unit = err:match("^hypatos: auth 503: token request failed: Unavailable %(POST "
        .. "http://127%.0%.0%.1:%d+/v2/auth/token, (%d+) attempts in ([%d.]+) (m?s)%)\n$")
      assert.is_truthy(n, err)
      assert.equal(5, tonumber(n)) -- the first and max_retries (4); it said nothing of them before
      spent = tonumber(spent) / (unit == "ms" and 1000 or 1)
      assert.is_true(spent > 0 and spent <= took, err)
      assert.equal(5, srv:stats().token_requests)
    end)
  end)

  describe("usage errors, Ctrl-C under a progress line, variables named", function()
    it("a usage error a command finds prints that command's usage, then one error line", function()
      local cases = {
        { { "enrichment", "bogus", "upsert", "x.csv" }, "hypatos enrichment",
          "unknown enrichment type 'bogus' (one of: invoices, " },
        { { "enrichment", "bogus", "delete", "X" }, "hypatos enrichment", "unknown enrichment type 'bogus'" },
        { { "enrichment", "products", "delete", "X" }, "hypatos enrichment",
          "enrichment.products has no delete in the API (only " },
        { { "request", "GET", "/users", "-q", "badpair" }, "hypatos request", "-q wants key=value, got 'badpair'" },
        { { "request", "GET", "/users", "--query=" }, "hypatos request", "-q wants key=value, got ''" },
        { { "request", "1GET", "/users" }, "hypatos request", "METHOD must be letters, e.g. GET, got '1GET'" },
        { { "request", "POST", "/users", "--json", "a.json", "--data", "b.pdf" }, "hypatos request",
          "give --json or --data, not both" },
        { { "--csv-raw", "users", "list" }, "hypatos", "--csv-raw goes with --format csv" },
      }
      local before = srv:stats().requests
      for _, case in ipairs(cases) do
        local args, name, why = case[1], case[2], case[3]
        local code, out, err = run(args)
        local what = table.concat(args, " ") .. ": " .. err
        assert.equal(64, code, what)
        assert.equal("", out, what)
        assert.equal("Usage: " .. name .. " [-h]", err:sub(1, #name + 12), what)
        assert.equal(1, select(2, err:gsub("Usage:", "")), what)
        local l = lines(err)
        local last = l[#l]
        assert.equal("hypatos: ", last:sub(1, 9), what)
        for i = 1, #l - 1 do assert.is_nil(l[i]:find("^hypatos: "), what) end -- one error line, the last
        assert.truthy(last:find(why, 1, true), what)
        assert.equal(" (see " .. name .. " --help)", last:sub(-(#name + 14)), what)
      end
      assert.equal(before, srv:stats().requests) -- nothing sent
    end)

    it("Ctrl-C during enrichment delete exits 130, not as a usage error", function()
      srv:fault{ method = "DELETE", path_pattern = "^/v2/enrichment/", kind = "delay", delay = 10, count = -1 }
      local pid, waiter, base = start({ "enrichment", "suppliers", "delete", "SUP-1" })
      local t0 = helpers.now()
      repeat
        local sent = false
        for _, e in ipairs(srv:stats().log) do sent = sent or e.method == "DELETE" end
        if not sent then os.execute("sleep 0.05") end
      until sent or helpers.now() - t0 > 5
      os.execute("sleep 0.2")
      os.execute("kill -INT " .. pid)
      local code, out, err = finish(pid, waiter, base)
      srv:control("DELETE", "/_mock/faults")
      assert.equal(130, code, err)
      assert.equal("", out)
      assert.equal("hypatos: interrupted\n", err)
    end)

    --- Runs a command in a pseudo-terminal, sends it SIGINT once `drawn` is in its output and
    -- `ready()` (when given) is true; returns its exit status and output.
    local function interrupt_in_tty(args, drawn, ready)
      local pid, waiter, base = start(args, { tty = true })
      local t0 = helpers.now()
      while not (((helpers.read(base .. ".out") or ""):find(drawn, 1, true)) and (not ready or ready()))
        and helpers.now() - t0 < 10 do
        os.execute("sleep 0.05")
      end
      os.execute("sleep 0.3")
      os.execute("kill -INT " .. pid)
      local code, out, err = finish(pid, waiter, base)
      srv:control("DELETE", "/_mock/faults")
      return code, out, err
    end

    --- Checks a terminal's output: the progress line drawn, then cleared before the one error
    -- line `hypatos: interrupted`, which starts a line of its own.
    local function cleared_then_interrupted(out, drawn)
      no_lua_error(out)
      local at = assert(out:find("hypatos: interrupted", 1, true), out)
      assert.truthy(out:find(drawn, 1, true) < at, out)
      assert.truthy(out:find("\r\27%[Khypatos: interrupted\r?\n$") or out:find("\nhypatos: interrupted\r?\n$"), out)
      assert.is_nil(out:find("B/shypatos", 1, true), out)
      assert.equal(1, select(2, out:gsub("hypatos: ", "")), out)
    end

    it("Ctrl-C during files download in a terminal: the progress line cleared, exit 130", function()
      srv:configure({ latency = 0.1 })
      local f = assert(c.files:upload({ path = PDF }))
      srv:fault{ method = "GET", path_pattern = "^/v2/files/", kind = "delay", delay = 10, count = -1 }
      local work = dir .. "/int-tty"
      os.execute("rm -rf " .. sh(work) .. " && mkdir -p " .. sh(work))
      local code, out, err = interrupt_in_tty({ "files", "download", f.id, "-o", work .. "/z.pdf" },
        "downloading " .. f.id)
      assert.equal(130, code, out .. err)
      cleared_then_interrupted(out, "downloading " .. f.id)
      assert.equal("", io.popen("ls -A " .. sh(work)):read("a")) -- no partial download
    end)

    it("Ctrl-C during files upload --wait in a terminal: the progress line cleared, exit 130", function()
      srv:configure({ latency = 0.1, processing_time = 60 })
      local path = dir .. "/wait.pdf"
      helpers.write(path, "%PDF-1.4\n%%EOF\n")
      local project = c.projects:list({ limit = 1 }).data[1].id
      local code, out, err = interrupt_in_tty({ "files", "upload", path, "--project", project, "--wait",
        "--timeout", "30" }, "uploading 1 file", function()
          return (srv:stats().by_route["POST /v2/documents/process-file"] or 0) > 0 -- waiting now
        end)
      assert.equal(130, code, out .. err)
      cleared_then_interrupted(out, "uploading 1 file")
    end)

    it("a bad HYPATOS_BASE_URL or HYPATOS_REDIS_URL is named as the variable, never with a secret", function()
      local cases = {
        { { HYPATOS_BASE_URL = "api.example.com/v2" },
          '^hypatos: HYPATOS_BASE_URL: must start with https://, got "api%.example%.com/v2"\n$' },
        { { HYPATOS_BASE_URL = "https://user:s3cret@api.example.com/v2" },
          "^hypatos: HYPATOS_BASE_URL: must not contain user info %(credentials go in HYPATOS_CLIENT_ID/"
            .. "HYPATOS_CLIENT_SECRET%)\n$" },
        { { HYPATOS_BASE_URL = "ftp://user:s3cret@api.example.com/v2" }, "^hypatos: HYPATOS_BASE_URL: must " },
        { { HYPATOS_REDIS_URL = "http://:s3cret@127.0.0.1/0" },
          "^hypatos: HYPATOS_REDIS_URL: must start with redis:// or rediss://, got \"http://…@127%.0%.0%.1/0\"\n$" },
        { { HYPATOS_REDIS_URL = "redis://:s3cret@127.0.0.1/x" },
          "^hypatos: HYPATOS_REDIS_URL: path must be a database number %(/0%)\n$" },
        { { HYPATOS_CLIENT_SECRET = "s3cret\nX" }, "^hypatos: HYPATOS_CLIENT_SECRET: must not contain CR or LF\n$" },
      }
      for _, case in ipairs(cases) do
        local code, out, err = run({ "token" }, { env = case[1] })
        local what = next(case[1]) .. ": " .. err
        assert.equal(1, code, what)
        assert.equal("", out, what)
        assert.matches(case[2], err, nil, false, what)
        assert.is_nil(err:find("s3cret", 1, true), what)
        assert.is_nil(err:find('option "', 1, true), what)
      end
      assert.equal(0, srv:stats().requests) -- no client was made: nothing sent
    end)
  end)

  describe("hypatos.testing", function()
    it("runs the README's busted example as printed", function()
      local readme = helpers.read("README.md")
      local example = readme:match("\n## Testing your code\n.-```lua\n(.-)\n```\n")
      assert.is_string(example)
      assert.matches('require "hypatos.testing"', example, 1, true)
      local work = dir .. "/readme"
      os.execute("rm -rf " .. sh(work) .. " && mkdir " .. sh(work))
      helpers.write(work .. "/my_job_spec.lua", example)
      local env = { LUA_PATH = root .. "/lua/?.lua;" .. root .. "/lua/?/init.lua;;",
        LUA_CPATH = root .. "/" .. helpers.build .. "/?.so;;" }
      local words = {}
      for k, v in pairs(helpers.lua_env()) do if not env[k] then env[k] = v end end
      for k, v in pairs(env) do words[#words + 1] = k .. "=" .. sh(v) end
      local p = io.popen(("cd %s && env %s lua5.4 /usr/bin/busted --ignore-lua -o TAP my_job_spec.lua 2>&1")
        :format(sh(work), table.concat(words, " ")))
      local out = p:read("a")
      local ok = p:close()
      assert.is_true(ok, out)
      assert.matches("ok 1 - my upload job rides out a 429", out, 1, true)
      assert.matches("ok 2 - my upload job reports a dropped upload without sending it twice", out, 1, true)
      assert.matches("\n1..2", out, 1, true)
    end)
  end)
end)
