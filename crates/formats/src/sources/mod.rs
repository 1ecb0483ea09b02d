//! One module per source format.

pub mod cloudfront;
pub mod cloudtrail;
pub mod cloudwatch;
pub mod config;
pub mod cur;
pub mod elb;
pub mod host;
pub mod json_lines;
pub mod network_firewall;
pub mod plain;
pub mod rds;
pub mod redshift;
pub mod s3_access;
pub mod vpc_flow;
pub mod waf;
