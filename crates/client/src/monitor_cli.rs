//! `trailvault rules …` (install monitoring rule packs as metric filters + alarms) and
//! `trailvault alarms …` (list alarms, their history, action targets), over the vault's API.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use serde_json::{json, Value};
use trailvault_monitor::rules::{rule_pack, rule_packs, RulePack};

use crate::cli::{ConnectArgs, OutputFormat};

#[derive(Debug, Args)]
pub struct RulesArgs {
    #[command(subcommand)]
    pub command: RulesCommand,
}

#[derive(Debug, Subcommand)]
pub enum RulesCommand {
    /// List the rule packs this build ships.
    List,
    /// Show a pack's rules: control ids, metric names and filter patterns.
    Show { pack: String },
    /// Install a pack on a log group: one metric filter and one alarm per rule.
    Install(InstallArgs),
    /// Remove a pack's metric filters (and alarms) from a log group.
    Uninstall(InstallArgs),
}

#[derive(Debug, Args)]
pub struct InstallArgs {
    /// Pack id, e.g. cis-aws.
    pub pack: String,
    /// The log group holding CloudTrail records.
    #[arg(long)]
    pub group: String,
    /// Action target ARN (arn:trailvault:webhook:NAME, arn:trailvault:command:NAME) run when
    /// an alarm goes to ALARM. Repeatable.
    #[arg(long = "action")]
    pub actions: Vec<String>,
    /// Action target ARN run when an alarm goes to OK (from any state, as CloudWatch does,
    /// so also right after installation). Repeatable.
    #[arg(long = "ok-action")]
    pub ok_actions: Vec<String>,
    /// Alarm period in seconds instead of the pack's (10, 20, 30 or a multiple of 60): the
    /// alarms look at N + 2 periods, so a shorter period also returns them to OK sooner.
    #[arg(long)]
    pub period: Option<u32>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

fn pack(id: &str) -> anyhow::Result<RulePack> {
    rule_pack(id).with_context(|| {
        let ids: Vec<String> = rule_packs().into_iter().map(|p| p.id).collect();
        format!("no rule pack {id:?}; available: {}", ids.join(", "))
    })
}

pub async fn run_rules(args: RulesArgs) -> anyhow::Result<()> {
    match args.command {
        RulesCommand::List => {
            for p in rule_packs() {
                println!(
                    "{}\tv{}\t{} rules\t{} ({})",
                    p.id,
                    p.version,
                    p.rules.len(),
                    p.name,
                    p.benchmark
                );
            }
            Ok(())
        }
        RulesCommand::Show { pack: id } => {
            let p = pack(&id)?;
            println!("{} v{}: {} ({})", p.id, p.version, p.name, p.benchmark);
            for r in &p.rules {
                println!(
                    "\nCIS {} {}\t{}\n  metric {}/{}\n  pattern {}",
                    r.cis_control,
                    r.security_hub_control.as_deref().unwrap_or(""),
                    r.title,
                    p.metric_namespace,
                    r.metric_name,
                    r.pattern
                );
            }
            Ok(())
        }
        RulesCommand::Install(a) => install(a).await,
        RulesCommand::Uninstall(a) => uninstall(a).await,
    }
}

async fn install(a: InstallArgs) -> anyhow::Result<()> {
    let p = pack(&a.pack)?;
    let client = a.connect.connect()?;
    for f in p.metric_filters(&a.group) {
        let mut body = serde_json::to_value(&f)?;
        body["logGroupName"] = json!(a.group);
        client
            .call("PutMetricFilter", body)
            .await
            .with_context(|| format!("installing metric filter {}", f.filter_name))?;
    }
    for mut alarm in p.alarms(&a.group) {
        alarm.alarm_actions.extend(a.actions.iter().cloned());
        alarm.ok_actions.extend(a.ok_actions.iter().cloned());
        if let Some(period) = a.period {
            alarm.period = period;
        }
        let name = alarm.alarm_name.clone();
        client
            .call("PutMetricAlarm", serde_json::to_value(&alarm)?)
            .await
            .with_context(|| format!("installing alarm {name}"))?;
    }
    println!(
        "installed {} v{} on {}: {} metric filters, {} alarms",
        p.id,
        p.version,
        a.group,
        p.rules.len(),
        p.rules.len()
    );
    Ok(())
}

async fn uninstall(a: InstallArgs) -> anyhow::Result<()> {
    let p = pack(&a.pack)?;
    let client = a.connect.connect()?;
    for r in &p.rules {
        let name = p.filter_name(r);
        match client
            .call(
                "DeleteMetricFilter",
                json!({ "logGroupName": a.group, "filterName": name }),
            )
            .await
        {
            Ok(_) => {}
            Err(e) if e.code() == Some("ResourceNotFoundException") => {}
            Err(e) => return Err(e).with_context(|| format!("removing metric filter {name}")),
        }
    }
    // Alarms are shared by every group the pack is installed on; remove them only when no
    // group still has the pack's filters.
    let remaining = client
        .call("DescribeMetricFilters", json!({}))
        .await?
        .get("metricFilters")
        .and_then(Value::as_array)
        .map(|fs| {
            fs.iter()
                .filter(|f| {
                    let n = f["filterName"].as_str().unwrap_or("");
                    p.rules.iter().any(|r| p.filter_name(r) == n)
                })
                .count()
        })
        .unwrap_or(0);
    if remaining == 0 {
        let names: Vec<String> = p.rules.iter().map(|r| p.alarm_name(r)).collect();
        client
            .call("DeleteAlarms", json!({ "AlarmNames": names }))
            .await?;
    }
    println!("uninstalled {} from {}", p.id, a.group);
    Ok(())
}

#[derive(Debug, Args)]
pub struct AlarmsArgs {
    #[command(subcommand)]
    pub command: AlarmsCommand,
}

#[derive(Debug, Subcommand)]
pub enum AlarmsCommand {
    /// Every alarm with its state.
    List(ListArgs),
    /// State changes and actions, newest first.
    History(HistoryArgs),
    /// Define a webhook action target (POST with an HMAC-SHA256 signature header).
    Webhook(WebhookArgs),
    /// Define a command action target (run with the alarm's context in its environment).
    Command(CommandArgs),
    /// Define another trailvault as a subscription-filter destination
    /// (arn:trailvault:vault:NAME): matching events are written there with PutLogEvents,
    /// signed with the given access key. The secret is stored in this vault's monitor
    /// database and never shown again (DescribeActionTargets redacts it).
    Vault(VaultTargetArgs),
}

#[derive(Debug, Args)]
pub struct ListArgs {
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    /// Only this alarm.
    pub alarm: Option<String>,
    #[arg(long, default_value_t = 100)]
    pub limit: usize,
    #[arg(long, value_enum, default_value = "table")]
    pub output: OutputFormat,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct WebhookArgs {
    pub name: String,
    pub url: String,
    /// Shared secret for the X-Trailvault-Signature header.
    #[arg(long, env = "TRAILVAULT_WEBHOOK_SECRET")]
    pub secret: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct VaultTargetArgs {
    pub name: String,
    /// The other vault's endpoint, e.g. http://central:4740.
    #[arg(value_name = "DESTINATION_ENDPOINT")]
    pub destination: String,
    /// Log group there (created on first delivery when missing).
    #[arg(long)]
    pub group: String,
    /// Log stream there (created on first delivery when missing).
    #[arg(long)]
    pub stream: String,
    /// Access key id of an identity allowed to write to the other vault.
    #[arg(long, env = "TRAILVAULT_DESTINATION_ACCESS_KEY_ID")]
    pub access_key_id: String,
    /// Its secret (prefer the environment variable to keep it out of shell history).
    #[arg(
        long,
        env = "TRAILVAULT_DESTINATION_SECRET_ACCESS_KEY",
        hide_env_values = true
    )]
    pub secret_access_key: String,
    /// Region to sign for.
    #[arg(long, default_value = "us-east-1")]
    pub destination_region: String,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

#[derive(Debug, Args)]
pub struct CommandArgs {
    pub name: String,
    /// Seconds before the command is killed.
    #[arg(long, default_value_t = 30)]
    pub timeout: u64,
    /// The program and its arguments.
    #[arg(last = true, required = true)]
    pub argv: Vec<String>,
    #[command(flatten)]
    pub connect: ConnectArgs,
}

pub(crate) fn print_rows(rows: &[Vec<String>], header: &[&str]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (w, c) in widths.iter_mut().zip(r) {
            *w = (*w).max(c.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut s = String::new();
        for (i, (c, w)) in cells.iter().zip(&widths).enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  "));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.to_vec());
    for r in rows {
        line(r.iter().map(String::as_str).collect());
    }
}

pub async fn run_alarms(args: AlarmsArgs) -> anyhow::Result<()> {
    match args.command {
        AlarmsCommand::List(a) => {
            let out = a
                .connect
                .connect()?
                .call("DescribeAlarms", json!({}))
                .await?;
            let alarms = out["MetricAlarms"].as_array().cloned().unwrap_or_default();
            match a.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&alarms)?),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = alarms
                        .iter()
                        .map(|x| {
                            vec![
                                x["AlarmName"].as_str().unwrap_or("").to_string(),
                                x["StateValue"].as_str().unwrap_or("").to_string(),
                                x["StateReason"].as_str().unwrap_or("").to_string(),
                            ]
                        })
                        .collect();
                    print_rows(&rows, &["ALARM", "STATE", "REASON"]);
                }
            }
            Ok(())
        }
        AlarmsCommand::History(a) => {
            let mut req = json!({ "MaxRecords": a.limit.clamp(1, 100) });
            if let Some(n) = &a.alarm {
                req["AlarmName"] = json!(n);
            }
            let out = a
                .connect
                .connect()?
                .call("DescribeAlarmHistory", req)
                .await?;
            let items = out["AlarmHistoryItems"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            match a.output {
                OutputFormat::Json => println!("{}", serde_json::to_string_pretty(&items)?),
                OutputFormat::Table => {
                    let rows: Vec<Vec<String>> = items
                        .iter()
                        .map(|x| {
                            vec![
                                crate::time_arg::format_ms(x["Timestamp"].as_i64().unwrap_or(0)),
                                x["AlarmName"].as_str().unwrap_or("").to_string(),
                                x["HistoryItemType"].as_str().unwrap_or("").to_string(),
                                x["HistorySummary"].as_str().unwrap_or("").to_string(),
                            ]
                        })
                        .collect();
                    print_rows(&rows, &["TIME", "ALARM", "TYPE", "SUMMARY"]);
                }
            }
            Ok(())
        }
        AlarmsCommand::Webhook(a) => {
            if !a.url.starts_with("http://") {
                bail!("webhook URLs must be http:// (put a TLS proxy in front for https)");
            }
            let out = a
                .connect
                .connect()?
                .call(
                    "PutActionTarget",
                    json!({ "name": a.name, "type": "webhook", "url": a.url, "secret": a.secret }),
                )
                .await?;
            println!("{}", out["arn"].as_str().unwrap_or(""));
            Ok(())
        }
        AlarmsCommand::Vault(a) => {
            if !a.destination.starts_with("http://") {
                bail!("vault endpoints must be http:// (put a TLS proxy in front for https)");
            }
            let out = a
                .connect
                .connect()?
                .call(
                    "PutActionTarget",
                    json!({
                        "name": a.name,
                        "type": "vault",
                        "endpoint": a.destination,
                        "region": a.destination_region,
                        "accessKeyId": a.access_key_id,
                        "secretAccessKey": a.secret_access_key,
                        "logGroupName": a.group,
                        "logStreamName": a.stream,
                    }),
                )
                .await?;
            println!("{}", out["arn"].as_str().unwrap_or(""));
            Ok(())
        }
        AlarmsCommand::Command(a) => {
            let out = a
                .connect
                .connect()?
                .call(
                    "PutActionTarget",
                    json!({ "name": a.name, "type": "command", "argv": a.argv, "timeoutMs": a.timeout * 1000 }),
                )
                .await?;
            println!("{}", out["arn"].as_str().unwrap_or(""));
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::{CommandFactory, Parser};

    #[derive(Parser)]
    struct T {
        #[command(subcommand)]
        c: AlarmsCommand,
    }

    #[test]
    fn vault_target_arguments_parse_beside_the_connection_flags() {
        T::command().debug_assert();
        let t = T::try_parse_from([
            "t",
            "vault",
            "central",
            "http://central:4740",
            "--group",
            "g",
            "--stream",
            "s",
            "--access-key-id",
            "AKID",
            "--secret-access-key",
            "secret",
            "--endpoint",
            "http://edge:4740",
        ])
        .unwrap();
        let AlarmsCommand::Vault(v) = t.c else {
            panic!("not the vault command")
        };
        assert_eq!(v.destination, "http://central:4740");
        assert_eq!(v.connect.endpoint, "http://edge:4740");
        assert_eq!(v.destination_region, "us-east-1");
    }

    #[test]
    fn rules_install_takes_a_period() {
        #[derive(Parser)]
        struct R {
            #[command(subcommand)]
            c: RulesCommand,
        }
        R::command().debug_assert();
        let r = R::try_parse_from(["r", "install", "cis-aws", "--group", "g", "--period", "10"])
            .unwrap();
        let RulesCommand::Install(i) = r.c else {
            panic!("not install")
        };
        assert_eq!(i.period, Some(10));
    }
}
