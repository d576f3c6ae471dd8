#!/usr/bin/env bash
# Prints the library's module graph (one "user used" edge per line, between
# top-level modules of src/) and checks it has no cycle, with coreutils'
# tsort. Exit 1 when there is a cycle. `super::` inside a module's own
# directory is not an edge; `crate::x` anywhere in module m is m -> x.
set -euo pipefail
cd "$(dirname "$0")/../src"
edges=$(
  for path in *.rs */; do
    m=${path%.rs}; m=${m%/}
    case $m in main|lib|bin) continue ;; esac
    files=$( [ -d "$m" ] && find "$m" -name '*.rs' || echo "$m.rs" )
    # `use crate::{a, b}` and `crate::a::...` paths, test modules included.
    grep -ohE 'crate::(\{[a-z_, ]+|[a-z_]+)' $files 2>/dev/null |
      sed -E 's/crate::\{?//' | tr ',' '\n' | tr -d ' ' | grep -v '^$' |
      sort -u | grep -vx "$m" | sed "s/^/$m /" || true
  done | sort -u
)
printf '%s\n' "$edges"
if ! printf '%s\n' "$edges" | tsort >/dev/null 2>/tmp/module-graph.$$; then
  echo "cycles:" >&2
  grep -v 'input contains a loop' /tmp/module-graph.$$ | sed 's/^tsort: /  /' >&2
  rm -f /tmp/module-graph.$$
  exit 1
fi
rm -f /tmp/module-graph.$$
echo "no cycle"
