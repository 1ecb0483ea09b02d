//! The vault's own access keys.
//!
//! On disk (`<data>/auth/keys.json`, mode 0600, directory mode 0700):
//!
//! ```json
//! {"format_version": 1, "keys": [{"id": "TVAK…", "secret": "…", "created_ms": 0, "principal": "admin"}]}
//! ```
//!
//! The file is small and meant to be readable by an operator (to revoke a key, delete its
//! entry and restart), so it carries a format version but no checksum: a hand edit must not
//! make it unreadable. It is replaced atomically (write a temporary file, fsync, rename,
//! fsync the directory), so a crash leaves either the old or the new set of keys.
//!
//! Invariants: ids are unique; a file that does not parse is an error, never silently
//! replaced by a fresh key (that would lock out every existing client).

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::RwLock;
use std::time::{SystemTime, UNIX_EPOCH};

use rand::TryRngCore;
use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Access key ids start with this, so a trailvault key is told apart from an AWS one (`AKIA`).
pub const ACCESS_KEY_ID_PREFIX: &str = "TVAK";
/// Random characters after the prefix (AWS ids are 20 characters in all).
pub const ACCESS_KEY_ID_RANDOM_CHARS: usize = 16;
/// Length of a secret access key, as AWS's.
pub const SECRET_KEY_CHARS: usize = 40;
/// The principal of the key created on first start.
pub const ADMIN_PRINCIPAL: &str = "admin";
/// Version of `keys.json` this code writes and reads.
pub const KEYS_FORMAT_VERSION: u32 = 1;
/// A keys file larger than this is not a keys file.
const KEYS_FILE_BYTES_MAX: u64 = 16 * 1024 * 1024;

const ID_ALPHABET: &[u8; 36] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const SECRET_ALPHABET: &[u8; 64] =
    b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// One access key: the id is public, the secret never leaves the vault and the
/// credentials file.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessKey {
    pub id: String,
    pub secret: String,
    pub created_ms: i64,
    pub principal: String,
}

impl std::fmt::Debug for AccessKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessKey")
            .field("id", &self.id)
            .field("secret", &"<redacted>")
            .field("created_ms", &self.created_ms)
            .field("principal", &self.principal)
            .finish()
    }
}

impl AccessKey {
    /// A fresh key for `principal` from the operating system's random source.
    pub fn generate(principal: &str) -> Result<AccessKey, KeyStoreError> {
        let mut id = String::from(ACCESS_KEY_ID_PREFIX);
        id.push_str(&random_chars(ID_ALPHABET, ACCESS_KEY_ID_RANDOM_CHARS)?);
        let secret = random_chars(SECRET_ALPHABET, SECRET_KEY_CHARS)?;
        let created_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        Ok(AccessKey {
            id,
            secret,
            created_ms,
            principal: principal.to_string(),
        })
    }
}

/// Uniform characters from `alphabet` by rejection sampling (a plain `% len` would favour
/// the first characters when 256 is not a multiple of the alphabet size).
fn random_chars(alphabet: &[u8], count: usize) -> Result<String, KeyStoreError> {
    let accept_below = 256 - (256 % alphabet.len());
    let mut out = String::with_capacity(count);
    let mut buf = [0u8; 64];
    while out.len() < count {
        rand::rngs::OsRng
            .try_fill_bytes(&mut buf)
            .map_err(|e| KeyStoreError::Random(e.to_string()))?;
        for &b in &buf {
            if out.len() == count {
                break;
            }
            if (b as usize) < accept_below {
                out.push(alphabet[b as usize % alphabet.len()] as char);
            }
        }
    }
    Ok(out)
}

#[derive(Debug, Error)]
pub enum KeyStoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is not a valid keys file: {reason}")]
    Corrupt { path: PathBuf, reason: String },
    #[error("the operating system's random source failed: {0}")]
    Random(String),
    #[error("access key id {0} already exists")]
    Duplicate(String),
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> KeyStoreError + '_ {
    move |source| KeyStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the verifier finds the secret and the principal of an access key id. A catalog-backed
/// implementation can replace the file one without touching the verifier.
pub trait KeyStore: Send + Sync {
    /// The key with this id, `None` if there is none. An `Err` means the store could not be
    /// read (the request is refused as "service unavailable", not as "unknown key").
    fn lookup(&self, access_key_id: &str) -> Result<Option<AccessKey>, KeyStoreError>;
}

/// Keys held in memory only: for tests and for embedding.
#[derive(Debug, Default)]
pub struct MemoryKeyStore {
    keys: RwLock<BTreeMap<String, AccessKey>>,
}

