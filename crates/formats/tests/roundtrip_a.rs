//! Property tests: render S3 access, VPC flow and ALB lines from random fields, parse them
//! back, and check the fields and the byte-exact raw survive; and arbitrary bytes never make
//! any parser of this suite panic or lose a line.

use proptest::prelude::*;
use trailvault_formats::sources::{elb, s3_access, vpc_flow};
use trailvault_formats::{parse, Format};

/// A token without spaces or quotes, as unquoted fields hold.
fn token() -> impl Strategy<Value = String> {
    "[A-Za-z0-9._:/+=-]{1,24}".prop_filter("not a lone dash", |s| s != "-")
}

/// Text for quoted fields: spaces allowed, no quotes or backslashes.
fn quoted() -> impl Strategy<Value = String> {
    "[A-Za-z0-9 ._:/;()=-]{1,40}"
}

fn ipv4() -> impl Strategy<Value = String> {
    (any::<u8>(), any::<u8>(), any::<u8>(), any::<u8>())
        .prop_map(|(a, b, c, d)| format!("{a}.{b}.{c}.{d}"))
}

fn clf_time() -> impl Strategy<Value = (String, i64)> {
    (
        2006i64..2040,
        0usize..12,
        1u32..29,
        0u32..24,
        0u32..60,
        0u32..60,
    )
        .prop_map(|(y, m, d, h, mi, s)| {
            const MON: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let text = format!("{d:02}/{}/{y}:{h:02}:{mi:02}:{s:02} +0000", MON[m]);
            let iso = format!("{y}-{:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z", m + 1);
            (text, parse_iso(&iso))
        })
}

