//! CloudTrail's one-pass path (taken by `parse` for the common `{"Records":[…]}` shape) must
//! give exactly what the general two-pass parser gives, on every input: fixtures, generated
//! files and mutilated ones.

use std::path::Path;

use proptest::prelude::*;
use trailvault_formats::sources::cloudtrail::{parse, parse_general};

fn same_output(input: &[u8]) {
    assert_eq!(
        parse(input),
        parse_general(input),
        "input: {:?}",
        String::from_utf8_lossy(input)
    );
}

#[test]
fn fixtures_parse_the_same_both_ways() {
    let dirs = [
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/fixtures/cloudtrail"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/cloudtrail"),
    ];
    let mut files = 0;
    for dir in dirs {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let input = std::fs::read(&path).unwrap();
                same_output(&input);
                // Cut anywhere: every prefix too.
                for cut in (0..input.len()).step_by(97) {
                    same_output(&input[..cut]);
                }
                files += 1;
            }
        }
    }
    assert!(
        files >= 6,
        "expected the CloudTrail fixtures, found {files} files"
    );
}

/// Records of every kind the parsers treat differently.
const RECORDS: [&str; 9] = [
    r#"{"eventVersion":"1.08","eventTime":"2024-05-01T10:00:00Z","eventName":"GetObject","eventSource":"s3.amazonaws.com","userIdentity":{"type":"IAMUser","userName":"alice","accessKeyId":"AKIA1"},"requestParameters":{"bucketName":"b","key":"k \"q\" \\ é"},"sourceIPAddress":"192.0.2.1"}"#,
    r#"{ "eventVersion" : "1.10" ,
  "eventTime" : "2024-05-01T10:00:01Z", "eventName" : "DeleteBucket", "errorCode": "AccessDenied",
  "resources": [ {"ARN":"arn:aws:s3:::b","type":"AWS::S3::Bucket","accountId":"1"} ] }"#,
    // A member of an unexpected type: the tolerant path.
    r#"{"eventTime":"2024-05-01T10:00:02Z","eventName":7,"readOnly":"true","additionalEventData":{"bytesTransferredIn":5.0}}"#,
    // Not an object, no eventTime, a bad time: rejections.
    r#"17"#,
    r#"{"eventVersion":"1.0"}"#,
    r#"{"eventTime":"yesterday"}"#,
    r#"[ "2024-05-01T10:00:03Z" ]"#,
    r#"null"#,
    r#"{"eventTime":"2024-05-01T10:00:04Z","eventName":"\u00e9\ud83d\ude00","userIdentity":null}"#,
];

fn file_of(picks: &[(usize, usize)]) -> String {
    const SEPARATORS: [&str; 4] = ["", " ", "\n", "\r\n\t "];
    let records: Vec<String> = picks
        .iter()
        .map(|&(r, s)| format!("{}{}{}", SEPARATORS[s], RECORDS[r], SEPARATORS[(s + 1) % 4]))
        .collect();
    format!("{{\"Records\":[{}]}}\n", records.join(","))
}

proptest! {
    #[test]
    fn generated_files_parse_the_same_both_ways(
        picks in proptest::collection::vec((0..RECORDS.len(), 0..4usize), 0..8),
        cut in any::<prop::sample::Index>(),
        flip in any::<prop::sample::Index>(),
        byte in any::<u8>(),
    ) {
        let file = file_of(&picks);
        same_output(file.as_bytes());
        let bytes = file.as_bytes();
        same_output(&bytes[..cut.index(bytes.len() + 1)]);
        let mut flipped = bytes.to_vec();
        flipped[flip.index(bytes.len())] = byte;
        same_output(&flipped);
    }
}