impl MemoryKeyStore {
    pub fn insert(&self, key: AccessKey) {
        let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
        keys.insert(key.id.clone(), key);
    }
}

impl FromIterator<AccessKey> for MemoryKeyStore {
    fn from_iter<I: IntoIterator<Item = AccessKey>>(iter: I) -> Self {
        let store = MemoryKeyStore::default();
        for k in iter {
            store.insert(k);
        }
        store
    }
}

impl KeyStore for MemoryKeyStore {
    fn lookup(&self, access_key_id: &str) -> Result<Option<AccessKey>, KeyStoreError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        Ok(keys.get(access_key_id).cloned())
    }
}

#[derive(Serialize, Deserialize)]
struct KeysFile {
    format_version: u32,
    keys: Vec<AccessKey>,
}

/// Keys kept in `<data>/auth/keys.json`, loaded at open and cached in memory.
#[derive(Debug)]
pub struct FileKeyStore {
    path: PathBuf,
    keys: RwLock<BTreeMap<String, AccessKey>>,
}

impl FileKeyStore {
    /// `<data>/auth/keys.json`.
    pub fn keys_path(data_dir: &Path) -> PathBuf {
        data_dir.join("auth").join("keys.json")
    }

    /// `<data>/credentials`: the AWS shared-credentials file written for the first key.
    pub fn credentials_path(data_dir: &Path) -> PathBuf {
        data_dir.join("credentials")
    }

