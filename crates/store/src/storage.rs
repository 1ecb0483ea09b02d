//! The one storage interface every stored object passes through: sealed segments, digests,
//! checkpoints. Local disk (the default) and S3-compatible buckets are the same code path
//! (`object_store`); for local disk a write is also fsynced, since the WAL that covered the
//! data is removed once the segment is committed.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload};

use crate::error::{Result, StoreError};

#[derive(Clone)]
pub struct Storage {
    inner: Arc<dyn ObjectStore>,
    /// Set for the local backend: where keys live on disk, so writes can be fsynced.
    local_root: Option<PathBuf>,
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("backend", &self.inner.to_string())
            .finish()
    }
}

impl Storage {
    /// Objects under a local directory.
    pub fn local(root: &Path) -> Result<Self> {
        std::fs::create_dir_all(root).map_err(|e| StoreError::io(root, e))?;
        let fs = LocalFileSystem::new_with_prefix(root)?;
        Ok(Storage {
            inner: Arc::new(fs),
            local_root: Some(root.to_path_buf()),
        })
    }

    /// Any object store (S3-compatible, in-memory for tests).
    pub fn from_store(inner: Arc<dyn ObjectStore>) -> Self {
        Storage {
            inner,
            local_root: None,
        }
    }

    pub fn object_store(&self) -> Arc<dyn ObjectStore> {
        self.inner.clone()
    }

    fn path(key: &str) -> Result<ObjectPath> {
        ObjectPath::parse(key).map_err(|e| StoreError::InvalidParameter(e.to_string()))
    }

    /// Write an object that must not exist yet, and make it durable before returning.
    pub async fn put_new(&self, key: &str, bytes: Bytes) -> Result<()> {
        self.put_with(key, bytes, PutMode::Create).await
    }

    async fn put_with(&self, key: &str, bytes: Bytes, mode: PutMode) -> Result<()> {
        let path = Self::path(key)?;
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        self.inner
            .put_opts(&path, PutPayload::from_bytes(bytes), opts)
            .await?;
        if let Some(root) = &self.local_root {
            let file = root.join(key);
            let root = root.clone();
            tokio::task::spawn_blocking(move || sync_file_and_parents(&root, &file))
                .await
                .map_err(|e| StoreError::Unavailable(e.to_string()))??;
        }
        Ok(())
    }

    pub async fn get(&self, key: &str) -> Result<Bytes> {
        let path = Self::path(key)?;
        Ok(self.inner.get(&path).await?.bytes().await?)
    }

    pub async fn exists(&self, key: &str) -> Result<bool> {
        match self.inner.head(&Self::path(key)?).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Move an object that was never committed out of the way (recovery of an interrupted
    /// seal). The copy lands under `orphans/` so nothing is lost.
    pub async fn move_to_orphans(&self, key: &str) -> Result<String> {
        let from = Self::path(key)?;
        let to_key = format!("orphans/{key}");
        let to = Self::path(&to_key)?;
        self.inner.copy(&from, &to).await?;
        self.inner.delete(&from).await?;
        Ok(to_key)
    }
}

/// fsync the file and every directory from its parent up to the root: any of them may have
/// been created by this write.
fn sync_file_and_parents(root: &Path, file: &Path) -> Result<()> {
    std::fs::File::open(file)
        .and_then(|f| f.sync_all())
        .map_err(|e| StoreError::io(file, e))?;
    let mut dir = file.parent();
    while let Some(d) = dir {
        crate::wal::sync_dir(d)?;
        if d == root {
            break;
        }
        dir = d.parent();
    }
    Ok(())
}
