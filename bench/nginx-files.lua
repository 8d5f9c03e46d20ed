--- bench/nginx-files.lua — benchmark "nginx-files" of `make bench` (bench/run.lua): a big file
-- up and down inside nginx through the cosocket driver, the worker's memory measured, side by
-- side with the plain-Lua libcurl driver (issue 8 §2: streaming both ways with flat memory).
--
-- One M MiB file (pseudo-random bytes, build/bench/files_util gen) is uploaded and downloaded
-- back to disk by an application nginx (Debian nginx + ngx_lua on LuaJIT, ONE worker, so that
-- its pid is known; spec/fixtures/ngx_app.lua) in front of the local Hypatos server. The client
-- is created in init_worker_by_lua (the default driver inside nginx: cosockets); locations
--   /upload?path=P          client.files:upload{ path = P } → the file id
--   /download?id=I&path=P   client.files:download(I, { path = P })
--   /gc                     a full collection, then the Lua heap in KiB
-- Memory: VmRSS and VmHWM of the worker from /proc/<pid>/status. Each phase gets an nginx of
-- its own (the app is restarted between the upload and the download), so each has its own
-- baseline: after a warm-up (a 1 MiB upload and download, twice: token, connection, code
-- loaded and compiled) and a full GC, VmRSS is read (the baseline) and the worker's high-water
-- mark reset to it (5 to /proc/<pid>/clear_refs, allowed for a process of the same user);
-- VmHWM after the phase minus the baseline is the phase's peak growth. Where the reset is
-- refused, the peak includes the warm-up's (an upper bound; the output says so).
-- The plain-Lua side is bench/hypatos_files.lua rerun in the same run (its own high-water mark
-- reset per phase). The bytes are compared with cmp after every download; speeds are the wall
-- time of the request to the app (nginx) or of the call (plain Lua).
-- Needs 3 × M MiB free in $TMPDIR (or /tmp): the file, the server's copy, the download;
-- the temporary files, the server's stored copies (reset) and the app nginx go at the end,
-- also after a failure.
-- Target: the upload and the download each add < 16 MiB to the nginx worker.

local lib = require "bench.lib"
local sh, capture, read_file, kib = lib.sh, lib.capture, lib.read_file, lib.kib
local FILES_UTIL = lib.FILES_UTIL

local M = { name = "nginx-files" }

M.options = {
  { "--nginx-file-mib", "nginx_file_mib", 1024, "size of the file the nginx-files benchmark moves, in MiB"
    .. " (about 30 s for 1 GiB on 2 cores, both sides)", min = 1 },
}

local WARM_MIB, LIMIT_KB, TIMEOUT = 1, 16384, 1800

local LOCATIONS = [[
        location = /upload {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local f, err = client.files:upload{ path = a.path, content_type = "application/pdf" }
                if not f then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say(f.id)
            }
        }
        location = /download {
            content_by_lua_block {
                local a = ngx.req.get_uri_args()
                local ok, err = client.files:download(a.id, { path = a.path })
                if not ok then ngx.status = 502 ngx.say(tostring(err)) return end
                ngx.say("ok")
            }
        }
        location = /gc {
            content_by_lua_block {
                collectgarbage("collect")
                collectgarbage("collect")
                ngx.say(math.floor(collectgarbage("count")))
            }
        }
]]

local INIT = [[
        client = require("hypatos").new{}
]]

-- VmRSS, VmHWM (KiB) of a process.
local function status_kb(pid)
  local s = read_file("/proc/" .. pid .. "/status") or ""
  return tonumber(s:match("VmRSS:%s*(%d+)")), tonumber(s:match("VmHWM:%s*(%d+)"))
end

-- Resets a process's VmHWM to its VmRSS; false when the kernel refuses.
local function reset_hwm(pid)
  local f = io.open("/proc/" .. pid .. "/clear_refs", "wb")
  if not f then return false end
  local ok = f:write("5")
  ok = f:close() and ok
  return ok and true or false
end

-- %-escapes a query value.
local function escape(s)
  return (tostring(s):gsub("[^%w%-%._~/]", function(ch) return ("%%%02X"):format(ch:byte()) end))
