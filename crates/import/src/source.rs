//! Where files come from: a local file or directory tree, or an S3 bucket/prefix. Both give
//! the same thing: a sorted list of [`SourceFile`]s (key, size, modification time) and, per
//! file, a blocking byte reader. Everything after that (decompress, detect, parse) is shared.
//!
//! Keys: for S3 the object key; for a directory the path relative to the directory, with `/`
//! separators; for a single file its file name.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::StreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};
use tokio::runtime::Handle;

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    pub key: String,
    pub size_bytes: u64,
    /// Modification time in epoch ms, when the source gives one.
    pub modified_ms: Option<i64>,
}

/// S3 connection settings.
#[derive(Debug, Clone, Default)]
pub struct S3Options {
    /// Any S3-compatible endpoint; `None` means AWS.
    pub endpoint: Option<String>,
    pub region: Option<String>,
    /// AWS profile to take static credentials from when the environment has none.
    pub profile: Option<String>,
}

/// A place to list and read files from.
pub enum Source {
    Local {
        root: PathBuf,
        /// True when `root` is a single file (the key is then its file name).
        single: bool,
    },
    S3 {
        store: Arc<dyn ObjectStore>,
        bucket: String,
        prefix: String,
        handle: Handle,
    },
}

impl Source {
    /// `s3://bucket/prefix` or a local path.
    pub fn open(location: &str, s3: &S3Options) -> anyhow::Result<Source> {
        if let Some(rest) = location.strip_prefix("s3://") {
            let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                bail!("{location:?} names no bucket; expected s3://bucket/prefix");
            }
            let store = s3_store(bucket, s3)?;
            return Ok(Source::S3 {
                store,
                bucket: bucket.to_owned(),
                prefix: prefix.trim_end_matches('/').to_owned(),
                handle: Handle::current(),
            });
        }
        let root = PathBuf::from(location);
        let meta = std::fs::metadata(&root)
            .with_context(|| format!("cannot read import source {}", root.display()))?;
        Ok(Source::Local {
            single: meta.is_file(),
            root,
        })
    }

    /// A short description for messages.
    pub fn describe(&self) -> String {
        match self {
            Source::Local { root, .. } => root.display().to_string(),
            Source::S3 { bucket, prefix, .. } => format!("s3://{bucket}/{prefix}"),
        }
    }

    /// Every file under the source, sorted by key.
    pub async fn list(&self) -> anyhow::Result<Vec<SourceFile>> {
        let mut files = match self {
            Source::Local { root, single } => {
                let root = root.clone();
                let single = *single;
                tokio::task::spawn_blocking(move || list_local(&root, single)).await??
            }
            Source::S3 {
                store,
                bucket,
                prefix,
                ..
            } => {
                // A prefix is first taken as a folder (`AWSLogs` lists `AWSLogs/…`); when
                // nothing is under it, as S3 takes it: any key starting with it, found by
                // listing its parent folder.
                let mut files = list_s3(store.as_ref(), prefix, bucket).await?;
                if files.is_empty() && !prefix.is_empty() {
                    let parent = prefix.rsplit_once('/').map_or("", |(p, _)| p);
                    files = list_s3(store.as_ref(), parent, bucket).await?;
                    files.retain(|f| f.key.starts_with(prefix.as_str()));
                }
                files
            }
        };
        files.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(files)
    }

    /// A blocking reader over the file's stored bytes. Call from a blocking thread (it blocks
    /// on the runtime for S3), never from async code.
    pub fn open_file(&self, file: &SourceFile) -> io::Result<Box<dyn Read + Send>> {
        match self {
            Source::Local { root, single } => {
                let path = if *single {
                    root.clone()
                } else {
                    root.join(&file.key)
                };
                Ok(Box::new(File::open(path)?))
            }
            Source::S3 { store, handle, .. } => {
                let path = ObjectPath::from(file.key.as_str());
                let got = handle
                    .block_on(store.get(&path))
                    .map_err(io::Error::other)?;
                Ok(Box::new(StreamRead {
                    stream: got.into_stream(),
                    handle: handle.clone(),
                    chunk: Bytes::new(),
                }))
            }
        }
    }
}

async fn list_s3(
    store: &dyn ObjectStore,
    prefix: &str,
    bucket: &str,
) -> anyhow::Result<Vec<SourceFile>> {
    let p = (!prefix.is_empty()).then(|| ObjectPath::from(prefix));
    let mut stream = store.list(p.as_ref());
    let mut files = Vec::new();
    while let Some(meta) = stream.next().await {
        let meta = meta.with_context(|| format!("listing s3://{bucket}/{prefix}"))?;
        files.push(SourceFile {
            key: meta.location.to_string(),
            size_bytes: meta.size,
            modified_ms: Some(meta.last_modified.timestamp_millis()),
        });
    }
    Ok(files)
}

