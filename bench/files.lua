--- bench/files.lua — benchmark "files" of `make bench` (bench/run.lua): a big file up and
-- down through hypatos, memory measured, side by side with the curl tool.
--
-- Benchmark "files": one M MiB file (pseudo-random bytes, written by build/bench/files_util
-- from bench/files_util.c) uploaded with POST /files and downloaded back to disk with
-- GET /files/{id}, the bytes compared with cmp after every download:
--   * hypatos: bench/hypatos_files.lua, client.files:upload{path=…} then
--     client.files:download(id, {path=…}); it reads its own VmRSS/VmHWM (/proc/self/status)
--     after require + client + token (the baseline) and after each phase, the high-water mark
--     reset before each phase, and reports the growth: peak (VmHWM - baseline) and final;
--   * hypatos + progress: the same with a progress function (one status line built per call);
--   * curl: the command-line tool streaming both ways (curl -X POST -T file, curl -o file),
--     its peak RSS (ru_maxrss) taken by `files_util run` (wait4), the same as /usr/bin/time -v
--     prints, minus the peak of a small GET with curl (what curl needs anyway).
-- An untimed curl upload and download come first (warm-up), and the server's stored copies
-- are dropped (reset) after every side, so that each side starts alike.
-- Needs 3 × M MiB free in $TMPDIR (or /tmp): the file, the server's copy, the download;
-- everything is removed at the end, also after a failure.
-- Target: the 1 GiB upload and the download each add < 16 MiB to the interpreter's RSS
-- (the worse of the runs with and without a progress function).
--

local cjson = require "cjson"
local lib = require "bench.lib"
local sh, capture, read_file, median = lib.sh, lib.capture, lib.read_file, lib.median
local free_kb, kib = lib.free_kb, lib.kib
local FILES_UTIL = lib.FILES_UTIL

local M = { name = "files" }

