//! Elastic Load Balancing access logs: Classic, Application (ALB) and Network (NLB, TLS
//! listeners). Space-delimited, quoted where a value may hold spaces, `-` for missing.
//!
//! The `Enable AccessLog for ELB: …` line ELB writes when logging is turned on is not a record:
//! it is counted in `skipped`. Lines with fewer trailing fields than today's (older logs) are
//! accepted down to a per-type minimum; extra trailing fields (future additions) are kept in
//! `parsed.extra`.

use std::sync::OnceLock;

use trailvault_model::{Normalized, ObjectLayout, Outcome, Resource};

use crate::activity_from_http_method;
use crate::text::{
    fields_json, line_record, line_str, lines, opt, opt_f64, opt_i64, opt_string, parse_iso8601_ms,
    reject_line, split_fields, split_host_port,
};
use crate::ParseOutput;

/// Classic Load Balancer fields in log order.
pub const CLASSIC_FIELDS: [&str; 15] = [
    "timestamp",
    "elb",
    "client_port",
    "backend_port",
    "request_processing_time",
    "backend_processing_time",
    "response_processing_time",
    "elb_status_code",
    "backend_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
];
/// Classic lines from before user agents were logged end at `request`.
const CLASSIC_FIELDS_MIN: usize = 12;

/// Application Load Balancer fields in log order, including the 2025 additions.
pub const ALB_FIELDS: [&str; 33] = [
    "type",
    "time",
    "elb",
    "client_port",
    "target_port",
    "request_processing_time",
    "target_processing_time",
    "response_processing_time",
    "elb_status_code",
    "target_status_code",
    "received_bytes",
    "sent_bytes",
    "request",
    "user_agent",
    "ssl_cipher",
    "ssl_protocol",
    "target_group_arn",
    "trace_id",
    "domain_name",
    "chosen_cert_arn",
    "matched_rule_priority",
    "request_creation_time",
    "actions_executed",
    "redirect_url",
    "error_reason",
    "target_port_list",
    "target_status_code_list",
    "classification",
    "classification_reason",
    "conn_trace_id",
    "transformed_host",
    "transformed_uri",
    "request_transform_status",
];
/// The first ALB logs (2016) ended at `trace_id`.
const ALB_FIELDS_MIN: usize = 18;
/// Values of the ALB `type` field.
const ALB_TYPES: [&str; 6] = ["http", "https", "h2", "grpcs", "ws", "wss"];

/// Network Load Balancer (TLS listener) fields in log order.
pub const NLB_FIELDS: [&str; 22] = [
    "type",
    "version",
    "time",
    "elb",
    "listener",
    "client_port",
    "destination_port",
    "connection_time",
    "tls_handshake_time",
    "received_bytes",
    "sent_bytes",
    "incoming_tls_alert",
    "chosen_cert_arn",
    "chosen_cert_serial",
    "tls_cipher",
    "tls_protocol_version",
    "tls_named_group",
    "domain_name",
    "alpn_fe_protocol",
    "alpn_be_protocol",
    "alpn_client_preference_list",
    "tls_connection_creation_time",
];
/// NLB log version 1.0 ended at `domain_name`.
const NLB_FIELDS_MIN: usize = 18;

const CONTROL_PREFIX: &[u8] = b"Enable AccessLog for ELB:";

type Normalizer = fn(&[&str]) -> Result<Normalized, String>;

fn parse_lines(input: &[u8], normalize: Normalizer) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut fields = Vec::with_capacity(40);
    for line in lines(input) {
        if line.bytes.iter().all(u8::is_ascii_whitespace) || line.bytes.starts_with(CONTROL_PREFIX)
        {
            out.skipped += 1;
            continue;
        }
        let s = match line_str(&line) {
            Ok(s) => s,
            Err(reason) => {
                reject_line(&mut out, &line, reason);
                continue;
            }
        };
        if let Err(reason) = split_fields(s, false, &mut fields) {
            reject_line(&mut out, &line, reason);
            continue;
        }
        match normalize(&fields) {
            Ok(n) => out.records.push(line_record(&line, s, n)),
            Err(reason) => reject_line(&mut out, &line, reason),
        }
    }
    out
}

pub fn parse_classic(input: &[u8]) -> ParseOutput {
    parse_lines(input, normalize_classic)
}

