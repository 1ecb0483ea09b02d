//! `trailvault metrics …`: the time series metric filters produce (kept per minute for 15
//! months), listed with ListMetrics and read with GetMetricStatistics over the vault's API.

use anyhow::Context;
use clap::{Args, Subcommand};
use serde_json::{json, Value};

use crate::cli::{ConnectArgs, OutputFormat};
use crate::time_arg::parse_time;

#[derive(Debug, Args)]
pub struct MetricsArgs {
    #[command(subcommand)]
    pub command: MetricsCommand,
}

#[derive(Debug, Subcommand)]
pub enum MetricsCommand {
    /// Every series with data: namespace, name, dimensions.
    List(MetricsListArgs),
    /// Statistics of one series per period, oldest first.
    Get(MetricsGetArgs),
}

#[derive(Debug, Args)]
pub struct MetricsListArgs {
    /// Only this namespace.
    #[arg(long)]
    pub namespace: Option<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct MetricsGetArgs {
    pub namespace: String,
    pub metric: String,
    /// A dimension of the series, NAME=VALUE; repeat for several.
    #[arg(long = "dimension", value_name = "NAME=VALUE", value_parser = parse_dimension)]
    pub dimensions: Vec<(String, String)>,
    /// Start of the time range (epoch ms, RFC 3339, or ago: 10m, 2h, 1d).
    #[arg(long, default_value = "3h", value_parser = parse_time)]
    pub from: i64,
    /// End of the time range.
    #[arg(long, default_value = "now", value_parser = parse_time)]
    pub to: i64,
    /// Seconds per datapoint, a multiple of 60.
    #[arg(long, default_value_t = 300)]
    pub period: u32,
    /// Statistic: SampleCount, Average, Sum, Minimum, Maximum or pNN; repeat for several.
    #[arg(long = "statistic", default_values_t = ["Sum".to_string()])]
    pub statistics: Vec<String>,
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn parse_dimension(s: &str) -> Result<(String, String), String> {
    match s.split_once('=') {
        Some((n, v)) if !n.is_empty() => Ok((n.to_string(), v.to_string())),
        _ => Err(format!("{s:?} is not NAME=VALUE")),
    }
}

/// The GetMetricStatistics request for `a`: plain statistics and percentiles go in the
/// members CloudWatch gives them.
pub fn statistics_request(a: &MetricsGetArgs) -> Value {
    let (extended, plain): (Vec<&String>, Vec<&String>) =
        a.statistics.iter().partition(|s| s.starts_with('p'));
    let mut req = json!({
        "Namespace": a.namespace,
        "MetricName": a.metric,
        "Dimensions": a.dimensions.iter().map(|(n, v)| json!({"Name": n, "Value": v})).collect::<Vec<_>>(),
        "StartTime": a.from as f64 / 1000.0,
        "EndTime": a.to as f64 / 1000.0,
        "Period": a.period,
    });
    if !plain.is_empty() {
        req["Statistics"] = json!(plain);
    }
    if !extended.is_empty() {
        req["ExtendedStatistics"] = json!(extended);
    }
    req
}

fn time_text(epoch_s: f64) -> String {
    chrono::DateTime::from_timestamp_millis((epoch_s * 1000.0) as i64)
        .map(|t| t.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_else(|| epoch_s.to_string())
}

/// One JSON document per line, as the API returned them.
fn print_json_lines(items: &[Value]) -> anyhow::Result<()> {
    for item in items {
        println!("{}", serde_json::to_string(item)?);
    }
    Ok(())
}

/// A metric's dimensions as `Name=Value,Name=Value`.
fn dimensions_text(metric: &Value) -> String {
    let Some(dims) = metric["Dimensions"].as_array() else {
        return String::new();
    };
    dims.iter()
        .map(|d| {
            format!(
                "{}={}",
                d["Name"].as_str().unwrap_or(""),
                d["Value"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join(",")
}

pub async fn run_metrics(args: MetricsArgs) -> anyhow::Result<()> {
    match args.command {
        MetricsCommand::List(a) => {
            let mut req = json!({});
            if let Some(n) = &a.namespace {
                req["Namespace"] = json!(n);
            }
            let out = a.connect.connect()?.call("ListMetrics", req).await?;
            let metrics = out["Metrics"].as_array().cloned().unwrap_or_default();
            match a.output {
                OutputFormat::Json => print_json_lines(&metrics)?,
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = metrics
                        .iter()
                        .map(|m| {
                            vec![
                                m["Namespace"].as_str().unwrap_or("").to_string(),
                                m["MetricName"].as_str().unwrap_or("").to_string(),
                                dimensions_text(m),
                            ]
                        })
                        .collect();
                    crate::monitor_cli::print_rows(&rows, &["NAMESPACE", "METRIC", "DIMENSIONS"]);
                }
            }
            Ok(())
        }
        MetricsCommand::Get(a) => {
            let out = a
                .connect
                .connect()?
                .call("GetMetricStatistics", statistics_request(&a))
                .await
                .context("GetMetricStatistics")?;
            let points = out["Datapoints"].as_array().cloned().unwrap_or_default();
            match a.output {
                OutputFormat::Json => print_json_lines(&points)?,
                OutputFormat::Table => {
                    let mut header = vec!["TIME"];
                    header.extend(a.statistics.iter().map(String::as_str));
                    let rows: Vec<Vec<String>> = points
                        .iter()
                        .map(|p| {
                            let mut row = vec![time_text(p["Timestamp"].as_f64().unwrap_or(0.0))];
                            for s in &a.statistics {
                                let v = if s.starts_with('p') {
                                    &p["ExtendedStatistics"][s.as_str()]
                                } else {
                                    &p[s.as_str()]
                                };
                                row.push(v.as_f64().map(|x| x.to_string()).unwrap_or_default());
                            }
                            row
                        })
                        .collect();
                    crate::monitor_cli::print_rows(&rows, &header);
                }
            }
            Ok(())
        }
    }
}
