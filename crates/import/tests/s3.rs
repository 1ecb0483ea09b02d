//! Importing from a real S3-compatible server (moto, started here from the test virtualenv
//! that `scripts/test-env.sh` prints; its bin directory is in TRAILVAULT_TEST_VENV).

mod common;

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use trailvault_import::{import, ImportArgs};

/// The venv's bin directory, or `None` (skip) outside CI.
fn venv() -> Option<PathBuf> {
    match std::env::var_os("TRAILVAULT_TEST_VENV") {
        Some(v) => Some(PathBuf::from(v)),
        None if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("CI=true but TRAILVAULT_TEST_VENV is not set (run scripts/test-env.sh)")
        }
        None => {
            eprintln!("note: skipping the S3 import test: TRAILVAULT_TEST_VENV is not set (scripts/test-env.sh prints it)");
            None
        }
    }
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn start_moto(bin: &Path, port: u16) -> Server {
    let child = Command::new(bin.join("python"))
        .args([
            "-m",
            "moto.server",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("starting moto");
    let server = Server(child);
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            Instant::now() < deadline,
            "moto did not start on port {port}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    server
}

/// Creates `bucket` and uploads every file under `root` with boto3, keys relative to `root`.
fn upload(bin: &Path, endpoint: &str, bucket: &str, root: &Path) {
    let script = r#"
import os, sys, boto3
endpoint, bucket, root = sys.argv[1:4]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                  aws_access_key_id="testing", aws_secret_access_key="testing")
s3.create_bucket(Bucket=bucket)
n = 0
for d, _, files in os.walk(root):
    for f in files:
        p = os.path.join(d, f)
        s3.upload_file(p, bucket, os.path.relpath(p, root).replace(os.sep, "/"))
        n += 1
print(n)
"#;
    let out = Command::new(bin.join("python"))
        .args(["-c", script, endpoint, bucket, root.to_str().unwrap()])
        .output()
        .expect("running boto3");
    assert!(
        out.status.success(),
        "upload failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_an_awslogs_tree_from_s3() {
    let Some(bin) = venv() else { return };
    // Dummy credentials: the only test in this binary, so setting the environment is safe.
    std::env::set_var("AWS_ACCESS_KEY_ID", "testing");
    std::env::set_var("AWS_SECRET_ACCESS_KEY", "testing");
    std::env::set_var("AWS_REGION", "us-east-1");

    let port = free_port();
    let _moto = start_moto(&bin, port);
    let endpoint = format!("http://127.0.0.1:{port}");
    let tree = tempfile::tempdir().unwrap();
    let exp = common::write_tree(tree.path(), 5);
    upload(&bin, &endpoint, "audit-logs", tree.path());

    let data = tempfile::tempdir().unwrap();
    let mut a = ImportArgs::embedded("s3://audit-logs/AWSLogs", data.path());
    a.s3_endpoint = Some(endpoint.clone());
    a.jobs = Some(2);
    let s = import(&a).await.unwrap();
    // The S3 access log sits outside AWSLogs/: not part of this import.
    let s3_access = exp.groups["import/s3-access"];
    let expected: u64 = exp.groups.values().sum::<u64>() - s3_access;
    assert_eq!(s.records_stored, expected, "{}", s.render());
    assert_eq!(s.records_read, s.records_stored + s.records_quarantined);
    assert_eq!(s.digests, 1);
    assert_eq!(s.files_skipped, 1);
    assert_eq!(s.unknown.len(), 1);
    assert_eq!(s.quarantined_files.len(), 1);
    let counts = common::group_counts(data.path()).await;
    for (g, n) in exp.groups.iter().filter(|(g, _)| g.starts_with("awslogs/")) {
        assert_eq!(counts.get(g), Some(n), "group {g}");
    }
    // Streams are the object keys.
    let msgs = common::messages(data.path(), "trailvault/imports").await;
    assert!(msgs
        .iter()
        .any(|m| m.contains("\"key\":\"AWSLogs/111122223333/vpcflowlogs/")));

    // A prefix that is not a folder works as in S3: every key starting with it.
    let data2 = tempfile::tempdir().unwrap();
    let mut b = ImportArgs::embedded("s3://audit-logs/s3-logs/2024-01-01", data2.path());
    b.s3_endpoint = Some(endpoint.clone());
    let only_s3 = import(&b).await.unwrap();
    assert_eq!(only_s3.records_stored, s3_access, "{}", only_s3.render());

    // Again: nothing new, nothing fetched for completed files.
    let again = import(&a).await.unwrap();
    assert_eq!(again.records_stored, 0);
    assert_eq!(again.files_imported(), 0);
    assert_eq!(common::group_counts(data.path()).await, counts);
}
