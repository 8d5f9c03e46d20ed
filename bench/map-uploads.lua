--- bench/map-uploads.lua — benchmark "map-uploads" of `make bench` (bench/run.lua): issue 9,
-- "16 concurrent uploads of a 256 MiB file add less than 32 MiB of RSS".
--
-- One M MiB file (pseudo-random bytes, build/bench/files_util gen) in a temporary directory.
-- Two sides, one child process each (bench/hypatos_map.lua --op upload: its VmHWM minus its
-- VmRSS after require + client + token, the high-water mark reset just before the calls):
--   * alone: one client.files:upload{path = …} in a plain call;
--   * map 16: the same file uploaded 16 times through client:map(items, fn, {concurrency = 16}).
-- The server's stored copies are dropped (reset) after each side. Needs (16 + 2) × M MiB free
-- in $TMPDIR; everything is removed at the end, also after a failure.
-- M = --upload-mib (default 256).
-- Target: map 16 adds < 32 MiB RSS.

local lib = require "bench.lib"
local sh, kib = lib.sh, lib.kib

local M = { name = "map-uploads" }

M.options = {
  { "--upload-mib", "upload_mib", 256, "size of the file the map-uploads benchmark uploads 16 times, in MiB",
    min = 1 },
}

local COUNT, LIMIT_KB = 16, 32768

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local mib = args.upload_mib
  local need = (COUNT + 2) * mib * 1024 + 65536
  local avail = lib.free_kb(lib.tmpdir())
  if avail and avail < need then
    local why = ("needs %s free in %s, has %s"):format(kib(need), lib.tmpdir(), kib(avail))
    print("benchmark map-uploads: skipped (" .. why .. ")")
    ctx.check("map-uploads: 16 concurrent uploads add < 32 MiB RSS", false, "not measured: " .. why)
    return { benchmark = "map-uploads", skipped = why }
  end
  local dir
  local function body()
    dir = lib.mktemp_dir("uploads")
    local input = dir .. "/in.pdf"
    local g = ctx.run_child("files_util gen", nil, { lib.FILES_UTIL, "gen", input, tostring(mib * 1048576), "1" })
    print(("benchmark map-uploads: a %d MiB file (written in %.1f s), uploaded once alone and %d times through"
      .. " client:map at concurrency %d; one process per side"):format(mib, g.wall_s, COUNT, COUNT))
    local sides = { { name = "one upload alone", calls = 1, concurrency = 0 },
      { name = "map, 16 concurrent", calls = COUNT, concurrency = COUNT } }
    print(("  %-20s %9s %9s %12s %10s"):format("", "time", "MiB/s", "peak RSS", "added"))
    local summary = { benchmark = "map-uploads", file_mib = mib, uploads = COUNT }
    for _, s in ipairs(sides) do
      local r = lib.map_child(ctx, "map-uploads " .. s.name, { op = "upload", file = input, calls = s.calls,
        concurrency = s.concurrency })
      srv:reset()
      s.r = r
      print(("  %-20s %7.2f s %9.0f %12s %10s"):format(s.name, r.wall_s, s.calls * mib / r.wall_s, kib(r.hwm_kb),
        kib(r.peak_kb, true)))
      summary[s.name] = { wall_s = r.wall_s, added_peak_kb = r.peak_kb, peak_rss_kb = r.hwm_kb,
        base_rss_kb = r.rss_base_kb }
    end
    if not sides[2].r.hwm_reset then
      print("  note: /proc/self/clear_refs not writable: the peaks include start-up's (upper bounds)")
    end
    local a, m = sides[1].r, sides[2].r
    print(("  added: VmHWM minus VmRSS after require + client + token (%s); map 16 / alone: %.1fx the memory")
      :format(kib(m.rss_base_kb), m.peak_kb / math.max(1, a.peak_kb)))
    ctx.check(("map-uploads: %d x %d MiB at once add < 32 MiB RSS"):format(COUNT, mib), m.peak_kb < LIMIT_KB,
      ("%s (one alone %s)"):format(kib(m.peak_kb, true), kib(a.peak_kb, true)))
    return summary
  end
  return lib.finally(body, function(ok)
    if dir then os.execute("rm -rf " .. sh(dir)) end
    if not ok then srv:reset() end
  end)
end

return M