fn list_local(root: &Path, single: bool) -> anyhow::Result<Vec<SourceFile>> {
    let modified = |m: &std::fs::Metadata| {
        m.modified()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_millis() as i64)
    };
    if single {
        let meta = std::fs::metadata(root)?;
        let name = root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| root.display().to_string());
        return Ok(vec![SourceFile {
            key: name,
            size_bytes: meta.len(),
            modified_ms: modified(&meta),
        }]);
    }
    let mut files = Vec::new();
    for entry in walkdir::WalkDir::new(root).follow_links(true) {
        let entry = entry.with_context(|| format!("walking {}", root.display()))?;
        if !entry.file_type().is_file() {
            continue;
        }
        let rel = entry.path().strip_prefix(root).unwrap_or(entry.path());
        let key = rel
            .components()
            .map(|c| c.as_os_str().to_string_lossy())
            .collect::<Vec<_>>()
            .join("/");
        let meta = entry.metadata()?;
        files.push(SourceFile {
            key,
            size_bytes: meta.len(),
            modified_ms: modified(&meta),
        });
    }
    files.sort_by(|a, b| a.key.cmp(&b.key));
    Ok(files)
}

fn is_loopback(endpoint: &str) -> bool {
    let rest = endpoint
        .strip_prefix("http://")
        .or_else(|| endpoint.strip_prefix("https://"))
        .unwrap_or(endpoint);
    let host = rest.split('/').next().unwrap_or("");
    let host = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

fn s3_store(bucket: &str, opts: &S3Options) -> anyhow::Result<Arc<dyn ObjectStore>> {
    // The environment first (AWS_ACCESS_KEY_ID, AWS_REGION, container and instance roles ...),
    // then a named or default profile's static keys from the shared files.
    let mut b = AmazonS3Builder::from_env().with_bucket_name(bucket);
    let env_keys = std::env::var_os("AWS_ACCESS_KEY_ID").is_some();
    if opts.profile.is_some() || !env_keys {
        match trailvault_auth::Credentials::discover(opts.profile.as_deref()) {
            Ok(c) => {
                b = b
                    .with_access_key_id(c.access_key_id)
                    .with_secret_access_key(c.secret_access_key);
                if let Some(t) = c.session_token {
                    b = b.with_token(t);
                }
            }
            Err(e) if opts.profile.is_some() => {
                return Err(e).context("reading S3 credentials for --s3-profile")
            }
            // No static keys anywhere: leave it to instance or container credentials.
            Err(_) => {}
        }
    }
    let region = opts
        .region
        .clone()
        .or_else(|| std::env::var("AWS_REGION").ok())
        .or_else(|| std::env::var("AWS_DEFAULT_REGION").ok())
        .unwrap_or_else(|| "us-east-1".to_owned());
    b = b.with_region(region);
    if let Some(ep) = &opts.endpoint {
        // Path-style requests work on every S3-compatible store; plain http only on loopback
        // so credentials never cross a network unencrypted.
        b = b
            .with_endpoint(ep.trim_end_matches('/'))
            .with_virtual_hosted_style_request(false)
            .with_allow_http(is_loopback(ep));
    }
    Ok(Arc::new(b.build().context("configuring the S3 client")?))
}

/// Adapts an object's byte stream to a blocking [`Read`], pulling one chunk at a time so
/// memory stays bounded by the chunk size.
struct StreamRead {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    handle: Handle,
    chunk: Bytes,
}

impl Read for StreamRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.chunk.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                None => return Ok(0),
                Some(Ok(b)) => self.chunk = b,
                Some(Err(e)) => return Err(io::Error::other(e)),
            }
        }
        let n = buf.len().min(self.chunk.len());
        buf[..n].copy_from_slice(&self.chunk[..n]);
        self.chunk = self.chunk.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_endpoints() {
        assert!(is_loopback("http://127.0.0.1:9000"));
        assert!(is_loopback("http://localhost:9000/"));
        assert!(is_loopback("http://[::1]:9000"));
        assert!(!is_loopback("http://minio.example.com:9000"));
        assert!(!is_loopback("http://10.0.0.1"));
    }

    #[test]
    fn local_keys_are_relative_and_sorted() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("b/c")).unwrap();
        std::fs::write(dir.path().join("b/c/x.log"), b"1").unwrap();
        std::fs::write(dir.path().join("a.log"), b"22").unwrap();
        let files = list_local(dir.path(), false).unwrap();
        let keys: Vec<_> = files.iter().map(|f| f.key.as_str()).collect();
        assert_eq!(keys, ["a.log", "b/c/x.log"]);
        let one = list_local(&dir.path().join("a.log"), true).unwrap();
        assert_eq!(one[0].key, "a.log");
        assert_eq!(one[0].size_bytes, 2);
    }
}
