-- spec/01-mock_files_spec.lua — the mock server's raw-body endpoints: file upload and
-- download (streamed, large files with flat server memory), e-mail content
-- and the echo endpoint, with their faults and stats.

local launcher = require "mock.launcher"
local testclient = require "mock.testclient"

local sh = testclient.sh

describe("mock files", function()
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

  -- Upload `data`; returns status, json, headers.
  local function upload(data, ctype, filename, token)
    local headers = { ["Content-Type"] = ctype }
    if filename then headers["X-Hy-Filename"] = filename end
    return tc:request("POST", "/files", { token = token or tok, body = data, headers = headers })
  end

  describe("upload and download", function()
    it("round-trips a 5 MB file byte for byte with its type and filename", function()
      local data = testclient.random_bytes(5 * 1024 * 1024 + 17)
      local status, json = upload(data, "application/pdf", "Rechnung M\228rz 2026 (Kopie).pdf")
      assert.equal(201, status)
      assert.matches("^%x%x%x%x%x%x%x%x%-%x%x%x%x%-4%x%x%x%-[89ab]%x%x%x%-%x%x%x%x%x%x%x%x%x%x%x%x$", json.id)
      local st, _, h, text = tc:request("GET", "/files/" .. json.id, { token = tok })
      assert.equal(200, st)
      assert.equal("application/pdf", h["content-type"])
      assert.equal(tostring(#data), h["content-length"])
      assert.equal("Rechnung M\228rz 2026 (Kopie).pdf", h["x-hy-filename"])
      assert.is_true(text == data)
    end)

    it("gives every upload a new id and keeps content types with parameters", function()
      local _, a = upload("<x/>", "application/xml; charset=utf-8")
      local _, b = upload("<x/>", "application/xml; charset=utf-8")
      assert.not_equal(a.id, b.id)
      local st, _, h, text = tc:request("GET", "/files/" .. a.id, { token = tok })
      assert.equal(200, st)
      assert.equal("application/xml; charset=utf-8", h["content-type"])
      assert.is_nil(h["x-hy-filename"]) -- none was given
      assert.equal("<x/>", text)
      for _, t in ipairs{ "image/jpeg", "image/png", "image/tiff", "IMAGE/PNG" } do
        assert.equal(201, (upload("x", t)), t)
      end
    end)

    it("rejects unsupported content types with 400", function()
      for _, t in ipairs{ "text/plain", "application/octet-stream", "multipart/form-data; boundary=x" } do
        local status, json = upload("x", t)
        assert.equal(400, status)
        assert.same({ title = "Content type not supported", detail = "The provided content type is not supported",
                      status = 400 }, json)
      end
      local status, json = tc:request("POST", "/files", { token = tok, body = "x" })
      assert.equal(400, status)
      assert.equal("Content type not supported", json.title)
    end)

    it("limits X-Hy-Filename to 256 characters", function()
      assert.equal(201, (upload("x", "image/png", ("n"):rep(256))))
      local status, json = upload("x", "image/png", ("n"):rep(257))
      assert.equal(400, status)
      assert.equal("Filename too long", json.title)
      assert.equal(400, json.status)
    end)

    it("rejects an empty body", function()
      local status, json = upload("", "application/pdf")
      assert.equal(400, status)
      assert.same({ title = "File is empty", detail = "The request body holds no file content", status = 400 }, json)
    end)

    it("answers 404 for an unknown file", function()
      local status, json, h = tc:request("GET", "/files/00000000-0000-4000-8000-000000000000", { token = tok })
      assert.equal(404, status)
      assert.same({ title = "File not found", detail = "File with given identifier does not exist", status = 404 }, json)
      assert.equal("application/json", h["content-type"])
    end)

    it("serves the seeded files", function()
      local f = seed.files.first
      local status, _, h, text = tc:request("GET", "/files/" .. f.id, { token = tok })
      assert.equal(200, status)
      assert.equal(f.contentType, h["content-type"])
      assert.equal(f.filename, h["x-hy-filename"])
      assert.equal(f.size, #text)
      assert.matches("^%%PDF%-1%.", text)
      _, _, h, text = tc:request("GET", "/files/" .. seed.files.png.id, { token = tok })
      assert.equal("image/png", h["content-type"])
      assert.equal("\137PNG\r\n\26\n", text:sub(1, 8))
      _, _, h, text = tc:request("GET", "/files/" .. seed.files.tiff.id, { token = tok })
      assert.equal("image/tiff", h["content-type"])
      assert.equal("II*\0", text:sub(1, 4))
    end)

    it("needs files.write to upload and files.read to download", function()
      local writer = tc:scoped_token("files.write")
      local status, json = upload("x", "image/png", nil, writer)
      assert.equal(201, status)
      assert.equal(403, (tc:request("GET", "/files/" .. json.id, { token = writer })))
      local reader = tc:scoped_token("files.read")
      assert.equal(403, (upload("x", "image/png", nil, reader)))
      assert.equal(200, (tc:request("GET", "/files/" .. json.id, { token = reader })))
      assert.equal(401, (upload("x", "image/png", nil, "nope")))
    end)

    it("accepts a chunked upload", function()
      local dir, rm = testclient.tmpdir()
      local data = testclient.random_bytes(300000)
      testclient.write_file(dir .. "/in", data)
      local out, rc = testclient.run(("curl -s -H %s -H 'Content-Type: image/png' -H 'Transfer-Encoding: chunked'"
        .. " --data-binary @%s %s"):format(sh("Authorization: Bearer " .. tok), sh(dir .. "/in"), sh(srv.url .. "/files")))
      rm()
      assert.equal(0, rc)
      local id = out:match('"id":"([^"]+)"')
      assert.is_string(id)
      local _, _, _, text = tc:request("GET", "/files/" .. id, { token = tok })
      assert.is_true(text == data)
    end)

    it("streams a 300 MB upload and download with flat server memory", function()
      local dir, rm = testclient.tmpdir()
      finally(rm)
      local file = dir .. "/big.bin"
      assert.is_true(os.execute(("head -c %d /dev/urandom > %s"):format(300 * 1024 * 1024, sh(file))))
      local auth = sh("Authorization: Bearer " .. tok)
      -- Warm up so that buffers of the first transfer are not counted.
      local out = testclient.run(("curl -s -H %s -H 'Content-Type: application/pdf' --data-binary 0123456789 %s")
        :format(auth, sh(srv.url .. "/files")))
      assert.matches('"id"', out)
      local rss0, peak0 = testclient.memory(srv.worker_pid)
      local rc
      out, rc = testclient.run(("curl -s -H %s -H 'Content-Type: application/pdf' -H 'X-Hy-Filename: big.bin'"
        .. " -X POST -T %s %s"):format(auth, sh(file), sh(srv.url .. "/files")))
      assert.equal(0, rc)
      local id = out:match('"id":"([^"]+)"')
      assert.is_string(id)
      local rss1 = testclient.memory(srv.worker_pid)
      rc = select(2, testclient.run(("curl -s -D %s -H %s %s | cmp -s - %s"):format(sh(dir .. "/headers"), auth,
        sh(srv.url .. "/files/" .. id), sh(file))))
      assert.equal(0, rc) -- byte-identical
      local headers = testclient.read_file(dir .. "/headers")
      assert.matches("Content%-Length: 314572800", headers)
      assert.matches("X%-Hy%-Filename: big%.bin", headers)
      local rss2, peak2 = testclient.memory(srv.worker_pid)
      -- A few MB at most, whatever the size of the file.
      assert.is_true(rss1 - rss0 < 8192, ("upload grew RSS by %d kB"):format(rss1 - rss0))
      assert.is_true(rss2 - rss0 < 8192, ("download grew RSS by %d kB"):format(rss2 - rss0))
      assert.is_true(peak2 - peak0 < 8192, ("peak RSS grew by %d kB"):format(peak2 - peak0))
      local st = srv:stats()
      local up, down = st.log[#st.log - 1], st.log[#st.log]
      assert.equal(314572800, up.bytes_in)
      assert.equal(314572800, down.bytes_out)
    end)
  end)

  describe("faults", function()
    it("close: reads the upload, then drops the connection", function()
      srv:fault{ kind = "close", method = "POST", path = "/v2/files" }
      local dir, rm = testclient.tmpdir()
      testclient.write_file(dir .. "/in", testclient.random_bytes(2 * 1024 * 1024))
      local _, rc = testclient.run(("curl -s -o /dev/null -H %s -H 'Content-Type: application/pdf' --data-binary @%s %s")
        :format(sh("Authorization: Bearer " .. tok), sh(dir .. "/in"), sh(srv.url .. "/files")))
      rm()
      assert.equal(52, rc) -- empty reply: the whole body was sent, no answer came
      local entry = srv:stats().log[2]
      assert.equal("close", entry.fault)
      assert.equal(444, entry.status)
      assert.equal(2 * 1024 * 1024, entry.content_length)
    end)

    it("close_mid_body: a download stops half-way", function()
      local _, json = upload(testclient.random_bytes(200000), "image/tiff")
      srv:fault{ kind = "close_mid_body", path = "/v2/files/" .. json.id }
      local out, rc = testclient.run(("curl -s -H %s %s | wc -c"):format(sh("Authorization: Bearer " .. tok),
        sh(srv.url .. "/files/" .. json.id)))
      assert.equal(0, rc)
      assert.equal(100000, tonumber(out))
      local _, rc2 = testclient.run(("curl -s -o /dev/null -H %s %s"):format(sh("Authorization: Bearer " .. tok),
        sh(srv.url .. "/files/" .. json.id)))
      assert.equal(0, rc2) -- the fault is used up
      srv:fault{ kind = "close_mid_body", path = "/v2/files/" .. json.id }
      local _, rc3 = testclient.run(("curl -s -o /dev/null -H %s %s"):format(sh("Authorization: Bearer " .. tok),
        sh(srv.url .. "/files/" .. json.id)))
      assert.equal(18, rc3) -- partial file
    end)

    it("status, rate_limit and delay apply to the file routes", function()
      srv:fault{ { kind = "status", status = 503, path = "/v2/files" }, { kind = "rate_limit", reset = 3,
                 path_pattern = "^/v2/files/" } }
      local status = upload("x", "image/png")
      assert.equal(503, status)
      local st, json, h = tc:request("GET", "/files/" .. seed.files.first.id, { token = tok })
      assert.equal(429, st)
      assert.equal("Too Many Requests", json.title)
      assert.equal("3", h["x-ratelimit-reset"])
      local stats = srv:stats()
      assert.equal(1, stats.by_route["POST /v2/files"])
      assert.equal(1, stats.by_route["GET /v2/files/{id}"])
    end)
  end)

  describe("emails", function()
    local function doc_with(ctype)
      for _, d in ipairs(seed.documents) do
        for _, key in ipairs{ "first", "png", "tiff" } do
          local f = seed.files[key]
          if f.id == d.fileId and f.contentType == ctype then return d, f end
        end
      end
    end

    it("serves the document's PDF file", function()
      local doc, file = doc_with("application/pdf")
      local status, _, h, text = tc:request("GET", "/emails/" .. doc.id .. "/content", { token = tok })
      assert.equal(200, status)
      assert.equal("application/pdf", h["content-type"])
      local _, _, _, original = tc:request("GET", "/files/" .. file.id, { token = tok })
      assert.equal(original, text)
    end)

    it("generates a PDF for a document whose file is an image", function()
      local doc = doc_with("image/png")
      local status, _, h, text = tc:request("GET", "/emails/" .. doc.id .. "/content", { token = tok })
      assert.equal(200, status)
      assert.equal("application/pdf", h["content-type"])
      assert.matches("^%%PDF%-1%.4", text)
      assert.matches("%%%%EOF\n$", text)
      assert.equal(tostring(#text), h["content-length"])
    end)

    it("answers 404 for an unknown document and 403 without emails.read", function()
      local status, json = tc:request("GET", "/emails/ffffffffffffffffffffffff/content", { token = tok })
      assert.equal(404, status)
      assert.same({ title = "Document does not exist", detail = "The document with given identifier does not exist",
                    status = 404 }, json)
      local other = tc:scoped_token("documents.read files.read")
      assert.equal(403, (tc:request("GET", "/emails/" .. seed.documents[1].id .. "/content", { token = other })))
    end)

    it("honours close_mid_body", function()
      srv:fault{ kind = "close_mid_body", path_pattern = "^/v2/emails/" }
      local _, rc = testclient.run(("curl -s -o /dev/null -H %s %s"):format(sh("Authorization: Bearer " .. tok),
        sh(srv.url .. "/emails/" .. seed.documents[1].id .. "/content")))
      assert.equal(18, rc)
    end)
  end)

  describe("echo", function()
    it("answers with the body, its content type and request facts", function()
      local status, _, h, text = tc:request("PUT", "/_echo?a=1&a=2&b=%C3%A4", {
        token = tok, body = "<raw>\0bytes</raw>", ctype = "application/vnd.custom+xml",
        headers = { ["X-Trace"] = "t-1" },
      })
      assert.equal(200, status)
      assert.equal("<raw>\0bytes</raw>", text)
      assert.equal("application/vnd.custom+xml", h["content-type"])
      assert.equal("PUT", h["x-echo-method"])
      assert.equal("/v2/_echo?a=1&a=2&b=%C3%A4", h["x-echo-uri"])
      assert.equal("17", h["x-echo-length"])
      assert.equal("t-1", h["x-echo-x-trace"])
      status, _, h, text = tc:request("DELETE", "/_echo/a%2Fb", { token = tok })
      assert.equal(200, status)
      assert.equal("", text)
      assert.equal("/v2/_echo/a%2Fb", h["x-echo-uri"])
    end)

    it("echoes a large body (spooled, streamed back) and counts the bytes", function()
      local data = testclient.random_bytes(3 * 1024 * 1024 + 5)
      local status, _, h, text = tc:request("POST", "/_echo", { token = tok, body = data, ctype = "application/octet-stream" })
      assert.equal(200, status)
      assert.equal(tostring(#data), h["content-length"])
      assert.is_true(text == data)
      local st = srv:stats()
      local entry = st.log[#st.log]
      assert.equal("POST /v2/_echo", entry.route)
      assert.equal(#data, entry.bytes_in)
      assert.equal(#data, entry.bytes_out)
      assert.equal(1, st.by_route["POST /v2/_echo"])
      assert.is_true(st.bytes_in >= #data)
    end)

    it("needs a bearer token", function()
      local status, json = tc:request("POST", "/_echo", { body = "x", ctype = "text/plain" })
      assert.equal(401, status)
      assert.equal("Invalid token", json.title)
    end)
  end)
end)
