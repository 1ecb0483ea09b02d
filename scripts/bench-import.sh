#!/usr/bin/env bash
# Import benchmark: a seeded synthetic CloudTrail tree (gzip'd, AWSLogs layout), imported end
# to end into a fresh embedded vault by the release build, side by side with DuckDB's read_json
# over the same files (counting; writing zstd Parquet; loading a DuckDB table) and
# `zcat > /dev/null` (the decompression floor). Prints a table of medians.
# Usage: scripts/bench-import.sh [MB of CloudTrail JSON, default 1024] [runs, default 3]
# Environment: BENCH_DIR (where the tree and vaults go; default a directory under
# ${TMPDIR:-/tmp}), JOBS (import --jobs; default: all cores).
set -euo pipefail
mb=${1:-1024}
runs=${2:-3}
here=$(cd "$(dirname "$0")/.." && pwd)
dir=${BENCH_DIR:-${TMPDIR:-/tmp}/trailvault-bench-import}
tree="$dir/tree-$mb"
venv_bin=$("$here/scripts/test-env.sh")

cd "$here"
# --workspace (with explicit targets): the feature set of a whole-workspace release build, so
# the build is shared with it rather than redone.
cargo build --release -q --workspace --bin trailvault-import --bin gen-cloudtrail
target_dir=$(cargo metadata --format-version 1 --no-deps | "$venv_bin/python" -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
bin="$target_dir/release"

if [ ! -f "$tree/.complete" ]; then
  rm -rf "$tree"
  mkdir -p "$tree"
  echo "generating $mb MB of CloudTrail JSON in $tree ..." >&2
  "$bin/gen-cloudtrail" "$tree" --mb "$mb" --seed 1 >"$tree/.stats"
  touch "$tree/.complete"
fi
read -r files _ records _ json_bytes _ _ gz_bytes _ <"$tree/.stats"
echo "tree: $files files, $records records, $json_bytes JSON bytes, $gz_bytes gzip bytes" >&2
# Warm the page cache once so every contender reads from memory.
find "$tree/AWSLogs" -type f -print0 | xargs -0 cat >/dev/null

now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

zcat_t=() import_t=() dry_t=() duck_t=() duckimp_t=() duckdb_t=()
jobs_arg=()
[ -n "${JOBS:-}" ] && jobs_arg=(--jobs "$JOBS")
for i in $(seq "$runs"); do
  t0=$(now)
  find "$tree/AWSLogs" -name '*.gz' -print0 | xargs -0 zcat >/dev/null
  t1=$(now)
  zcat_t+=("$(echo "$t1 - $t0" | bc)")

  vault="$dir/vault-run"
  rm -rf "$vault"
  t0=$(now)
  "$bin/trailvault-import" --data "$vault" --no-progress "${jobs_arg[@]}" "$tree/AWSLogs" >"$dir/import-$i.txt"
  t1=$(now)
  import_t+=("$(echo "$t1 - $t0" | bc)")
  grep -q "records: $records read = $records stored + 0 quarantined" "$dir/import-$i.txt" || {
    echo "import run $i did not store every record:" >&2
    cat "$dir/import-$i.txt" >&2
    exit 1
  }

  rm -rf "$vault"
  t0=$(now)
  "$bin/trailvault-import" --data "$vault" --no-progress --dry-run "${jobs_arg[@]}" "$tree/AWSLogs" >/dev/null
  t1=$(now)
  dry_t+=("$(echo "$t1 - $t0" | bc)")

  t0=$(now)
  n=$("$venv_bin/python" -c "
import duckdb, sys
con = duckdb.connect()
con.execute('SET enable_progress_bar=false')
print(con.execute(\"SELECT count(*) FROM (SELECT unnest(Records) FROM read_json('$tree/AWSLogs/**/*.json.gz', maximum_object_size=67108864))\").fetchone()[0])
")
  t1=$(now)
  duck_t+=("$(echo "$t1 - $t0" | bc)")
  [ "$n" = "$records" ] || { echo "duckdb counted $n records, expected $records" >&2; exit 1; }

  # DuckDB doing an import's job: parse every record and store it as zstd Parquet (what it
  # keeps is less: no raw record, no hashes, no index, and no fsync).
  rm -f "$dir/duck-import.parquet"
  t0=$(now)
  "$venv_bin/python" -c "
import duckdb
con = duckdb.connect()
con.execute('SET enable_progress_bar=false')
con.execute(\"COPY (SELECT unnest(Records) AS r FROM read_json('$tree/AWSLogs/**/*.json.gz', maximum_object_size=67108864)) TO '$dir/duck-import.parquet' (FORMAT parquet, COMPRESSION zstd)\")
"
  t1=$(now)
  duckimp_t+=("$(echo "$t1 - $t0" | bc)")
  n=$("$venv_bin/python" -c "import duckdb; print(duckdb.connect().execute(\"SELECT count(*) FROM '$dir/duck-import.parquet'\").fetchone()[0])")
  [ "$n" = "$records" ] || { echo "duckdb stored $n records, expected $records" >&2; exit 1; }
  rm -f "$dir/duck-import.parquet"

  # DuckDB importing into its own database file: the same records as a table, checkpointed
  # (written and synced) before it returns.
  rm -f "$dir/duck-import.db" "$dir/duck-import.db.wal"
  t0=$(now)
  "$venv_bin/python" -c "
import duckdb
con = duckdb.connect('$dir/duck-import.db')
con.execute('SET enable_progress_bar=false')
con.execute(\"CREATE TABLE records AS SELECT unnest(Records) AS r FROM read_json('$tree/AWSLogs/**/*.json.gz', maximum_object_size=67108864)\")
con.execute('CHECKPOINT')
"
  t1=$(now)
  duckdb_t+=("$(echo "$t1 - $t0" | bc)")
  n=$("$venv_bin/python" -c "import duckdb; print(duckdb.connect('$dir/duck-import.db').execute('SELECT count(*) FROM records').fetchone()[0])")
  [ "$n" = "$records" ] || { echo "duckdb table holds $n records, expected $records" >&2; exit 1; }
  rm -f "$dir/duck-import.db" "$dir/duck-import.db.wal"
  echo "run $i: zcat ${zcat_t[-1]} s, import ${import_t[-1]} s, dry run ${dry_t[-1]} s, duckdb count ${duck_t[-1]} s, duckdb to parquet ${duckimp_t[-1]} s, duckdb table ${duckdb_t[-1]} s" >&2
done
rm -rf "$dir/vault-run"

row() {
  local name=$1 med=$2
  printf '| %s | %.2f | %.1f | %.1f |\n' "$name" "$med" \
    "$(echo "$json_bytes / 1000000 / $med" | bc -l)" "$(echo "$gz_bytes / 1000000 / $med" | bc -l)"
}
z=$(printf '%s\n' "${zcat_t[@]}" | median)
im=$(printf '%s\n' "${import_t[@]}" | median)
dr=$(printf '%s\n' "${dry_t[@]}" | median)
d=$(printf '%s\n' "${duck_t[@]}" | median)
di=$(printf '%s\n' "${duckimp_t[@]}" | median)
dt=$(printf '%s\n' "${duckdb_t[@]}" | median)
echo
echo "CloudTrail tree: $files files, $records records, $((json_bytes / 1000000)) MB JSON, $((gz_bytes / 1000000)) MB gzip; $(nproc) cores; median of $runs runs"
echo
echo "| contender | wall s (median) | MB/s of JSON | MB/s of gzip |"
echo "|---|---:|---:|---:|"
row "zcat > /dev/null (decompression floor, 1 core)" "$z"
row "trailvault import (parse, normalize, store, seal)" "$im"
row "trailvault import --dry-run (read, decompress, parse, normalize; no writes)" "$dr"
row "DuckDB read_json + unnest(Records) (count only, stores nothing)" "$d"
row "DuckDB read_json + unnest(Records) → zstd Parquet file (an import's job)" "$di"
row "DuckDB read_json + unnest(Records) → table in a DuckDB file, checkpointed (an import's job)" "$dt"
printf '\nimport / zcat = %.2f×, import / DuckDB to Parquet = %.2f×, import / DuckDB table = %.2f×, import / DuckDB count = %.2f×, dry run / DuckDB count = %.2f×, dry run / zcat = %.2f×\n' \
  "$(echo "$im / $z" | bc -l)" "$(echo "$im / $di" | bc -l)" "$(echo "$im / $dt" | bc -l)" "$(echo "$im / $d" | bc -l)" \
  "$(echo "$dr / $d" | bc -l)" "$(echo "$dr / $z" | bc -l)"
