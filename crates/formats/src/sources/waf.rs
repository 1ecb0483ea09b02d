//! AWS WAF (v2) logs: one JSON object per request, newline-delimited as delivered (pretty
//! printed objects are accepted too). The raw is the object's exact span; `parsed` is the
//! object. A record without `webaclId`, `timestamp` or `httpRequest` is rejected.

use serde_json::Value;
use trailvault_model::{Normalized, Outcome, Resource};

use crate::json::{for_each_value, i64_of, nonempty, owned, reject_value, str_of};
use crate::{activity_from_http_method, ParseOutput};

pub fn parse(input: &[u8]) -> ParseOutput {
    let mut out = ParseOutput::default();
    for_each_value(input, &mut out, |raw, offset, line, out| {
        let value = match serde_json::from_str::<Value>(raw.get()) {
            Ok(v) => v,
            Err(e) => return reject_value(out, raw, offset, line, format!("malformed json: {e}")),
        };
        out.keep(raw.get(), offset, line, normalize(&value));
    });
    out
}

/// `arn:aws:wafv2:<region>:<account>:…` → (region, account).
fn arn_region_account(arn: &str) -> (Option<&str>, Option<&str>) {
    let mut parts = arn.split(':');
    let region = parts.nth(3).filter(|s| !s.is_empty());
    let account = parts.next().filter(|s| !s.is_empty());
    (region, account)
}

/// `parsed` is left empty: the raw record is itself the JSON object (docs/formats.md).
pub fn normalize(value: &Value) -> Result<Normalized, String> {
    let acl = nonempty(value, "webaclId").ok_or("waf record has no webaclId")?;
    let time_ms = i64_of(value, "timestamp").ok_or("waf record has no numeric timestamp")?;
    let req = value
        .get("httpRequest")
        .filter(|r| r.is_object())
        .ok_or("waf record has no httpRequest object")?;
    let (region, account) = arn_region_account(acl);
    let method = nonempty(req, "httpMethod");
    let action = str_of(value, "action");
    let blocked = matches!(action, Some("BLOCK" | "CAPTCHA" | "CHALLENGE"));
    let user_agent = req
        .get("headers")
        .and_then(Value::as_array)
        .and_then(|hs| {
            hs.iter()
                .find(|h| str_of(h, "name").is_some_and(|n| n.eq_ignore_ascii_case("user-agent")))
        })
        .and_then(|h| nonempty(h, "value"));
    let mut resources = vec![Resource {
        id: Some(acl.to_owned()),
        kind: Some("AWS::WAFv2::WebACL".into()),
        owner_account: owned(account),
    }];
    if let Some(src) = nonempty(value, "httpSourceId") {
        resources.push(Resource {
            id: Some(src.to_owned()),
            kind: owned(nonempty(value, "httpSourceName")),
            owner_account: None,
        });
    }
    Ok(Normalized {
        source: "waf".into(),
        time_ms: Some(time_ms),
        account: owned(account),
        region: owned(region),
        service: Some("wafv2.amazonaws.com".into()),
        action: owned(method),
        activity: method.map(activity_from_http_method),
        src_ip: owned(nonempty(req, "clientIp")),
        user_agent: owned(user_agent),
        resources,
        outcome: Some(match action {
            Some(_) if blocked => Outcome::Failure,
            Some("ALLOW" | "COUNT") => Outcome::Success,
            _ => Outcome::Unknown,
        }),
        error_code: if blocked {
            owned(nonempty(value, "terminatingRuleId"))
        } else {
            None
        },
        request_id: owned(nonempty(req, "requestId")),
        ..Normalized::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_and_missing_acl() {
        let out = parse(br#"{"timestamp":1,"webaclId":"arn:aws:wafv2:us-east-1:123456789012:regional/webacl/a/b","action":"BLOCK","terminatingRuleId":"r1","httpRequest":{"clientIp":"192.0.2.1","httpMethod":"POST","headers":[{"name":"User-Agent","value":"x"}]}}
{"timestamp":1,"httpRequest":{}}"#);
        assert_eq!(out.records.len(), 1);
        assert_eq!(out.rejections.len(), 1);
        let n = &out.records[0].normalized;
        assert_eq!(n.outcome, Some(Outcome::Failure));
        assert_eq!(n.error_code.as_deref(), Some("r1"));
        assert_eq!(n.account.as_deref(), Some("123456789012"));
        assert_eq!(n.user_agent.as_deref(), Some("x"));
    }
}
