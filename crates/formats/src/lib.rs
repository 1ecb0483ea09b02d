//! Parsers and normalizers for every log source trailvault accepts.
//!
//! Entry points: [`parse`] turns the (decompressed) bytes of one file into records, [`detect`]
//! names the format of a file from its object key and first bytes, [`key_info`] reads the
//! account, region and service out of an AWS delivery key, and [`is_skippable`] names the files
//! AWS writes next to logs that hold no records.
//!
//! Invariants: parsers never panic on input and never do I/O. A parser returns every record it
//! could read, each with its raw bytes kept byte-exact, plus one [`Rejection`] per record it
//! could not read (with where and why), so `records read = records stored + records rejected`;
//! lines that are not records by design (headers, control lines, blank lines, digest files)
//! are counted in [`ParseOutput::skipped`].

mod activity;
mod detect;
mod format;
mod json;
mod record;
pub mod sources;
mod text;

pub use activity::{activity_from_action, activity_from_http_method};
pub use detect::{detect, detect_content, detect_key, is_skippable, key_info, KeyInfo};
pub use format::{Format, UnknownFormat};
pub use record::{ParseOutput, ParsedRecord, Rejection, JSON_NATIVE_SOURCES};

/// Parses the whole decompressed content of one file in `format`.
///
/// Never panics and never fails as a whole: what cannot be read comes back as rejections.
pub fn parse(format: Format, input: &[u8]) -> ParseOutput {
    use sources::*;
    match format {
        Format::Cloudtrail => cloudtrail::parse(input),
        Format::CloudtrailDigest => cloudtrail::parse_digest(input),
        Format::S3Access => s3_access::parse(input),
        Format::ElbClassic => elb::parse_classic(input),
        Format::Alb => elb::parse_alb(input),
        Format::Nlb => elb::parse_nlb(input),
        Format::Cloudfront => cloudfront::parse(input),
        Format::VpcFlow => vpc_flow::parse(input),
        Format::Waf => waf::parse(input),
        Format::NetworkFirewall => network_firewall::parse(input),
        Format::CloudwatchSubscription => cloudwatch::parse(input),
        Format::JsonLines => json_lines::parse(input),
        Format::Plain => plain::parse(input),
        Format::RedshiftConnection => redshift::parse_connection(input),
        Format::RedshiftUser => redshift::parse_user(input),
        Format::RedshiftActivity => redshift::parse_activity(input),
        Format::RdsMysqlAudit => rds::parse_mysql_audit(input),
        Format::RdsPostgresAudit => rds::parse_postgres_audit(input),
        Format::Config => config::parse(input),
        Format::Cur => cur::parse(input),
        Format::ApacheCombined => host::parse_apache_combined(input),
        Format::Iis => host::parse_iis(input),
        Format::Syslog => host::parse_syslog(input),
        Format::WindowsEvent => host::parse_windows_event(input),
    }
}
