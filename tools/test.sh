#!/bin/bash
# tools/test.sh — runs the busted suite and ends with the plain line CI reads:
# "N passed, N failed, N skipped" (failures and errors count as failed,
# pending as skipped). Keeps busted's exit status. MEMCHECK=1 runs it under
# valgrind (definite leaks and memory errors fail the run).
set -u -o pipefail
cd "$(dirname "$0")/.."
log=$(mktemp)
trap 'rm -f "$log"' EXIT

if [ "${MEMCHECK:-}" = 1 ]; then
  # run busted's runner directly in lua5.4 (no re-exec) under valgrind
  valgrind --quiet --keep-debuginfo=yes --leak-check=full --errors-for-leak-kinds=definite --show-leak-kinds=definite \
    --error-exitcode=9 --suppressions=tools/valgrind.supp \
    lua5.4 /usr/bin/busted --ignore-lua -o utfTerminal "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
else
  busted -o utfTerminal "$@" 2>&1 | tee "$log"
  rc=${PIPESTATUS[0]}
fi

summary=$(sed 's/\x1b\[[0-9;]*m//g' "$log" |
  grep -E '^[0-9]+ success(es)? / [0-9]+ failures? / [0-9]+ errors? / [0-9]+ pending' | tail -n 1)
if [ -n "$summary" ]; then
  read -r ok failed errors pending < <(echo "$summary" |
    sed -E 's#^([0-9]+) [a-z]+ / ([0-9]+) [a-z]+ / ([0-9]+) [a-z]+ / ([0-9]+) pending.*#\1 \2 \3 \4#')
  [ "$rc" -ne 0 ] && [ $((failed + errors)) -eq 0 ] && errors=1   # e.g. valgrind found a leak
  echo "$ok passed, $((failed + errors)) failed, $pending skipped"
else
  echo "0 passed, 1 failed, 0 skipped"
  [ "$rc" -eq 0 ] && rc=1
fi
exit "$rc"