pub fn parse_alb(input: &[u8]) -> ParseOutput {
    parse_lines(input, normalize_alb)
}

pub fn parse_nlb(input: &[u8]) -> ParseOutput {
    parse_lines(input, normalize_nlb)
}

fn classic_layout() -> &'static ObjectLayout {
    static LAYOUT: OnceLock<ObjectLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| ObjectLayout::with_extra(&CLASSIC_FIELDS, "extra"))
}

fn alb_layout() -> &'static ObjectLayout {
    static LAYOUT: OnceLock<ObjectLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| ObjectLayout::with_extra(&ALB_FIELDS, "extra"))
}

fn nlb_layout() -> &'static ObjectLayout {
    static LAYOUT: OnceLock<ObjectLayout> = OnceLock::new();
    LAYOUT.get_or_init(|| ObjectLayout::with_extra(&NLB_FIELDS, "extra"))
}

fn time(field: &str) -> Result<i64, String> {
    parse_iso8601_ms(field).ok_or_else(|| format!("time {field:?} is not an ISO-8601 time"))
}

fn status(field: &str) -> Result<Option<u16>, String> {
    opt(field)
        .map(|s| {
            s.parse()
                .map_err(|_| format!("status code {s:?} is not a number"))
        })
        .transpose()
}

fn outcome_of(status: Option<u16>) -> Outcome {
    match status {
        Some(s) if s < 400 => Outcome::Success,
        Some(_) => Outcome::Failure,
        None => Outcome::Unknown,
    }
}

/// Sum of processing times in seconds (`-1` means "not dispatched" and is left out), in ms.
fn processing_ms(fields: &[&str]) -> Option<f64> {
    let parts: Vec<f64> = fields
        .iter()
        .filter_map(|f| opt_f64(f))
        .filter(|v| *v >= 0.0)
        .collect();
    (!parts.is_empty()).then(|| parts.iter().sum::<f64>() * 1000.0)
}

fn total_bytes(received: &str, sent: &str) -> Option<i64> {
    match (opt_i64(received), opt_i64(sent)) {
        (None, None) => None,
        (r, s) => Some(r.unwrap_or(0).saturating_add(s.unwrap_or(0))),
    }
}

/// The method of a `"METHOD URL PROTOCOL"` request field; TCP listeners write `- - - `.
fn method_of(request: &str) -> Option<&str> {
    request.split(' ').next().and_then(opt)
}

fn resource(id: Option<&str>, kind: &str) -> Option<Resource> {
    id.map(|id| Resource {
        id: Some(id.to_owned()),
        kind: Some(kind.to_owned()),
        owner_account: None,
    })
}

fn normalize_classic(f: &[&str]) -> Result<Normalized, String> {
    if f.len() < CLASSIC_FIELDS_MIN {
        return Err(format!(
            "classic load balancer line has {} fields, expected at least {CLASSIC_FIELDS_MIN}",
            f.len()
        ));
    }
    let elb_status = status(f[7])?;
    let method = method_of(f[11]);
    let (src_ip, src_port) = split_host_port(f[2]);
    let (dst_ip, dst_port) = split_host_port(f[3]);
    Ok(Normalized {
        source: "elb-classic".into(),
        time_ms: Some(time(f[0])?),
        service: Some("elasticloadbalancing.amazonaws.com".into()),
        action: method.map(str::to_owned),
        activity: method.map(activity_from_http_method),
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        user_agent: f.get(12).and_then(|s| opt_string(s)),
        resources: resource(opt(f[1]), "AWS::ElasticLoadBalancing::LoadBalancer")
            .into_iter()
            .collect(),
        outcome: Some(outcome_of(elb_status)),
        bytes: total_bytes(f[9], f[10]),
        duration_ms: processing_ms(&f[4..7]),
        parsed: Some(fields_json(classic_layout(), f)),
        ..Normalized::default()
    })
}

