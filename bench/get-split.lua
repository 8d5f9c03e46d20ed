--- bench/get-split.lua — benchmark "get-split" of `make bench` (bench/run.lua): the blocking
-- GET of today against the same GET on the commit before the engine split (issue 8: "the
-- blocking GET no slower than before the split, paired in one run against the commit before it").
--
-- The commit before the split is the parent of the commit whose subject starts with "The engine
-- in pure C" (2ff9473). It is checked out into a temporary `git worktree` under build/bench/
-- (detached), built there with its own `make all` (its own build/ directory), and removed again
-- (`git worktree remove --force`) at the end, also after a failure or Ctrl-C.
-- Sides: bench/hypatos_get.lua (N × client.users:get(id) on one keep-alive connection, see
-- bench/get.lua) run by lua5.4 with LUA_PATH and LUA_CPATH pointing at
--   * before: that worktree's lua/ and build/5.4/hypatos/core.so;
--   * now: this checkout's lua/ and build/5.4/hypatos/core.so.
-- One process per side and round, the order swapped every round, after one warm-up process per
-- side; the ratio checked is the median of the per-round throughput ratios now/before.
-- Options: --calls, --rounds, --warmup of the get benchmark.
-- Target: now ≥ 0.95× the throughput before the split.

local lib = require "bench.lib"
local sh, capture, median, minmax, thousands = lib.sh, lib.capture, lib.median, lib.minmax, lib.thousands
local get = dofile("bench/get.lua")

local M = { name = "get-split", options = {} }

local SPLIT = "2ff9473"
local WORKTREE = lib.BUILD_DIR .. "/split-base"

local function git(cmd) return (capture("git " .. cmd .. " 2>/dev/null") or ""):gsub("%s+$", "") end

function M.run(ctx)
  local args, srv = ctx.args, ctx.srv
  local split = git("rev-parse --verify -q " .. SPLIT .. "^{commit}")
  local subject = git("log -1 --format=%s " .. SPLIT)
  if split == "" or not subject:find("^The engine in pure C") then
    error("get-split: commit " .. SPLIT .. " (\"The engine in pure C …\") not found", 0)
  end
  local base = git("rev-parse " .. split .. "^")
  local root = git("rev-parse --show-toplevel")
  local dir = root .. "/" .. WORKTREE

  local function remove()
    os.execute("git worktree remove --force " .. sh(dir) .. " >/dev/null 2>&1")
    os.execute("rm -rf " .. sh(dir))
    os.execute("git worktree prune >/dev/null 2>&1")
  end

  local function body()
    remove() -- left over from an interrupted run
    os.execute("mkdir -p " .. sh(lib.BUILD_DIR))
    if os.execute("git worktree add --detach " .. sh(dir) .. " " .. base .. " >/dev/null 2>&1") ~= true then
      error("get-split: git worktree add " .. dir .. " " .. base .. " failed", 0)
    end
    local log = dir .. ".log"
    if os.execute("make -C " .. sh(dir) .. " all >" .. sh(log) .. " 2>&1") ~= true then
      local text = lib.read_file(log) or ""
      os.remove(log)
      error("get-split: make all at " .. base:sub(1, 7) .. " failed: " .. text:sub(-2000), 0)
    end
    os.remove(log)

    local id = get.pick_target(srv)
    local function side(name, tree)
      return { name = name, run = function(calls)
        local env = lib.creds(srv, {
          LUA_PATH = tree .. "/lua/?.lua;" .. tree .. "/lua/?/init.lua;;",
          LUA_CPATH = tree .. "/build/5.4/?.so;;" })
        local before = srv:stats()
        local r = ctx.run_child(name, env, { ctx.lua, root .. "/bench/hypatos_get.lua", "--id", id,
          "--calls", tostring(calls), "--warmup", tostring(args.warmup) })
        r.server_token_requests = math.tointeger(srv:stats().token_requests - before.token_requests)
        return r
      end }
    end
    local sides = { side("before the split", dir), side("now", root) }
    print(("benchmark get-split: the get benchmark's hypatos side (lua5.4), %d timed calls per process"
      .. " (+%d warm-up), %d rounds alternating: before the split = %s (parent of %s), now = %s")
      :format(args.calls, args.warmup, args.rounds, base:sub(1, 7), split:sub(1, 7), git("rev-parse --short HEAD")))
    for _, s in ipairs(sides) do s.run(math.max(200, args.calls // 10)); s.results = {} end
    for round = 1, args.rounds do
      local order = round % 2 == 1 and { sides[1], sides[2] } or { sides[2], sides[1] }
      for _, s in ipairs(order) do
        local r = s.run(args.calls)
        s.results[round] = r
        io.stderr:write(("  round %d %-20s %8.0f calls/s %7.1f us CPU/call\n"):format(round, s.name,
          r.calls / r.wall_s, r.cpu_s / r.calls * 1e6))
      end
    end
    local pairs_t, pairs_c = {}, {}
    for _, s in ipairs(sides) do
      local t, c = {}, {}
      for i, r in ipairs(s.results) do t[i], c[i] = r.calls / r.wall_s, r.cpu_s / r.calls * 1e6 end
      s.tput, s.cpu = median(t), median(c)
      s.tput_lo, s.tput_hi = minmax(t)
    end
    local tokens_ok = true
    for i = 1, args.rounds do
      local b, n = sides[1].results[i], sides[2].results[i]
      pairs_t[i] = (n.calls / n.wall_s) / (b.calls / b.wall_s)
      pairs_c[i] = (n.cpu_s / n.calls) / (b.cpu_s / b.calls)
      tokens_ok = tokens_ok and n.server_token_requests == 1
    end
    print(("  %-20s %24s %18s"):format("", "calls/s", "CPU us/call"))
    for _, s in ipairs(sides) do
      print(("  %-20s %9s [%6s-%6s] %18.1f"):format(s.name, thousands(s.tput), thousands(s.tput_lo),
        thousands(s.tput_hi), s.cpu))
    end
    local ratio, cpu_ratio = median(pairs_t), median(pairs_c)
    local lo, hi = minmax(pairs_t)
    print(("ratios now/before, median of %d rounds: throughput %.2fx [%.2f-%.2f], CPU per call %.2fx")
      :format(args.rounds, ratio, lo, hi, cpu_ratio))
    ctx.check("get-split: blocking GET >= 0.95x before the split", ratio >= 0.95,
      ("%.3fx (vs %s)"):format(ratio, base:sub(1, 7)))
    if not tokens_ok then io.stderr:write("  note: a process of today's side made more than 1 token request\n") end
    return { benchmark = "get-split", base = base, calls = args.calls, rounds = args.rounds,
      throughput_ratio = ratio, cpu_ratio = cpu_ratio,
      before = { calls_per_s = sides[1].tput, cpu_us_per_call = sides[1].cpu },
      now = { calls_per_s = sides[2].tput, cpu_us_per_call = sides[2].cpu } }
  end

  return lib.finally(body, remove)
end

return M
