//! Amazon S3 server access logs: one space-delimited line per request, `-` for missing values,
//! the time in brackets, the request URI, referer and user agent in double quotes.
//!
//! AWS appends new fields at the end, so lines with fewer fields than today's 27 (down to the
//! 17 every log has ever carried, through the user agent) and with more (future fields, kept in
//! `parsed.extra`) are accepted.

use std::sync::OnceLock;

use trailvault_model::{Activity, Normalized, ObjectLayout, Outcome, Resource};

use crate::activity_from_http_method;
use crate::text::{
    fields_json, is_ip, line_record, line_str, lines, opt, opt_f64, opt_i64, opt_string,
    parse_clf_time_ms, reject_line, split_fields, url_decode,
};
use crate::ParseOutput;

/// Field names in the order AWS writes them (the S3 user guide's names, snake_cased).
pub const FIELDS: [&str; 27] = [
    "bucket_owner",
    "bucket",
    "time",
    "remote_ip",
    "requester",
    "request_id",
    "operation",
    "key",
    "request_uri",
    "http_status",
    "error_code",
    "bytes_sent",
    "object_size",
    "total_time",
    "turn_around_time",
    "referer",
    "user_agent",
    "version_id",
    "host_id",
    "signature_version",
    "cipher_suite",
    "authentication_type",
    "host_header",
    "tls_version",
    "access_point_arn",
    "acl_required",
    "source_region",
];

/// Fewest fields accepted: everything through `user_agent`.
pub const FIELDS_MIN: usize = 17;

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    let mut fields = Vec::with_capacity(32);
    for line in lines(input) {
        if line.bytes.iter().all(u8::is_ascii_whitespace) {
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
        if let Err(reason) = split_fields(s, true, &mut fields) {
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

fn normalize(f: &[&str]) -> Result<Normalized, String> {
    if f.len() < FIELDS_MIN {
        return Err(format!(
            "s3 access log line has {} fields, fewer than the {FIELDS_MIN} every version has",
            f.len()
        ));
    }
    let time_ms = parse_clf_time_ms(f[2]).ok_or_else(|| {
        format!(
            "s3 access log time {:?} is not [dd/Mon/yyyy:hh:mm:ss +zzzz]",
            f[2]
        )
    })?;
    let status: Option<u16> = opt(f[9])
        .map(|s| {
            s.parse()
                .map_err(|_| format!("http status {s:?} is not a number"))
        })
        .transpose()?;
    let method = opt(f[8]).and_then(|r| r.split(' ').next());
    // The operation is `REST.<METHOD>.<RESOURCE>` (or WEBSITE., BATCH., S3.); its middle part is
    // the HTTP method for REST calls.
    let op_method = opt(f[6]).and_then(|op| op.split('.').nth(1));
    let activity = op_method
        .or(method)
        .map(activity_from_http_method)
        .unwrap_or(Activity::Other);
    let requester = opt(f[4]);
    let mut resources = Vec::with_capacity(2);
    if let Some(bucket) = opt(f[1]) {
        resources.push(Resource {
            id: Some(format!("arn:aws:s3:::{bucket}")),
            kind: Some("AWS::S3::Bucket".into()),
            owner_account: None,
        });
        if let Some(key) = opt(f[7]) {
            resources.push(Resource {
                id: Some(format!("arn:aws:s3:::{bucket}/{}", url_decode(key))),
                kind: Some("AWS::S3::Object".into()),
                owner_account: None,
            });
        }
    }
    static LAYOUT: OnceLock<ObjectLayout> = OnceLock::new();
    let parsed = fields_json(
        LAYOUT.get_or_init(|| ObjectLayout::with_extra(&FIELDS, "extra")),
        f,
    );
    Ok(Normalized {
        source: "s3-access".into(),
        time_ms: Some(time_ms),
        service: Some("s3.amazonaws.com".into()),
        action: opt_string(f[6]),
        activity: Some(activity),
        actor_principal_id: requester.map(str::to_owned),
        actor_arn: requester
            .filter(|r| r.starts_with("arn:"))
            .map(str::to_owned),
        src_ip: opt(f[3]).filter(|ip| is_ip(ip)).map(str::to_owned),
        user_agent: opt_string(f[16]),
        resources,
        outcome: Some(match status {
            Some(s) if s < 400 => Outcome::Success,
            Some(_) => Outcome::Failure,
            None => Outcome::Unknown,
        }),
        error_code: opt_string(f[10]),
        request_id: opt_string(f[5]),
        read_only: Some(activity == Activity::Read),
        bytes: opt_i64(f[11]),
        duration_ms: opt_f64(f[13]),
        parsed: Some(parsed),
        ..Normalized::default()
    })
}

/// Renders a line from field values (the inverse of [`parse`], for tests and tools). Values
/// must not contain the delimiters of their field.
pub fn render(values: &[&str]) -> String {
    let mut line = String::new();
    for (i, v) in values.iter().enumerate() {
        if i > 0 {
            line.push(' ');
        }
        match i {
            2 => {
                line.push('[');
                line.push_str(v);
                line.push(']');
            }
            8 | 15 | 16 => {
                line.push('"');
                line.push_str(v);
                line.push('"');
            }
            _ => line.push_str(v),
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn older_and_newer_lines() {
        let base = r#"owner bkt [06/Feb/2019:00:00:38 +0000] 192.0.2.3 arn:aws:iam::123456789012:user/a REQ REST.PUT.OBJECT a%20b.txt "PUT /bkt/a%20b.txt HTTP/1.1" 403 AccessDenied 243 - 12 - "-" "curl/8""#;
        let out = parse(base.as_bytes());
        assert_eq!(out.records.len(), 1, "{:?}", out.rejections);
        let n = &out.records[0].normalized;
        assert_eq!(n.activity, Some(Activity::Create));
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(
            n.actor_arn.as_deref(),
            Some("arn:aws:iam::123456789012:user/a")
        );
        assert_eq!(
            n.resources[1].id.as_deref(),
            Some("arn:aws:s3:::bkt/a b.txt")
        );
        assert_eq!(n.duration_ms, Some(12.0));
        let cut = &base[..base.len() - 9];
        assert_eq!(parse(cut.as_bytes()).rejections.len(), 1);
        let bad_time = base.replace("06/Feb", "06/Fob");
        assert_eq!(parse(bad_time.as_bytes()).rejections.len(), 1);
    }
}
