//! The closed set of source formats, each with a stable string id used on the command line
//! (`--format`), in `Normalized::source`, and in log-group names.

use std::fmt;
use std::str::FromStr;

/// A source format. The string ids (see [`Format::id`]) are stable: they are stored with every
/// normalized record and accepted by `--format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Format {
    Cloudtrail,
    CloudtrailDigest,
    S3Access,
    ElbClassic,
    Alb,
    Nlb,
    Cloudfront,
    VpcFlow,
    RedshiftConnection,
    RedshiftUser,
    RedshiftActivity,
    RdsMysqlAudit,
    RdsPostgresAudit,
    Config,
    Cur,
    ApacheCombined,
    Iis,
    Syslog,
    WindowsEvent,
    Waf,
    NetworkFirewall,
    CloudwatchSubscription,
    JsonLines,
    Plain,
}

impl Format {
    /// Every format, in declaration order.
    pub const ALL: [Format; 24] = [
        Format::Cloudtrail,
        Format::CloudtrailDigest,
        Format::S3Access,
        Format::ElbClassic,
        Format::Alb,
        Format::Nlb,
        Format::Cloudfront,
        Format::VpcFlow,
        Format::RedshiftConnection,
        Format::RedshiftUser,
        Format::RedshiftActivity,
        Format::RdsMysqlAudit,
        Format::RdsPostgresAudit,
        Format::Config,
        Format::Cur,
        Format::ApacheCombined,
        Format::Iis,
        Format::Syslog,
        Format::WindowsEvent,
        Format::Waf,
        Format::NetworkFirewall,
        Format::CloudwatchSubscription,
        Format::JsonLines,
        Format::Plain,
    ];

    /// The stable string id.
    pub fn id(self) -> &'static str {
        match self {
            Format::Cloudtrail => "cloudtrail",
            Format::CloudtrailDigest => "cloudtrail-digest",
            Format::S3Access => "s3-access",
            Format::ElbClassic => "elb-classic",
            Format::Alb => "alb",
            Format::Nlb => "nlb",
            Format::Cloudfront => "cloudfront",
            Format::VpcFlow => "vpc-flow",
            Format::RedshiftConnection => "redshift-connection",
            Format::RedshiftUser => "redshift-user",
            Format::RedshiftActivity => "redshift-activity",
            Format::RdsMysqlAudit => "rds-mysql-audit",
            Format::RdsPostgresAudit => "rds-postgres-audit",
            Format::Config => "config",
            Format::Cur => "cur",
            Format::ApacheCombined => "apache-combined",
            Format::Iis => "iis",
            Format::Syslog => "syslog",
            Format::WindowsEvent => "windows-event",
            Format::Waf => "waf",
            Format::NetworkFirewall => "network-firewall",
            Format::CloudwatchSubscription => "cloudwatch-subscription",
            Format::JsonLines => "json-lines",
            Format::Plain => "plain",
        }
    }

    /// True for formats whose files hold no events (the importer hands them elsewhere).
    pub fn is_digest(self) -> bool {
        self == Format::CloudtrailDigest
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.id())
    }
}

/// A format id that is not one of [`Format::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown format {0:?}; known formats: {known}", known = known_ids())]
pub struct UnknownFormat(pub String);

fn known_ids() -> String {
    Format::ALL.map(Format::id).join(", ")
}

impl FromStr for Format {
    type Err = UnknownFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase();
        Format::ALL
            .into_iter()
            .find(|f| f.id() == wanted)
            .ok_or_else(|| UnknownFormat(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for f in Format::ALL {
            assert!(seen.insert(f.id()), "duplicate id {}", f.id());
            assert_eq!(f.to_string().parse::<Format>(), Ok(f));
        }
        assert_eq!("ALB".parse::<Format>(), Ok(Format::Alb));
        let err = "nope".parse::<Format>().unwrap_err();
        assert!(err.to_string().contains("vpc-flow"));
    }
}
