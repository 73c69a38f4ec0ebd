# Shared helpers for the deploy checks: `check NAME CMD...` runs CMD, counts it,
# prints its output only on failure; `skip NAME WHY` counts a check that cannot run
# here; `summary` prints "N passed, N failed[, N skipped]" and sets the exit status.
passed=0
failed=0
skipped=0

# A python3 that has PyYAML (Debian's python3-yaml), even when another python3 is first on PATH.
PY=""
for cand in "${PYTHON:-}" python3 /usr/bin/python3; do
  if [[ -n "$cand" ]] && "$cand" -c 'import yaml' 2>/dev/null; then PY="$cand"; break; fi
done
if [[ -z "$PY" ]]; then
  echo "no python3 with PyYAML (apt-get install python3-yaml)" >&2
  exit 2
fi

check() {
  local name="$1" out
  shift
  if out="$("$@" 2>&1)"; then
    passed=$((passed + 1))
    echo "ok   - $name"
  else
    failed=$((failed + 1))
    echo "FAIL - $name"
    printf '%s\n' "$out" | sed 's/^/       /'
  fi
}

skip() {
  skipped=$((skipped + 1))
  echo "skip - $1 ($2)"
}

summary() {
  if ((skipped)); then
    echo "$passed passed, $failed failed, $skipped skipped"
  else
    echo "$passed passed, $failed failed"
  fi
  [[ $failed -eq 0 ]]
  exit $?
}