end

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local mib = args.nginx_file_mib
  local bytes = mib * 1048576
  local tmp = lib.tmpdir()
  local need = 3 * mib * 1024 + 4 * WARM_MIB * 1024 + 65536
  local avail = lib.free_kb(tmp)
  if avail and avail < need then
    local why = ("needs %s free in %s, has %s"):format(kib(need), tmp, kib(avail))
    print("benchmark nginx-files: skipped (" .. why .. ")")
    ctx.check("nginx-files: upload/download add < 16 MiB to the worker", false, "not measured: " .. why)
    return { benchmark = "nginx-files", skipped = why }
  end

  local dir, app
  local function stop_app()
    if app then app:stop() end
    app = nil
  end
  local function cleanup()
    stop_app()
    if dir then os.execute("rm -rf " .. sh(dir)) end
    srv:reset() -- the server's stored copies
  end

  local function body()
    dir = lib.mktemp_dir("nginxfiles")
    local input, output = dir .. "/in.pdf", dir .. "/out.pdf"
    local warm_in, warm_out = dir .. "/warm.pdf", dir .. "/warm-out.pdf"

    local function verify(label, a, b)
      if os.execute("cmp -s " .. sh(a) .. " " .. sh(b)) ~= true then
        error(("nginx-files: %s: %s differs from %s"):format(label, b, a), 0)
      end
      os.remove(b)
    end

    local function call(path)
      local status, text, secs = app:get(path, TIMEOUT)
      if status ~= 200 then
        error(("nginx-files: GET %s: %s %s\n%s"):format(path, tostring(status), tostring(text),
          app:error_log():sub(-2000)), 0)
      end
      return (text:gsub("%s+$", "")), secs
    end
    local function upload(path) return call("/upload?path=" .. escape(path)) end
    local function download(id, path) return call("/download?id=" .. escape(id) .. "&path=" .. escape(path)) end

    -- CPU seconds (user + sys) of a process.
    local ticks = tonumber(capture("getconf CLK_TCK 2>/dev/null") or "") or 100
    local function cpu_s(pid)
      local rest = (read_file("/proc/" .. pid .. "/stat") or ""):match("%) (.*)$")
      if not rest then return nil end
      local f = {}
      for x in rest:gmatch("%S+") do f[#f + 1] = x end
      return (tonumber(f[12]) + tonumber(f[13])) / ticks
    end

    -- A fresh app nginx with one worker, warmed up; returns its worker's pid.
    local function start_app()
      stop_app()
      local wpid
      app, wpid = lib.one_worker_app(srv, INIT, LOCATIONS, "nginx-files")
      for _ = 1, 2 do
        local id = upload(warm_in)
        download(id, warm_out)
        verify("warm-up", warm_in, warm_out)
      end
      return wpid
    end

    -- One phase in a fresh nginx: fn() → value, seconds; returns value and the figures.
    local hwm_reset = true
    local function phase(name, fn)
      local wpid = start_app()
      local lua_base = tonumber((call("/gc")))
      local base_rss = status_kb(wpid)
      if not reset_hwm(wpid) then hwm_reset = false end
      local _, base_hwm = status_kb(wpid)
      local c0 = cpu_s(wpid)
      local value, secs = fn()
      local c1 = cpu_s(wpid)
      local rss, hwm = status_kb(wpid)
      local lua_kb = tonumber((call("/gc")))
      stop_app()
      io.stderr:write(("  nginx worker %-8s %6.0f MiB/s, VmHWM %s over the baseline %s\n"):format(name,
        mib / secs, kib(hwm - base_rss, true), kib(base_rss)))
      return value, { mib_s = mib / secs, wall_s = secs, cpu_s = c0 and c1 and c1 - c0, base_rss_kb = base_rss,
        base_hwm_kb = base_hwm, peak_rss_kb = hwm, added_peak_kb = hwm - base_rss, added_final_kb = rss - base_rss,
        lua_base_kb = lua_base, lua_kb = lua_kb }
    end

    local g = ctx.run_child("files_util gen", nil, { FILES_UTIL, "gen", input, tostring(bytes), "1" })
    ctx.run_child("files_util gen", nil, { FILES_UTIL, "gen", warm_in, tostring(WARM_MIB * 1048576), "2" })
    print(("benchmark nginx-files: a %d MiB file (written in %.1f s) in %s, uploaded and downloaded back to"
      .. " disk by nginx + ngx_lua (LuaJIT, 1 worker, the cosocket driver, a client from init_worker) via"
      .. " %s, compared with cmp; nginx restarted for each phase (its own baseline after a warm-up);"
      .. " side by side with the plain-Lua libcurl driver (bench/hypatos_files.lua)"):format(mib, g.wall_s, dir,
      srv.url))

    -- nginx: upload, then download in a fresh nginx
    local id, up = phase("upload", function() return upload(input) end)
    local _, down = phase("download", function() return download(id, output) end)
    verify("nginx download", input, output)
    srv:reset()

    -- plain Lua (libcurl driver): the same file, in a child process
    local r = ctx.run_child("plain Lua", lib.creds(srv), { ctx.lua, "bench/hypatos_files.lua", "--in", input,
      "--out", output })
    verify("plain-Lua download", input, output)
    srv:reset()
    local function plain(p)
      return { mib_s = mib / p.wall_s, wall_s = p.wall_s, cpu_s = p.cpu_s, base_rss_kb = r.rss_base_kb,
        peak_rss_kb = p.hwm_kb, added_peak_kb = p.peak_kb, added_final_kb = p.final_kb, lua_kb = p.lua_kb }
    end
    local pu, pd = plain(r.upload), plain(r.download)
    io.stderr:write(("  plain Lua upload %6.0f MiB/s %s, download %6.0f MiB/s %s\n"):format(pu.mib_s,
      kib(pu.added_peak_kb, true), pd.mib_s, kib(pd.added_peak_kb, true)))

    print(("  %-24s %-38s   %-38s"):format("", "--------------- upload ---------------",
      "-------------- download --------------"))
    print(("  %-24s %6s %7s %11s %10s   %6s %7s %11s %10s"):format("", "MiB/s", "CPU s", "peak RSS", "added",
      "MiB/s", "CPU s", "peak RSS", "added"))
    local function cols(p)
      return ("%6.0f %7s %11s %10s"):format(p.mib_s, p.cpu_s and ("%.2f"):format(p.cpu_s) or "?",
        kib(p.peak_rss_kb), kib(p.added_peak_kb, true))
    end
    print(("  %-24s %s   %s"):format("nginx worker (cosocket)", cols(up), cols(down)))
    print(("  %-24s %s   %s"):format("plain Lua (libcurl)", cols(pu), cols(pd)))
    print(("  added: VmHWM minus VmRSS after the warm-up and a full GC (nginx worker: %s before the upload,"
      .. " %s before the download, each phase in a fresh nginx; plain Lua: %s after require + client +"
      .. " token)"):format(kib(up.base_rss_kb), kib(down.base_rss_kb), kib(r.rss_base_kb)))
    print(("  RSS left once the call returned (upload / download): nginx worker %s / %s (Lua heap after a"
      .. " full GC %s / %s); plain Lua %s / %s"):format(kib(up.added_final_kb, true), kib(down.added_final_kb, true),
      kib(up.lua_kb), kib(down.lua_kb), kib(pu.added_final_kb, true), kib(pd.added_final_kb, true)))
    if not hwm_reset or not r.hwm_reset then
      print("  note: clear_refs not writable: the peaks include the warm-up's / start-up's (upper bounds)")
    end

    local summary = { benchmark = "nginx-files", file_mib = mib, bytes = bytes, hwm_reset = hwm_reset,
      restart_per_phase = true, nginx = { upload = up, download = down },
      plain = { upload = pu, download = pd, hwm_reset = r.hwm_reset } }
    for _, ph in ipairs({ { "upload", up, pu }, { "download", down, pd } }) do
      local name, n, p = ph[1], ph[2], ph[3]
      ctx.check(("nginx-files: %d MiB %s adds < 16 MiB to the worker"):format(mib, name),
        n.added_peak_kb < LIMIT_KB, ("nginx worker %s / plain Lua %s; %.0f / %.0f MiB/s"):format(
          kib(n.added_peak_kb, true), kib(p.added_peak_kb, true), n.mib_s, p.mib_s))
      summary[name .. "_added_kb"] = n.added_peak_kb
      summary[name .. "_pass"] = n.added_peak_kb < LIMIT_KB
    end
    return summary
  end

  return lib.finally(body, cleanup)
end

return M