fn parse_iso(s: &str) -> i64 {
    let out = parse(
        Format::JsonLines,
        format!("{{\"time\":\"{s}\"}}").as_bytes(),
    );
    out.records[0].normalized.time_ms.unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn s3_access_line_round_trips(
        owner in "[0-9a-f]{64}",
        bucket in "[a-z0-9-]{3,20}",
        (time, time_ms) in clf_time(),
        ip in ipv4(),
        op_method in prop::sample::select(vec!["GET", "PUT", "DELETE", "HEAD", "POST"]),
        key in token(),
        status in 100u16..600,
        bytes in 0i64..1_000_000_000,
        total_ms in 0i64..100_000,
        ua in quoted(),
        extra_count in 0usize..12,
    ) {
        let op = format!("REST.{op_method}.OBJECT");
        let uri = format!("{op_method} /{bucket}/{key} HTTP/1.1");
        let bytes_s = bytes.to_string();
        let status_s = status.to_string();
        let total_s = total_ms.to_string();
        let mut values: Vec<&str> = vec![
            &owner, &bucket, &time, &ip, "-", "REQID", &op, &key, &uri, &status_s, "-",
            &bytes_s, "-", &total_s, "-", "-", &ua,
        ];
        let tail = ["-", "hostid", "SigV4", "ECDHE", "AuthHeader", "h.example", "TLSv1.3", "-", "Yes", "us-east-1", "future"];
        values.extend(&tail[..extra_count.min(tail.len())]);
        let line = s3_access::render(&values);
        let out = parse(Format::S3Access, line.as_bytes());
        prop_assert!(out.rejections.is_empty(), "{:?}", out.rejections);
        let r = &out.records[0];
        prop_assert_eq!(&r.raw, &line);
        let n = &r.normalized;
        prop_assert_eq!(n.time_ms, Some(time_ms));
        prop_assert_eq!(n.src_ip.as_deref(), Some(ip.as_str()));
        prop_assert_eq!(n.action.as_deref(), Some(op.as_str()));
        prop_assert_eq!(n.bytes, Some(bytes));
        prop_assert_eq!(n.duration_ms, Some(total_ms as f64));
        // `-` is the log's marker for "no value".
        let want_ua = (ua != "-").then_some(ua.as_str());
        prop_assert_eq!(n.user_agent.as_deref(), want_ua);
        let parsed = n.parsed.as_ref().unwrap().to_value();
        prop_assert_eq!(parsed["key"].as_str(), Some(key.as_str()));
        prop_assert_eq!(parsed["request_uri"].as_str(), Some(uri.as_str()));
    }

    #[test]
    fn vpc_flow_line_round_trips(
        order in Just(vpc_flow::DEFAULT_FIELDS.to_vec()).prop_shuffle(),
        account in "[0-9]{12}",
        src in ipv4(),
        dst in ipv4(),
        sport in any::<u16>(),
        dport in any::<u16>(),
        bytes in 0i64..1_000_000_000,
        start in 1_400_000_000i64..2_000_000_000,
        len in 0i64..600,
        action in prop::sample::select(vec!["ACCEPT", "REJECT"]),
    ) {
        let (sport_s, dport_s, bytes_s) = (sport.to_string(), dport.to_string(), bytes.to_string());
        let (start_s, end_s) = (start.to_string(), (start + len).to_string());
        let value_of = |name: &str| -> String {
            match name {
                "version" => "2".into(),
                "account-id" => account.clone(),
                "interface-id" => "eni-0123".into(),
                "srcaddr" => src.clone(),
                "dstaddr" => dst.clone(),
                "srcport" => sport_s.clone(),
                "dstport" => dport_s.clone(),
                "protocol" => "6".into(),
                "packets" => "3".into(),
                "bytes" => bytes_s.clone(),
                "start" => start_s.clone(),
                "end" => end_s.clone(),
                "action" => action.to_string(),
                _ => "OK".into(),
            }
        };
        let values: Vec<String> = order.iter().map(|n| value_of(n)).collect();
        let pairs: Vec<(&str, &str)> = order.iter().zip(&values).map(|(n, v)| (*n, v.as_str())).collect();
        let text = vpc_flow::render(&pairs);
        let out = parse(Format::VpcFlow, text.as_bytes());
        prop_assert!(out.rejections.is_empty(), "{:?}", out.rejections);
        prop_assert_eq!(out.skipped, 1);
        let n = &out.records[0].normalized;
        prop_assert_eq!(n.account.as_deref(), Some(account.as_str()));
        prop_assert_eq!(n.src_ip.as_deref(), Some(src.as_str()));
        prop_assert_eq!(n.dst_ip.as_deref(), Some(dst.as_str()));
        prop_assert_eq!(n.src_port, Some(sport));
        prop_assert_eq!(n.dst_port, Some(dport));
        prop_assert_eq!(n.bytes, Some(bytes));
        prop_assert_eq!(n.time_ms, Some(start * 1000));
        prop_assert_eq!(n.duration_ms, Some(len as f64 * 1000.0));
        prop_assert_eq!(n.action.as_deref(), Some(action));
        prop_assert_eq!(out.records[0].raw.as_str(), text.lines().nth(1).unwrap());
    }

    #[test]
    fn alb_line_round_trips(
        kind in prop::sample::select(vec!["http", "https", "h2", "ws", "wss", "grpcs"]),
        client in ipv4(),
        cport in any::<u16>(),
        v6 in any::<bool>(),
        status in 100u16..600,
        received in 0i64..1_000_000,
        sent in 0i64..1_000_000,
        method in prop::sample::select(vec!["GET", "POST", "PUT", "DELETE", "PATCH"]),
        path in "/[a-z0-9/]{0,20}",
        ua in quoted(),
        trace in "Root=1-[0-9a-f]{8}-[0-9a-f]{24}",
        fields in 18usize..34,
    ) {
        let client_field = if v6 { format!("[2001:db8::{cport:x}]:{cport}") } else { format!("{client}:{cport}") };
        let request = format!("{method} https://example.com:443{path} HTTP/1.1");
        let (status_s, rec_s, sent_s) = (status.to_string(), received.to_string(), sent.to_string());
        let mut values: Vec<&str> = vec![
            kind, "2024-01-01T00:00:00.123456Z", "app/lb/1", &client_field, "10.0.0.1:80",
            "0.001", "0.002", "0.003", &status_s, &status_s, &rec_s, &sent_s, &request, &ua,
            "-", "-", "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/t/1", &trace,
        ];
        let rest = ["example.com", "-", "1", "2024-01-01T00:00:00.120000Z", "forward", "-", "-",
            "10.0.0.1:80", "200", "-", "-", "TID_1", "host", "/uri", "TransformSuccess", "future"];
        values.extend(&rest[..fields - 18]);
        let line = elb::render_alb(&values);
        let out = parse(Format::Alb, line.as_bytes());
        prop_assert!(out.rejections.is_empty(), "{:?}", out.rejections);
        let r = &out.records[0];
        prop_assert_eq!(&r.raw, &line);
        let n = &r.normalized;
        prop_assert_eq!(n.src_port, Some(cport));
        prop_assert_eq!(n.action.as_deref(), Some(method));
        prop_assert_eq!(n.bytes, Some(received + sent));
        // "-" is ALB's mark of an absent value, also for the user agent.
        prop_assert_eq!(n.user_agent.as_deref(), Some(ua.as_str()).filter(|u| *u != "-"));
        prop_assert_eq!(n.source_event_id.as_deref(), Some(trace.as_str()));
        prop_assert_eq!(n.time_ms, Some(1_704_067_200_123));
    }

    #[test]
    fn arbitrary_bytes_never_panic_and_lines_are_accounted(data in prop::collection::vec(any::<u8>(), 0..2048)) {
        for format in [Format::S3Access, Format::Alb, Format::ElbClassic, Format::Nlb, Format::VpcFlow, Format::Cloudfront, Format::Plain] {
            let out = parse(format, &data);
            let lines = data.split(|b| *b == b'\n').count() as u64 - u64::from(data.ends_with(b"\n") || data.is_empty());
            prop_assert_eq!(out.records_read() + out.skipped, lines, "{}", format);
        }
        for format in [Format::Cloudtrail, Format::CloudtrailDigest, Format::Waf, Format::NetworkFirewall, Format::CloudwatchSubscription, Format::JsonLines] {
            let _ = parse(format, &data);
        }
        let _ = trailvault_formats::detect(&String::from_utf8_lossy(&data), &data);
    }
}