    /// Open the keys of the vault in `data_dir`. When there are none yet, create an admin
    /// key, persist it, write `<data>/credentials` (profile `default`) and return the new key
    /// as the second element.
    pub fn open_or_create(
        data_dir: &Path,
    ) -> Result<(FileKeyStore, Option<AccessKey>), KeyStoreError> {
        let path = Self::keys_path(data_dir);
        let auth_dir = data_dir.join("auth");
        create_private_dir(data_dir)?;
        create_private_dir(&auth_dir)?;
        match fs::metadata(&path) {
            Ok(meta) => {
                if meta.len() > KEYS_FILE_BYTES_MAX {
                    return Err(KeyStoreError::Corrupt {
                        path,
                        reason: format!("larger than {KEYS_FILE_BYTES_MAX} bytes"),
                    });
                }
                let keys = load_keys(&path)?;
                Ok((
                    FileKeyStore {
                        path,
                        keys: RwLock::new(keys),
                    },
                    None,
                ))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let admin = AccessKey::generate(ADMIN_PRINCIPAL)?;
                let store = FileKeyStore {
                    path,
                    keys: RwLock::new(BTreeMap::from([(admin.id.clone(), admin.clone())])),
                };
                store.persist()?;
                write_private_file(
                    &Self::credentials_path(data_dir),
                    shared_credentials_text(&admin).as_bytes(),
                )?;
                Ok((store, Some(admin)))
            }
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Create and persist a new key for `principal`.
    pub fn create_key(&self, principal: &str) -> Result<AccessKey, KeyStoreError> {
        let key = AccessKey::generate(principal)?;
        {
            let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
            if keys.contains_key(&key.id) {
                return Err(KeyStoreError::Duplicate(key.id));
            }
            keys.insert(key.id.clone(), key.clone());
        }
        if let Err(e) = self.persist() {
            let mut keys = self.keys.write().unwrap_or_else(|p| p.into_inner());
            keys.remove(&key.id);
            return Err(e);
        }
        Ok(key)
    }

    /// Ids and principals of every key (secrets left out).
    pub fn list(&self) -> Vec<(String, String)> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        keys.values()
            .map(|k| (k.id.clone(), k.principal.clone()))
            .collect()
    }

    fn persist(&self) -> Result<(), KeyStoreError> {
        let file = {
            let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
            KeysFile {
                format_version: KEYS_FORMAT_VERSION,
                keys: keys.values().cloned().collect(),
            }
        };
        let mut text = serde_json::to_vec_pretty(&file).map_err(|e| KeyStoreError::Corrupt {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        text.push(b'\n');
        write_private_file(&self.path, &text)
    }
}

impl KeyStore for FileKeyStore {
    fn lookup(&self, access_key_id: &str) -> Result<Option<AccessKey>, KeyStoreError> {
        let keys = self.keys.read().unwrap_or_else(|p| p.into_inner());
        Ok(keys.get(access_key_id).cloned())
    }
}

fn load_keys(path: &Path) -> Result<BTreeMap<String, AccessKey>, KeyStoreError> {
    let bytes = fs::read(path).map_err(io_err(path))?;
    let corrupt = |reason: String| KeyStoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let file: KeysFile = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    if file.format_version != KEYS_FORMAT_VERSION {
        return Err(corrupt(format!(
            "format_version {} (this build reads {KEYS_FORMAT_VERSION})",
            file.format_version
        )));
    }
    let mut keys = BTreeMap::new();
    for k in file.keys {
        if k.id.is_empty() || k.secret.is_empty() {
            return Err(corrupt("a key with an empty id or secret".into()));
        }
        if let Some(prev) = keys.insert(k.id.clone(), k) {
            return Err(corrupt(format!("access key id {} appears twice", prev.id)));
        }
    }
    Ok(keys)
}

/// The AWS shared-credentials file for `key`, as profile `default`.
pub fn shared_credentials_text(key: &AccessKey) -> String {
    format!(
        "# trailvault access key for principal {principal}, created at {created_ms} ms\n\
         [default]\naws_access_key_id = {id}\naws_secret_access_key = {secret}\n",
        principal = key.principal,
        created_ms = key.created_ms,
        id = key.id,
        secret = key.secret
    )
}

fn create_private_dir(dir: &Path) -> Result<(), KeyStoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(io_err(dir))
}

/// Replace `path` atomically with `bytes`, readable by the owner only.
fn write_private_file(path: &Path, bytes: &[u8]) -> Result<(), KeyStoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp"));
    let mut opts = fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts.open(&tmp).map_err(io_err(&tmp))?;
    // A temporary file left by an earlier crash keeps its old mode; force it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        f.set_permissions(fs::Permissions::from_mode(0o600))
            .map_err(io_err(&tmp))?;
    }
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    #[cfg(unix)]
    {
        fs::File::open(dir)
            .and_then(|d| d.sync_all())
            .map_err(io_err(dir))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_keys_have_the_expected_shape() {
        let k = AccessKey::generate("admin").unwrap();
        assert_eq!(k.id.len(), 20);
        assert!(k.id.starts_with("TVAK"));
        assert!(k.id[4..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit()));
        assert_eq!(k.secret.len(), 40);
        assert!(k.secret.bytes().all(|b| SECRET_ALPHABET.contains(&b)));
        let k2 = AccessKey::generate("admin").unwrap();
        assert_ne!(k.id, k2.id);
        assert_ne!(k.secret, k2.secret);
        assert!(!format!("{k:?}").contains(&k.secret));
    }

    #[test]
    fn first_open_creates_admin_and_credentials_then_reopens() {
        let dir = tempfile::tempdir().unwrap();
        let (store, created) = FileKeyStore::open_or_create(dir.path()).unwrap();
        let admin = created.expect("a new vault gets an admin key");
        assert_eq!(admin.principal, "admin");
        assert_eq!(store.lookup(&admin.id).unwrap(), Some(admin.clone()));
        assert_eq!(store.lookup("TVAKNOPE").unwrap(), None);

        let creds = fs::read_to_string(dir.path().join("credentials")).unwrap();
        assert!(creds.contains("[default]"));
        assert!(creds.contains(&format!("aws_access_key_id = {}", admin.id)));
        assert!(creds.contains(&format!("aws_secret_access_key = {}", admin.secret)));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            for p in [
                dir.path().join("credentials"),
                FileKeyStore::keys_path(dir.path()),
            ] {
                let mode = fs::metadata(&p).unwrap().permissions().mode() & 0o777;
                assert_eq!(mode, 0o600, "{}", p.display());
            }
        }

        let extra = store.create_key("ci").unwrap();
        drop(store);
        let (store, created) = FileKeyStore::open_or_create(dir.path()).unwrap();
        assert!(created.is_none(), "reopening must not create another admin");
        assert_eq!(store.lookup(&admin.id).unwrap(), Some(admin));
        assert_eq!(store.lookup(&extra.id).unwrap(), Some(extra));
        assert_eq!(store.list().len(), 2);
    }

    #[test]
    fn a_corrupt_keys_file_is_an_error_not_a_reset() {
        let dir = tempfile::tempdir().unwrap();
        FileKeyStore::open_or_create(dir.path()).unwrap();
        let path = FileKeyStore::keys_path(dir.path());
        fs::write(&path, b"{\"format_version\": 1, \"keys\": [").unwrap();
        let err = FileKeyStore::open_or_create(dir.path()).unwrap_err();
        assert!(matches!(err, KeyStoreError::Corrupt { .. }), "{err}");
        fs::write(&path, b"{\"format_version\": 9, \"keys\": []}").unwrap();
        let err = FileKeyStore::open_or_create(dir.path()).unwrap_err();
        assert!(err.to_string().contains("format_version 9"), "{err}");
    }
}
