#!/usr/bin/env bash
# SQL benchmark: a seeded multi-account dataset (CloudTrail, S3 access, VPC flow, ALB) written
# into a fresh vault as real sealed segments, then ten security queries timed with trailvault's
# SQL engine (DataFusion) and with DuckDB over the very same Parquet files, side by side in one
# run (median of RUNS each), plus LookupEvents-style lookups. Prints a markdown table.
# Usage: scripts/bench-sql.sh [events, default 1000000] [runs, default 5]
# Environment: BENCH_DIR (where the vault goes; default a directory under ${TMPDIR:-/tmp}).
set -euo pipefail
events=${1:-${EVENTS:-1000000}}
runs=${2:-5}
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-${TMPDIR:-/tmp}/trailvault-bench-sql}
vault="$dir/vault-$events"
out="$dir/out-$events"
mkdir -p "$dir"
venv_bin=$("$here/scripts/test-env.sh")

"$venv_bin/python" -c "import pytz" 2>/dev/null || "$venv_bin/pip" install --quiet pytz >&2  # DuckDB returns TIMESTAMPTZ values through pytz
cd "$here"
# --workspace (with explicit targets): the feature set of a whole-workspace release build, so
# DataFusion's release build (tens of minutes) is shared with it rather than redone.
cargo build --release -q --workspace --bin gen-dataset --example security_queries
target_dir=$(cargo metadata --format-version 1 --no-deps | "$venv_bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')

if [ ! -f "$vault/.complete" ]; then
  rm -rf "$vault"
  echo "generating $events events into $vault ..." >&2
  "$target_dir/release/gen-dataset" --data "$vault" --events "$events" --seed 42 --days 7 >"$dir/gen-$events.txt"
  cat "$dir/gen-$events.txt" >&2
  touch "$vault/.complete"
fi
# Warm the page cache so both engines read from memory.
find "$vault/segments" -type f -print0 | xargs -0 cat >/dev/null

"$target_dir/release/examples/security_queries" "$vault" "$out" "$runs"

"$venv_bin/python" - "$vault" "$out" "$runs" "$events" <<'PY'
import json, statistics, sys, time
import duckdb

vault, out, runs, events = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
con = duckdb.connect()
con.execute(
    f"CREATE VIEW events AS SELECT * FROM read_parquet('{vault}/segments/**/*.parquet', hive_partitioning=true)"
)
queries = json.load(open(f"{out}/queries.json"))
df = json.load(open(f"{out}/datafusion.json"))
rows = []
for q in queries:
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = len(con.execute(q["sql"]).fetchall())
        times.append((time.perf_counter() - t) * 1e3)
    d = df[q["name"]]
    rows.append((q["name"], d["median_ms"], statistics.median(times), d["rows"], n))

columns = {"EventId": "source_event_id", "EventName": "action", "AccessKeyId": "actor_access_key_id",
           "Username": "actor_user_name", "EventSource": "service"}
resource_keys = {"ResourceType": "kind", "ResourceName": "id"}  # inside the resources JSON text


def condition(attribute, value):
    if attribute in resource_keys:
        needle = f'"{resource_keys[attribute]}":{json.dumps(value)}'.replace("'", "''")
        return f"strpos(resources, '{needle}') > 0"
    if attribute == "ReadOnly":
        return f"read_only = {value.lower()}"
    return f"{columns[attribute]} = '{value}'"


lookups = []
for lk in json.load(open(f"{out}/lookups.json")):
    where = [condition(lk["attribute"], lk["value"])]
    if lk["start_ms"] is not None:
        where.append(f"timestamp >= to_timestamp({lk['start_ms']} / 1000.0)")
    if lk["end_ms"] is not None:
        where.append(f"timestamp < to_timestamp({lk['end_ms']} / 1000.0)")
    sql = f"SELECT * FROM events WHERE {' AND '.join(where)} ORDER BY timestamp DESC, seq DESC LIMIT 50"
    times, n = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        n = len(con.execute(sql).fetchall())
        times.append((time.perf_counter() - t) * 1e3)
    lookups.append((lk["name"], lk["first_ms"], lk["median_ms"], statistics.median(times), lk["events"], n))

print(f"| query ({events:,} events) | trailvault (DataFusion) ms | DuckDB {duckdb.__version__} ms | rows (ours / DuckDB) |")
print("|---|---:|---:|---:|")
for name, ours, duck, r1, r2 in rows:
    print(f"| {name} | {ours:.1f} | {duck:.1f} | {r1} / {r2}{'' if r1 == r2 else ' MISMATCH'} |")
ours_m = statistics.median(r[1] for r in rows)
duck_m = statistics.median(r[2] for r in rows)
print(f"| **median of the ten** | **{ours_m:.1f}** | **{duck_m:.1f}** | |")
print()
print("| lookup | trailvault first run ms | trailvault ms | DuckDB ms | events (ours / DuckDB) |")
print("|---|---:|---:|---:|---:|")
for name, first, ours, duck, r1, r2 in lookups:
    print(f"| {name} | {first:.1f} | {ours:.1f} | {duck:.1f} | {r1} / {r2}{'' if r1 == r2 else ' MISMATCH'} |")
PY