M.options = {
  { "--file-mib", "file_mib", 1024, "size of the file the files benchmark moves, in MiB", min = 1 },
  { "--file-rounds", "file_rounds", 1, "rounds of the files benchmark, the order of the sides swapped every"
    .. " round; medians of speed, the largest memory figures (15-25 s per round of 1 GiB on 2 cores,"
    .. " after a 5-10 s warm-up)", min = 1 },
  { "--curl-data-binary", "curl_data_binary", false, "also upload with `curl --data-binary @file` (which"
    .. " reads the whole file into memory first; curl 7.88 refuses a file of 1 GiB or more)" },
}

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local mib = args.file_mib
  local bytes = mib * 1048576
  local tmp = os.getenv("TMPDIR")
  if not tmp or tmp == "" then tmp = "/tmp" end
  local need = 3 * mib * 1024 + 65536
  local avail = free_kb(tmp)
  if avail and avail < need then
    local why = ("needs %s free in %s, has %s"):format(kib(need), tmp, kib(avail))
    print("benchmark files: skipped (" .. why .. ")")
    ctx.check("files: upload/download add < 16 MiB RSS", false, "not measured: " .. why)
    return { benchmark = "files", skipped = why }
  end

  local dir = (capture("mktemp -d " .. sh(tmp .. "/hypatos-bench-files-XXXXXX") .. " 2>/dev/null") or "")
    :gsub("%s+$", "")
  if dir == "" then error("bench: files: mktemp -d failed in " .. tmp, 0) end
  local input, output = dir .. "/in.pdf", dir .. "/out.pdf"
  local headers_file, resp = dir .. "/curl-headers", dir .. "/upload.json"
  local creds = { HYPATOS_CLIENT_ID = srv.client_id, HYPATOS_CLIENT_SECRET = srv.client_secret,
    HYPATOS_BASE_URL = srv.url }
  local hypatos = require "hypatos"

  -- The download equals the upload (cmp stops at the first difference); then it goes.
  local function verify(label)
    local same = os.execute("cmp -s " .. sh(input) .. " " .. sh(output))
    if same ~= true then error(("files: %s: %s differs from %s"):format(label, output, input), 0) end
    os.remove(output)
  end

  -- Drops the server's stored copies (and every token), so that every side starts alike.
  local function reset() srv:reset() end

  local function worker_hwm()
    local s = srv.worker_pid and read_file("/proc/" .. srv.worker_pid .. "/status")
    return s and tonumber(s:match("VmHWM:%s*(%d+)"))
  end

  -- curl's request headers, with a fresh token, in a file (so that no command line shows it).
  local function curl_headers()
    local c = hypatos.new({ client_id = srv.client_id, client_secret = srv.client_secret, base_url = srv.url })
    local tok = assert(c:token())
    c:close()
    local f = assert(io.open(headers_file, "wb"))
    f:write("Authorization: Bearer ", tok.access_token, "\nX-Hy-Filename: in.pdf\n")
    f:close()
  end
  -- files_util run curl … ARGS
  local function curl_argv(...)
    local t = { FILES_UTIL, "run", "curl", "-sS", "--fail", "-H", "@" .. headers_file }
    for _, a in ipairs({ ... }) do t[#t + 1] = a end
    return t
  end
  local small -- files_util run of curl's small GET: the floor of curl's RSS
  local function curl_row(r)
    return { mib_s = mib / r.wall_s, wall_s = r.wall_s, cpu_s = r.user_s + r.sys_s, user_s = r.user_s,
      sys_s = r.sys_s, peak_rss_kb = r.maxrss_kb,
      added_peak_kb = r.maxrss_kb - small.maxrss_kb }
  end

  -- One run of a side: {upload = row, download = row, …}; the server is reset afterwards.
  local function hypatos_side(name, progress)
    return function()
      local argv = { ctx.lua, "bench/hypatos_files.lua", "--in", input, "--out", output }
      if progress then argv[#argv + 1] = "--progress" end
      local r = ctx.run_child(name, creds, argv)
      verify(name)
      local function row(p)
        return { mib_s = mib / p.wall_s, wall_s = p.wall_s, cpu_s = p.cpu_s, user_s = p.user_s, sys_s = p.sys_s,
          peak_rss_kb = p.hwm_kb,
          added_peak_kb = p.peak_kb, added_final_kb = p.final_kb, lua_kb = p.lua_kb,
          progress_calls = p.progress_calls }
      end
      return { upload = row(r.upload), download = row(r.download), base_rss_kb = r.rss_base_kb,
        hwm_reset = r.hwm_reset }
    end
  end
  local function curl_side()
    curl_headers()
    local up = ctx.run_child("curl upload", nil, curl_argv("-X", "POST", "-H", "Content-Type: application/pdf",
      "-T", input, "-o", resp, srv.url .. "/files"))
    local id = (read_file(resp) or ""):match('"id"%s*:%s*"([^"]+)"')
    if not id then error("files: curl upload: no file id in " .. tostring(read_file(resp)), 0) end
    local down = ctx.run_child("curl download", nil, curl_argv("-o", output, srv.url .. "/files/" .. id))
    verify("curl")
    return { upload = curl_row(up), download = curl_row(down), base_rss_kb = small.maxrss_kb }
  end
  local sides = {
    { name = "hypatos", hypatos = true, run = hypatos_side("hypatos", false) },
    { name = "hypatos + progress", hypatos = true, run = hypatos_side("hypatos + progress", true) },
    { name = "curl -T / -o", run = curl_side },
  }

  local function body()
    local g = ctx.run_child("files_util gen", nil, { FILES_UTIL, "gen", input, tostring(bytes), "1" })
    print(("benchmark files: a %d MiB file (pseudo-random bytes, written in %.1f s) in %s, uploaded with"
      .. " POST %s/files and downloaded back to disk with GET /files/{id}, compared with cmp; one process"
      .. " per side and round, %s"):format(mib, g.wall_s, dir, srv.url,
      args.file_rounds == 1 and "1 round" or args.file_rounds .. " rounds alternating"))
    curl_headers()
    small = ctx.run_child("curl, small GET", nil, curl_argv("-o", "/dev/null", srv.url .. "/users?limit=1"))
    -- warm-up, untimed: one curl upload and download, so that the first side measured does not
    -- alone pay for the memory the page cache takes first (on this kind of VM, touching GiBs of
    -- fresh memory costs seconds of system time; pages freed and reused are cheap)
    curl_side()
    reset()

    for _, s in ipairs(sides) do s.results = {} end
    for round = 1, args.file_rounds do
      local order = {}
      for i = 1, #sides do order[i] = sides[round % 2 == 0 and #sides + 1 - i or i] end
      for _, s in ipairs(order) do
        local cpu0 = ctx.server_cpu()
        local r = s.run()
        local cpu1 = ctx.server_cpu()
        reset()
        r.server_cpu_s = cpu0 and cpu1 and cpu1 - cpu0 or nil
        s.results[#s.results + 1] = r
        io.stderr:write(("  round %d %-20s upload %5.0f MiB/s %9s, download %5.0f MiB/s %9s\n"):format(round,
          s.name, r.upload.mib_s, kib(r.upload.added_peak_kb, true), r.download.mib_s,
          kib(r.download.added_peak_kb, true)))
      end
    end

    -- per side and phase: medians of speed and CPU, the worst (largest) of the memory figures
    for _, s in ipairs(sides) do
      for _, ph in ipairs({ "upload", "download" }) do
        local agg = {}
        for _, k in ipairs({ "mib_s", "wall_s", "cpu_s", "user_s", "sys_s" }) do
          local l = {}
          for i, r in ipairs(s.results) do l[i] = r[ph][k] end
          agg[k] = median(l)
        end
        for _, k in ipairs({ "peak_rss_kb", "added_peak_kb", "added_final_kb", "lua_kb", "progress_calls" }) do
          for _, r in ipairs(s.results) do
            if r[ph][k] then agg[k] = math.max(agg[k] or -math.huge, r[ph][k]) end
          end
        end
        s[ph] = agg
      end
      local l = {}
      for _, r in ipairs(s.results) do l[#l + 1] = r.server_cpu_s end
      s.server_cpu_s = #l == #s.results and median(l) or nil
      s.base_rss_kb = s.results[1].base_rss_kb
      s.hwm_reset = s.results[1].hwm_reset
    end

    local data_binary
    if args.curl_data_binary then
      curl_headers() -- a fresh token: reset revoked the last one
      local argv = curl_argv("-X", "POST", "-H", "Content-Type: application/pdf", "--data-binary", "@" .. input,
        "-o", resp, srv.url .. "/files")
      for i, a in ipairs(argv) do argv[i] = sh(a) end
      local out = capture(table.concat(argv, " ") .. " 2>&1") or ""
      local okj, r = pcall(cjson.decode, out:match("(%b{})%s*$") or "")
      if not okj or type(r) ~= "table" or not r.maxrss_kb then error("files: curl --data-binary: " .. out, 0) end
      data_binary = curl_row(r)
      data_binary.ok = r.ok
      data_binary.error = not r.ok and (out:match("curl: ([^\n]+)") or ("exit " .. tostring(r.exit))) or nil
      reset()
    end

    -- the table
    local rounds = args.file_rounds > 1 and (" (medians of %d rounds; memory: the largest)"):format(args.file_rounds)
      or ""
    print(("  %-20s %-40s   %-40s%s"):format("", "---------------- upload ----------------",
      "--------------- download ---------------", rounds))
    print(("  %-20s %6s %12s %10s %9s   %6s %12s %10s %9s"):format("", "MiB/s", "CPU usr+sys", "peak RSS",
      "added", "MiB/s", "CPU usr+sys", "peak RSS", "added"))
    local function line(name, u, d)
      local function cols(p)
        if not p then return ("%6s %12s %10s %9s"):format("-", "-", "-", "-") end
        local cpu = p.user_s and p.sys_s and ("%.2f+%.2f"):format(p.user_s, p.sys_s) or ("%.2f"):format(p.cpu_s)
        return ("%6.0f %12s %10s %9s"):format(p.mib_s, cpu, kib(p.peak_rss_kb), kib(p.added_peak_kb, true))
      end
      print(("  %-20s %s   %s"):format(name, cols(u), cols(d)))
    end
    for _, s in ipairs(sides) do line(s.name, s.upload, s.download) end
    if data_binary then
      line("curl --data-binary", data_binary, nil)
      if not data_binary.ok then print("    curl --data-binary failed: " .. data_binary.error) end
    end
    print(("  added: hypatos, VmHWM minus VmRSS after require + client + token (%s); curl, ru_maxrss"
      .. " minus that of a small GET (%s)"):format(kib(sides[1].base_rss_kb), kib(small.maxrss_kb)))
    local finals = {}
    for _, s in ipairs(sides) do
      if s.hypatos then
        finals[#finals + 1] = ("%s %s / %s (Lua heap %s / %s)"):format(s.name, kib(s.upload.added_final_kb, true),
          kib(s.download.added_final_kb, true), kib(s.upload.lua_kb), kib(s.download.lua_kb))
      end
    end
    print("  RSS growth left once each call returned (upload / download): " .. table.concat(finals, "; "))
    local srv_cpu = {}
    for _, s in ipairs(sides) do
      if s.server_cpu_s then
        srv_cpu[#srv_cpu + 1] = ("%s %.1f s of %.1f s"):format(s.name, s.server_cpu_s,
          s.upload.wall_s + s.download.wall_s)
      end
    end
    print(("  server (one nginx worker) CPU per side, upload + download: %s; worker peak RSS %s"):format(
      table.concat(srv_cpu, ", "), kib(worker_hwm())))
    print(("  progress function calls: %d upload, %d download"):format(math.floor(sides[2].upload.progress_calls),
      math.floor(sides[2].download.progress_calls)))
    if not sides[1].hwm_reset then
      print("  note: /proc/self/clear_refs not writable: the peaks include start-up's (upper bounds)")
    end

    local hyp, prog, curl = sides[1], sides[2], sides[3]
    local limit = 16384
    local summary = { benchmark = "files", file_mib = mib, bytes = bytes, rounds = args.file_rounds,
      curl_small_get_rss_kb = small.maxrss_kb, worker_peak_rss_kb = worker_hwm() }
    for _, ph in ipairs({ "upload", "download" }) do
      local worst = math.max(hyp[ph].added_peak_kb, prog[ph].added_peak_kb)
      ctx.check(("files: %d MiB %s adds < 16 MiB RSS"):format(mib, ph), worst < limit,
        ("%s (%s with progress); curl %s"):format(kib(hyp[ph].added_peak_kb, true),
          kib(prog[ph].added_peak_kb, true), kib(curl[ph].added_peak_kb, true)))
      summary[ph .. "_added_kb"] = worst
      summary[ph .. "_pass"] = worst < limit
    end
    for _, s in ipairs(sides) do
      summary[s.name] = { upload = s.upload, download = s.download, base_rss_kb = s.base_rss_kb,
        server_cpu_s = s.server_cpu_s }
    end
    if data_binary then summary["curl --data-binary"] = { upload = data_binary } end
    return summary
  end

  local ok, res = pcall(body)
  -- Clean up whatever happened; a Ctrl-C raises "interrupted!" at the next Lua instruction,
  -- which can be in here, hence the second try.
  local function cleanup()
    os.execute("rm -rf " .. sh(dir))
    if not ok then reset() end -- the server's copies (stop() removes them too)
  end
  if not pcall(cleanup) then pcall(cleanup) end
  if not ok then error(res, 0) end
  return res
end

return M
