//! Ten typical security queries and LookupEvents-style lookups over a vault, timed with
//! `SqlEngine` (median of N runs each). Writes the queries as JSON so `scripts/bench-sql.sh`
//! runs the very same SQL with DuckDB over the same Parquet files.
//!
//! `cargo run --release -p trailvault-sql --example security_queries -- DATA_DIR OUT_DIR [RUNS]`
//!
//! Writes `OUT_DIR/queries.json` ([{name, sql}]), `OUT_DIR/datafusion.json`
//! ({name: {median_ms, rows}}) and `OUT_DIR/lookups.json`.

use std::path::PathBuf;
use std::time::Instant;

use trailvault_sql::dataset::{access_key_of, ACCOUNTS};
use trailvault_sql::{LookupAttribute, SqlEngine, SqlOptions};

// The allocator of the `trailvault` binary, which serves these queries.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn queries() -> Vec<(&'static str, String)> {
    let key = access_key_of(ACCOUNTS[0], "alice");
    vec![
        (
            "failed console logins by IP",
            "SELECT src_ip, count(*) AS n FROM events \
             WHERE action = 'ConsoleLogin' AND outcome = 'failure' \
             GROUP BY src_ip ORDER BY n DESC, src_ip LIMIT 20"
                .into(),
        ),
        (
            "top APIs by principal",
            "SELECT actor_arn, action, count(*) AS n FROM events WHERE source = 'cloudtrail' \
             GROUP BY actor_arn, action ORDER BY n DESC, actor_arn, action LIMIT 20"
                .into(),
        ),
        (
            "errors by service",
            "SELECT service, error_code, count(*) AS n FROM events WHERE error_code IS NOT NULL \
             GROUP BY service, error_code ORDER BY n DESC, service, error_code LIMIT 20"
                .into(),
        ),
        (
            "root activity",
            "SELECT account, action, src_ip, count(*) AS n FROM events WHERE actor_type = 'Root' \
             GROUP BY account, action, src_ip ORDER BY n DESC, account, action, src_ip LIMIT 20"
                .into(),
        ),
        (
            "rare regions",
            "SELECT region, account, count(*) AS n FROM events WHERE source = 'cloudtrail' \
             GROUP BY region, account ORDER BY n ASC, region, account LIMIT 10"
                .into(),
        ),
        (
            "VPC rejects by port",
            "SELECT dst_port, count(*) AS n, count(DISTINCT src_ip) AS sources FROM events \
             WHERE source = 'vpc-flow' AND action = 'REJECT' \
             GROUP BY dst_port ORDER BY n DESC, dst_port LIMIT 10"
                .into(),
        ),
        (
            "data volume by source and account",
            "SELECT source, account, sum(bytes) AS total_bytes, count(*) AS n FROM events \
             GROUP BY source, account ORDER BY total_bytes DESC, source, account"
                .into(),
        ),
        (
            "CloudTrail activity per hour",
            "SELECT date_trunc('hour', timestamp) AS hour, count(*) AS n FROM events \
             WHERE source = 'cloudtrail' GROUP BY 1 ORDER BY 1"
                .into(),
        ),
        (
            "what one access key did",
            format!(
                "SELECT action, count(*) AS n, min(timestamp) AS first_seen, max(timestamp) AS last_seen \
                 FROM events WHERE actor_access_key_id = '{key}' GROUP BY action ORDER BY n DESC, action"
            ),
        ),
        (
            "security group ingress changes",
            "SELECT timestamp, account, actor_arn, src_ip, resources FROM events \
             WHERE action = 'AuthorizeSecurityGroupIngress' \
             ORDER BY timestamp DESC, actor_arn LIMIT 20"
                .into(),
        ),
    ]
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(|a, b| a.total_cmp(b));
    let n = xs.len();
    if n % 2 == 1 {
        xs[n / 2]
    } else {
        (xs[n / 2 - 1] + xs[n / 2]) / 2.0
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let data = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: DATA_DIR OUT_DIR [RUNS]"))?,
    );
    let out = PathBuf::from(
        args.next()
            .ok_or_else(|| anyhow::anyhow!("usage: DATA_DIR OUT_DIR [RUNS]"))?,
    );
    let runs: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(5);
    std::fs::create_dir_all(&out)?;

    let t = Instant::now();
    let engine = SqlEngine::open_sealed(&data, SqlOptions::default()).await?;
    let open_ms = t.elapsed().as_secs_f64() * 1e3;
    eprintln!("engine opened in {open_ms:.1} ms");

    let qs = queries();
    let json_queries: Vec<serde_json::Value> = qs
        .iter()
        .map(|(name, sql)| serde_json::json!({"name": name, "sql": sql}))
        .collect();
    std::fs::write(
        out.join("queries.json"),
        serde_json::to_string_pretty(&json_queries)?,
    )?;

    let mut results = serde_json::Map::new();
    for (name, sql) in &qs {
        let mut times = Vec::with_capacity(runs);
        let mut rows = 0;
        for _ in 0..runs {
            let t = Instant::now();
            let batches = engine.query(sql).await?;
            times.push(t.elapsed().as_secs_f64() * 1e3);
            rows = batches.iter().map(|b| b.num_rows()).sum::<usize>();
        }
        let m = median(times);
        eprintln!("{name}: {m:.1} ms ({rows} rows)");
        results.insert(
            name.to_string(),
            serde_json::json!({"median_ms": m, "rows": rows}),
        );
    }
    std::fs::write(
        out.join("datafusion.json"),
        serde_json::to_string_pretty(&serde_json::Value::Object(results))?,
    )?;

    // Lookups, one per LookupEvents attribute: an event id (the needle in the haystack), rare
    // values over a day or all time, frequent ones (the 50 newest of many).
    let id_batches = engine
        .query("SELECT source_event_id, timestamp FROM events WHERE source = 'cloudtrail' AND seq % 100003 = 7 LIMIT 1")
        .await?;
    let id = arrow::array::AsArray::as_string::<i32>(id_batches[0].column(0))
        .value(0)
        .to_string();
    let sg = engine
        .query("SELECT resources FROM events WHERE action = 'AuthorizeSecurityGroupIngress' ORDER BY seq LIMIT 1")
        .await?;
    let resources: serde_json::Value =
        serde_json::from_str(arrow::array::AsArray::as_string::<i32>(sg[0].column(0)).value(0))?;
    let resource_name = resources[0]["id"]
        .as_str()
        .ok_or_else(|| anyhow::anyhow!("a security group change without a resource id"))?
        .to_string();
    let day_start = trailvault_sql::dataset::START_MS_DEFAULT + 2 * 86_400_000;
    let day = (Some(day_start), Some(day_start + 86_400_000));
    type Lookup = (
        &'static str,
        LookupAttribute,
        String,
        Option<i64>,
        Option<i64>,
    );
    let lookups: Vec<Lookup> = vec![
        (
            "EventId (all time)",
            LookupAttribute::EventId,
            id.clone(),
            None,
            None,
        ),
        (
            "EventName=StopLogging (one day)",
            LookupAttribute::EventName,
            "StopLogging".into(),
            Some(day_start),
            Some(day_start + 86_400_000),
        ),
        (
            "AccessKeyId (all time, 50 newest)",
            LookupAttribute::AccessKeyId,
            access_key_of(ACCOUNTS[0], "alice"),
            None,
            None,
        ),
        (
            "Username=bob (all time, 50 newest)",
            LookupAttribute::Username,
            "bob".into(),
            None,
            None,
        ),
        (
            "EventSource=kms (one day)",
            LookupAttribute::EventSource,
            "kms.amazonaws.com".into(),
            day.0,
            day.1,
        ),
        (
            "ResourceType=AWS::CloudTrail::Trail (all time)",
            LookupAttribute::ResourceType,
            "AWS::CloudTrail::Trail".into(),
            None,
            None,
        ),
        (
            "ResourceName=one security group (all time)",
            LookupAttribute::ResourceName,
            resource_name,
            None,
            None,
        ),
        (
            "ReadOnly=false (one day)",
            LookupAttribute::ReadOnly,
            "false".into(),
            day.0,
            day.1,
        ),
    ];
    let mut lk = Vec::new();
    for (name, attr, value, start, end) in &lookups {
        let mut times = Vec::with_capacity(runs);
        let mut found = 0;
        for _ in 0..runs {
            let t = Instant::now();
            found = engine.lookup(*attr, value, *start, *end, 50).await?.len();
            times.push(t.elapsed().as_secs_f64() * 1e3);
        }
        // The first run also loads the attribute's lookup filters from the catalog.
        let first = times[0];
        let m = median(times);
        eprintln!("lookup {name}: {m:.1} ms, first {first:.1} ms ({found} events)");
        lk.push(serde_json::json!({
            "name": name, "attribute": attr.as_str(), "value": value,
            "start_ms": start, "end_ms": end, "median_ms": m, "first_ms": first, "events": found,
        }));
    }
    std::fs::write(out.join("lookups.json"), serde_json::to_string_pretty(&lk)?)?;
    std::fs::write(
        out.join("engine.json"),
        serde_json::to_string(&serde_json::json!({"open_ms": open_ms}))?,
    )?;
    Ok(())
}