fn normalize_alb(f: &[&str]) -> Result<Normalized, String> {
    if f.len() < ALB_FIELDS_MIN {
        return Err(format!(
            "application load balancer line has {} fields, expected at least {ALB_FIELDS_MIN}",
            f.len()
        ));
    }
    if !ALB_TYPES.contains(&f[0]) {
        return Err(format!(
            "application load balancer type {:?} is not one of {ALB_TYPES:?}",
            f[0]
        ));
    }
    let elb_status = status(f[8])?;
    let method = method_of(f[12]);
    let (src_ip, src_port) = split_host_port(f[3]);
    let (dst_ip, dst_port) = split_host_port(f[4]);
    let mut resources: Vec<Resource> =
        resource(opt(f[2]), "AWS::ElasticLoadBalancingV2::LoadBalancer")
            .into_iter()
            .collect();
    resources.extend(resource(
        opt(f[16]),
        "AWS::ElasticLoadBalancingV2::TargetGroup",
    ));
    Ok(Normalized {
        source: "alb".into(),
        time_ms: Some(time(f[1])?),
        service: Some("elasticloadbalancing.amazonaws.com".into()),
        action: method.map(str::to_owned),
        activity: method.map(activity_from_http_method),
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        user_agent: opt_string(f[13]),
        resources,
        outcome: Some(outcome_of(elb_status)),
        error_code: f.get(24).and_then(|s| opt_string(s)),
        source_event_id: opt_string(f[17]),
        bytes: total_bytes(f[10], f[11]),
        duration_ms: processing_ms(&f[5..8]),
        parsed: Some(fields_json(alb_layout(), f)),
        ..Normalized::default()
    })
}

fn normalize_nlb(f: &[&str]) -> Result<Normalized, String> {
    if f.len() < NLB_FIELDS_MIN {
        return Err(format!(
            "network load balancer line has {} fields, expected at least {NLB_FIELDS_MIN}",
            f.len()
        ));
    }
    if f[0] != "tls" {
        return Err(format!(
            "network load balancer type {:?} is not \"tls\"",
            f[0]
        ));
    }
    let (src_ip, src_port) = split_host_port(f[5]);
    let (dst_ip, dst_port) = split_host_port(f[6]);
    let mut resources: Vec<Resource> =
        resource(opt(f[3]), "AWS::ElasticLoadBalancingV2::LoadBalancer")
            .into_iter()
            .collect();
    resources.extend(resource(opt(f[12]), "AWS::CertificateManager::Certificate"));
    // A missing handshake time means the TLS handshake did not complete.
    let outcome = if opt(f[8]).is_some() {
        Outcome::Success
    } else {
        Outcome::Failure
    };
    Ok(Normalized {
        source: "nlb".into(),
        time_ms: Some(time(f[2])?),
        service: Some("elasticloadbalancing.amazonaws.com".into()),
        src_ip,
        src_port,
        dst_ip,
        dst_port,
        resources,
        outcome: Some(outcome),
        error_code: opt_string(f[11]),
        bytes: total_bytes(f[9], f[10]),
        duration_ms: opt_f64(f[7]),
        parsed: Some(fields_json(nlb_layout(), f)),
        ..Normalized::default()
    })
}

/// Renders an ALB line from field values (for tests and tools): the fields AWS quotes are
/// quoted. Values must not contain `"` or, unquoted, spaces.
pub fn render_alb(values: &[&str]) -> String {
    const QUOTED: [usize; 12] = [12, 13, 17, 18, 19, 22, 23, 24, 25, 26, 27, 28];
    let mut line = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        if QUOTED.contains(&i) {
            line.push('"');
            line.push_str(v);
            line.push('"');
        } else {
            line.push_str(v);
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn control_line_is_skipped_not_rejected() {
        let out = parse_alb(b"Enable AccessLog for ELB: app/x/1 at 2025-05-30T16:47:00.781Z\n\n");
        assert_eq!(
            (out.records.len(), out.rejections.len(), out.skipped),
            (0, 0, 2)
        );
    }

    #[test]
    fn tcp_classic_line() {
        let out = parse_classic(
            br#"2015-05-13T23:39:43.945958Z my-lb 192.0.2.1:2817 10.0.0.1:80 0.001 0.002 0.003 - - 10 20 "- - - " "-" - -"#,
        );
        assert_eq!(out.records.len(), 1, "{:?}", out.rejections);
        let n = &out.records[0].normalized;
        assert_eq!(n.action, None);
        assert_eq!(n.outcome, Some(Outcome::Unknown));
        assert_eq!(n.bytes, Some(30));
        assert!((n.duration_ms.unwrap() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn nlb_wrong_type_is_rejected() {
        assert_eq!(
            parse_nlb(b"udp 2.0 2018-12-20T02:59:40 a b c d e f g h i j k l m n o p q r s t u")
                .rejections
                .len(),
            1
        );
    }
}
