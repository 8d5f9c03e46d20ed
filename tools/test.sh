#!/bin/bash
# tools/test.sh — runs the busted suite and ends with the plain line CI reads:
# "N passed, N failed, N skipped" (failures and errors count as failed,
# pending as skipped). Keeps busted's exit status. MEMCHECK=1 runs it under
# valgrind (definite leaks and memory errors fail the run). SANITIZE=1 runs it
# against the ASan/UBSan build in $HYPATOS_BUILD with $HYPATOS_PRELOAD (the
# sanitizer runtimes) preloaded into lua5.4; every report, from the suite's
# process or from a child lua5.4, lands in $SAN_LOGS and fails the run.
# A suite that has not finished in SUITE_TIMEOUT s (default 1800; 7200 under
# valgrind) is stopped and fails: a hang says so instead of eating CI's time.
# A whole run (no arguments) also checks the suite size the README states.
set -u -o pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if [ "${MEMCHECK:-}" = 1 ]; then limit=${SUITE_TIMEOUT:-7200}; else limit=${SUITE_TIMEOUT:-1800}; fi
guard=(timeout -k 30 "$limit")

if [ "${MEMCHECK:-}" = 1 ]; then
  # run busted's runner directly in lua5.4 (no re-exec) under valgrind
  "${guard[@]}" valgrind --quiet --keep-debuginfo=yes --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=9 --suppressions=tools/valgrind.supp \
    lua5.4 /usr/bin/busted --ignore-lua -o utfTerminal "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
elif [ "${SANITIZE:-}" = 1 ]; then
  : "${HYPATOS_BUILD:?}" "${HYPATOS_PRELOAD:?}" "${SAN_LOGS:?}"
  for f in $HYPATOS_PRELOAD; do
    [ -f "$f" ] || { echo "tools/test.sh: sanitizer runtime $f not found" >&2; exit 1; }
  done
  rm -rf "$SAN_LOGS" && mkdir -p "$SAN_LOGS"
  logs=$(cd "$SAN_LOGS" && pwd)
  # reports go to files, so that a child's cannot be lost in a captured stderr; LeakSanitizer
  # reports unreachable blocks only (the interpreter's and libcurl's reachable ones are fine):
  # SAN_LEAKS=0 turns it off
  export ASAN_OPTIONS="detect_leaks=${SAN_LEAKS:-1}:abort_on_error=1:halt_on_error=1:print_summary=1:log_path=$logs/asan"
  export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$logs/ubsan"
  HYPATOS_CHILD_INIT="@$PWD/tools/sanitize_env.lua"
  export HYPATOS_BUILD HYPATOS_PRELOAD HYPATOS_CHILD_INIT
  # busted's runner directly in lua5.4 (no re-exec), the runtime preloaded; the helper keeps
  # LD_PRELOAD away from the other programs the specs start
  "${guard[@]}" env LD_PRELOAD="$HYPATOS_PRELOAD" lua5.4 /usr/bin/busted --ignore-lua --cpath="$HYPATOS_BUILD/?.so" \
    --helper=tools/sanitize_helper.lua -o utfTerminal "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
  reports=$(find "$logs" -type f | sort)
  if [ -n "$reports" ]; then
    for f in $reports; do echo "== $f"; cat "$f"; done
    echo "tools/test.sh: the sanitizers reported $(echo "$reports" | wc -l) error(s) (see above)"
    rc=1
  elif grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:' "$log"; then
    echo "tools/test.sh: a sanitizer report is in the output above"
    rc=1
  fi
else
  "${guard[@]}" busted -o utfTerminal "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
fi

if [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
  echo "tools/test.sh: the suite did not finish in $limit s and was stopped (a spec hangs: the last one started is after the last result above)"
fi
summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
  grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
if [ -n "$summary" ]; then
  read -r ok failed errors pending < <(echo "$summary" |
    sed -E 's#^([0-9]+) [a-z]+ / ([0-9]+) [a-z]+ / ([0-9]+) [a-z]+ / ([0-9]+) pending.*#\1 \2 \3 \4#')
  [ "$rc" -ne 0 ] && [ $((failed + errors)) -eq 0 ] && errors=1   # e.g. valgrind found a leak
  # the whole suite: the README states its size (line "`make test` ends with a line like …");
  # keep that statement true
  stated=$(grep -oE 'ends with a line like `[0-9]+ passed' README.md | grep -oE '[0-9]+' | head -n 1)
  total=$((ok + failed + errors + pending))
  if [ "$#" -eq 0 ] && [ "$rc" -eq 0 ] && [ -n "$stated" ] && [ "$stated" -ne "$total" ]; then
    echo "tools/test.sh: README.md says the suite ends with \`$stated passed\`; it has $total tests: update README.md"
    rc=1 errors=$((errors + 1))
  fi
  echo "$ok passed, $((failed + errors)) failed, $pending skipped"
else
  echo "0 passed, 1 failed, 0 skipped"
  [ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
