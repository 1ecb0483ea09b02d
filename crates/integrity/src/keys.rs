//! Signing keys: a keyring kept as files, rotation, and the public keys auditors verify with.
//!
//! Layout of the key directory (`<data>/keys/`):
//!
//! ```text
//! manifest.json          {"version":1,"keys":[PublicKeyEntry + "privateKeyFile"]}, newest last
//! <fingerprint>.pk8      PKCS#8 DER private key, mode 0600
//! <fingerprint>.pem      SubjectPublicKeyInfo public key, PEM
//! ```
//!
//! `export_public_keys(dir)` writes `public-keys.json` (the manifest without private parts:
//! `fingerprint`, `algorithm`, `validityStartTime`, `validityEndTime` (null while active),
//! `value` = base64 DER, as CloudTrail's ListPublicKeys) and one `.pem` / `.der` per key.
//!
//! Fingerprints are the MD5 of the DER public key in hex, as CloudTrail computes them: they
//! name a key, they do not protect anything (the signature does).
//!
//! Invariants: exactly one key is active (validity end null) and it is the last in the
//! manifest; windows of successive keys touch (`end(k) == start(k+1)`); a private key file is
//! never readable by others.

use std::io::Write;
use std::path::{Path, PathBuf};

use base64::Engine;
use md5::{Digest as _, Md5};
use rsa::pkcs1::DecodeRsaPublicKey;
use rsa::pkcs8::{DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey};
use rsa::signature::{SignatureEncoding, Signer, Verifier};
use serde::{Deserialize, Serialize};

use crate::error::{IntegrityError, Result};
use crate::time::{iso, now_ms, parse_iso};

/// The signature algorithms a digest may name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum SignatureAlgorithm {
    #[default]
    #[serde(rename = "Ed25519")]
    Ed25519,
    /// RSA PKCS#1 v1.5 with SHA-256, 2048-bit keys, as CloudTrail signs.
    #[serde(rename = "SHA256withRSA")]
    Sha256WithRsa,
}

impl SignatureAlgorithm {
    pub fn as_str(self) -> &'static str {
        match self {
            SignatureAlgorithm::Ed25519 => "Ed25519",
            SignatureAlgorithm::Sha256WithRsa => "SHA256withRSA",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "Ed25519" | "ed25519" => Some(SignatureAlgorithm::Ed25519),
            "SHA256withRSA" | "rsa" | "RSA" => Some(SignatureAlgorithm::Sha256WithRsa),
            _ => None,
        }
    }
}

impl std::fmt::Display for SignatureAlgorithm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

const RSA_BITS: usize = 2048;
/// DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410); the 32 key bytes follow.
const ED25519_SPKI_PREFIX: [u8; 12] = [
    0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
];
/// Largest key or manifest file we read.
const KEY_FILE_BYTES_MAX: u64 = 4 << 20;

/// MD5 hex of DER bytes.
pub fn fingerprint(der: &[u8]) -> String {
    hex::encode(Md5::digest(der))
}

/// A public key with its validity window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicKey {
    pub algorithm: SignatureAlgorithm,
    /// DER: SubjectPublicKeyInfo, or PKCS#1 RSAPublicKey for RSA keys imported that way.
    pub der: Vec<u8>,
    pub fingerprint: String,
    pub not_before_ms: i64,
    /// `None` while the key is the active one.
    pub not_after_ms: Option<i64>,
}

impl PublicKey {
    pub fn from_der(
        algorithm: SignatureAlgorithm,
        der: Vec<u8>,
        not_before_ms: i64,
        not_after_ms: Option<i64>,
    ) -> Self {
        PublicKey {
            algorithm,
            fingerprint: fingerprint(&der),
            der,
            not_before_ms,
            not_after_ms,
        }
    }

    /// Is `t_ms` inside `[not_before, not_after)`?
    pub fn valid_at(&self, t_ms: i64) -> bool {
        t_ms >= self.not_before_ms && self.not_after_ms.is_none_or(|end| t_ms < end)
    }

    /// Verify `signature` over `message`. Malformed keys or signatures simply fail.
    pub fn verify(&self, message: &[u8], signature: &[u8]) -> bool {
        match self.algorithm {
            SignatureAlgorithm::Ed25519 => {
                let raw = match self.der.strip_prefix(&ED25519_SPKI_PREFIX[..]) {
                    Some(raw) if raw.len() == 32 => raw,
                    _ if self.der.len() == 32 => &self.der[..],
                    _ => return false,
                };
                ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, raw)
                    .verify(message, signature)
                    .is_ok()
            }
            SignatureAlgorithm::Sha256WithRsa => {
                let Some(key) = rsa_public_key(&self.der) else {
                    return false;
                };
                let Ok(sig) = rsa::pkcs1v15::Signature::try_from(signature) else {
                    return false;
                };
                rsa::pkcs1v15::VerifyingKey::<rsa::sha2::Sha256>::new(key)
                    .verify(message, &sig)
                    .is_ok()
            }
        }
    }

    pub fn pem(&self) -> String {
        pem_encode("PUBLIC KEY", &self.der)
    }

    fn entry(&self) -> PublicKeyEntry {
        PublicKeyEntry {
            fingerprint: self.fingerprint.clone(),
            algorithm: self.algorithm,
            validity_start_time: iso(self.not_before_ms),
            validity_end_time: self.not_after_ms.map(iso),
            value: base64::engine::general_purpose::STANDARD.encode(&self.der),
            private_key_file: None,
        }
    }
}

/// An RSA public key from SubjectPublicKeyInfo or PKCS#1 DER.
pub fn rsa_public_key(der: &[u8]) -> Option<rsa::RsaPublicKey> {
    rsa::RsaPublicKey::from_public_key_der(der)
        .or_else(|_| rsa::RsaPublicKey::from_pkcs1_der(der))
        .ok()
}

pub fn pem_encode(label: &str, der: &[u8]) -> String {
    let b64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut out = format!("-----BEGIN {label}-----\n");
    for chunk in b64.as_bytes().chunks(64) {
        out.push_str(std::str::from_utf8(chunk).unwrap_or_default());
        out.push('\n');
    }
    out.push_str(&format!("-----END {label}-----\n"));
    out
}

/// Decode the first PEM block (any label); `None` if there is none.
pub fn pem_decode(text: &str) -> Option<(String, Vec<u8>)> {
    let start = text.find("-----BEGIN ")?;
    let rest = &text[start + 11..];
    let label_end = rest.find("-----")?;
    let label = rest[..label_end].to_string();
    let body_start = label_end + 5;
    let end = body_start + rest.get(body_start..)?.find("-----END ")?;
    let body: String = rest[body_start..end]
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let der = base64::engine::general_purpose::STANDARD
        .decode(body)
        .ok()?;
    Some((label, der))
}

/// One key as `manifest.json` and `public-keys.json` list it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PublicKeyEntry {
    fingerprint: String,
    algorithm: SignatureAlgorithm,
    validity_start_time: String,
    validity_end_time: Option<String>,
    value: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    private_key_file: Option<String>,
}

impl PublicKeyEntry {
    fn to_key(&self, location: &str) -> Result<PublicKey> {
        let bad = |what: &str| {
            IntegrityError::corrupt(location, format!("key {}: {what}", self.fingerprint))
        };
        let der = base64::engine::general_purpose::STANDARD
            .decode(&self.value)
            .map_err(|_| bad("value is not base64"))?;
        let not_before_ms =
            parse_iso(&self.validity_start_time).ok_or_else(|| bad("bad validityStartTime"))?;
        let not_after_ms = match &self.validity_end_time {
            None => None,
            Some(t) => Some(parse_iso(t).ok_or_else(|| bad("bad validityEndTime"))?),
        };
        let key = PublicKey::from_der(self.algorithm, der, not_before_ms, not_after_ms);
        if key.fingerprint != self.fingerprint {
            return Err(bad("fingerprint does not match the key"));
        }
        Ok(key)
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct KeyManifest {
    version: u32,
    keys: Vec<PublicKeyEntry>,
}

const MANIFEST: &str = "manifest.json";
const PUBLIC_KEYS: &str = "public-keys.json";

/// The public keys a validator trusts.
#[derive(Debug, Clone, Default)]
pub struct PublicKeySet {
    keys: Vec<PublicKey>,
}

impl PublicKeySet {
    pub fn new(keys: Vec<PublicKey>) -> Self {
        PublicKeySet { keys }
    }

    /// Load `public-keys.json` (an export) or, failing that, a keyring's `manifest.json`.
    pub fn load_dir(dir: &Path) -> Result<Self> {
        let exported = dir.join(PUBLIC_KEYS);
        let path = if exported.is_file() {
            exported
        } else {
            dir.join(MANIFEST)
        };
        let text = read_limited(&path)?;
        let location = path.display().to_string();
        let manifest: KeyManifest = serde_json::from_str(&text)
            .map_err(|e| IntegrityError::corrupt(&location, format!("not a key manifest: {e}")))?;
        let keys = manifest
            .keys
            .iter()
            .map(|e| e.to_key(&location))
            .collect::<Result<Vec<_>>>()?;
        Ok(PublicKeySet { keys })
    }

    pub fn keys(&self) -> &[PublicKey] {
        &self.keys
    }

    pub fn find(&self, fingerprint: &str) -> Option<&PublicKey> {
        self.keys.iter().find(|k| k.fingerprint == fingerprint)
    }

    pub fn push(&mut self, key: PublicKey) {
        if self.find(&key.fingerprint).is_none() {
            self.keys.push(key);
        }
    }
}

enum PrivateKey {
    Ed25519(ring::signature::Ed25519KeyPair),
    Rsa(Box<rsa::pkcs1v15::SigningKey<rsa::sha2::Sha256>>),
}

/// A signature and who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signature {
    pub bytes: Vec<u8>,
    pub algorithm: SignatureAlgorithm,
    pub fingerprint: String,
}

/// The vault's signing keys, stored in a directory.
pub struct Keyring {
    dir: PathBuf,
    public: Vec<PublicKey>,
    /// Private file name per key, parallel to `public`.
    private_files: Vec<String>,
    active: PrivateKey,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring")
            .field("dir", &self.dir)
            .field("active", &self.active_key().fingerprint)
            .finish()
    }
}

impl Keyring {
    /// Open the keyring in `dir`, creating it (and a first key of `algorithm`) if empty.
    /// If the active key's algorithm differs from `algorithm`, the keyring is rotated to a
    /// new key of `algorithm`: the setting decides what signs from now on.
    pub fn open_or_create(dir: &Path, algorithm: SignatureAlgorithm) -> Result<Keyring> {
        let manifest_path = dir.join(MANIFEST);
        if !manifest_path.exists() {
            std::fs::create_dir_all(dir).map_err(|e| IntegrityError::io(dir, e))?;
            let (public, private_der) = generate(algorithm, now_ms())?;
            let file = format!("{}.pk8", public.fingerprint);
            write_file(&dir.join(&file), &private_der, true)?;
            write_file(
                &dir.join(format!("{}.pem", public.fingerprint)),
                public.pem().as_bytes(),
                false,
            )?;
            let ring = Keyring {
                dir: dir.to_path_buf(),
                active: load_private(algorithm, &private_der, &file)?,
                public: vec![public],
                private_files: vec![file],
            };
            ring.save_manifest()?;
            return Ok(ring);
        }
        let mut ring = Keyring::open(dir)?;
        if ring.active_key().algorithm != algorithm {
            ring.rotate(algorithm)?;
        }
        Ok(ring)
    }

    /// Open an existing keyring.
    pub fn open(dir: &Path) -> Result<Keyring> {
        let manifest_path = dir.join(MANIFEST);
        let location = manifest_path.display().to_string();
        let text = read_limited(&manifest_path)?;
        let manifest: KeyManifest = serde_json::from_str(&text)
            .map_err(|e| IntegrityError::corrupt(&location, format!("not a key manifest: {e}")))?;
        let mut public = Vec::new();
        let mut private_files = Vec::new();
        for e in &manifest.keys {
            public.push(e.to_key(&location)?);
            private_files.push(
                e.private_key_file.clone().ok_or_else(|| {
                    IntegrityError::corrupt(&location, "key without privateKeyFile")
                })?,
            );
        }
        let (Some(last), Some(file)) = (public.last(), private_files.last()) else {
            return Err(IntegrityError::corrupt(&location, "no keys"));
        };
        if last.not_after_ms.is_some()
            || public[..public.len() - 1]
                .iter()
                .any(|k| k.not_after_ms.is_none())
        {
            return Err(IntegrityError::corrupt(
                &location,
                "the last key, and only it, must be active",
            ));
        }
        let der =
            std::fs::read(dir.join(file)).map_err(|e| IntegrityError::io(dir.join(file), e))?;
        let active = load_private(last.algorithm, &der, file)?;
        // Assert the private key belongs to the public key the manifest names.
        let check = match &active {
            PrivateKey::Ed25519(kp) => {
                use ring::signature::KeyPair;
                spki_ed25519(kp.public_key().as_ref())
            }
            PrivateKey::Rsa(sk) => {
                let private: &rsa::RsaPrivateKey = (**sk).as_ref();
                private
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| IntegrityError::Key(e.to_string()))?
                    .as_bytes()
                    .to_vec()
            }
        };
        if check != last.der {
            return Err(IntegrityError::corrupt(
                &location,
                "active private key does not match its public key",
            ));
        }
        Ok(Keyring {
            dir: dir.to_path_buf(),
            public,
            private_files,
            active,
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The key that signs now.
    pub fn active_key(&self) -> &PublicKey {
        // Invariant (constructors): `public` is never empty.
        &self.public[self.public.len() - 1]
    }

    /// Every key ever used, with its window.
    pub fn public_keys(&self) -> PublicKeySet {
        PublicKeySet::new(self.public.clone())
    }

    /// Close the active key's window now and start a new key of `algorithm`.
    pub fn rotate(&mut self, algorithm: SignatureAlgorithm) -> Result<PublicKey> {
        // Windows are half open and must not be empty; the old key's window ends after this
        // millisecond, so whatever it signed a moment ago (same millisecond) stays inside it.
        // Signers clamp their signing time to the new key's start.
        let now = (now_ms() + 1).max(self.active_key().not_before_ms + 1);
        let (public, private_der) = generate(algorithm, now)?;
        let file = format!("{}.pk8", public.fingerprint);
        write_file(&self.dir.join(&file), &private_der, true)?;
        write_file(
            &self.dir.join(format!("{}.pem", public.fingerprint)),
            public.pem().as_bytes(),
            false,
        )?;
        let active = load_private(algorithm, &private_der, &file)?;
        let n = self.public.len();
        self.public[n - 1].not_after_ms = Some(now);
        self.public.push(public.clone());
        self.private_files.push(file);
        self.active = active;
        self.save_manifest()?;
        Ok(public)
    }

    /// Sign with the active key.
    pub fn sign(&self, message: &[u8]) -> Result<Signature> {
        let bytes = match &self.active {
            PrivateKey::Ed25519(kp) => kp.sign(message).as_ref().to_vec(),
            PrivateKey::Rsa(sk) => sk
                .try_sign(message)
                .map_err(|e| IntegrityError::Key(format!("rsa signing failed: {e}")))?
                .to_vec(),
        };
        let key = self.active_key();
        Ok(Signature {
            bytes,
            algorithm: key.algorithm,
            fingerprint: key.fingerprint.clone(),
        })
    }

    /// Sign with the key `fingerprint` names, active or retired (re-rendering digests that
    /// key signed, e.g. in CloudTrail's format). The private key must still be in the
    /// keyring and match its public key.
    pub fn sign_with(&self, fingerprint: &str, message: &[u8]) -> Result<Signature> {
        let i = self
            .public
            .iter()
            .position(|k| k.fingerprint == fingerprint)
            .ok_or_else(|| IntegrityError::Key(format!("no key {fingerprint} in the keyring")))?;
        if i == self.public.len() - 1 {
            return self.sign(message);
        }
        let key = &self.public[i];
        let file = &self.private_files[i];
        let path = self.dir.join(file);
        let der = std::fs::read(&path).map_err(|e| IntegrityError::io(&path, e))?;
        let bytes = match load_private(key.algorithm, &der, file)? {
            PrivateKey::Ed25519(kp) => {
                use ring::signature::KeyPair;
                if spki_ed25519(kp.public_key().as_ref()) != key.der {
                    return Err(IntegrityError::corrupt(
                        file,
                        "does not match its public key",
                    ));
                }
                kp.sign(message).as_ref().to_vec()
            }
            PrivateKey::Rsa(sk) => {
                let private: &rsa::RsaPrivateKey = (*sk).as_ref();
                let spki = private
                    .to_public_key()
                    .to_public_key_der()
                    .map_err(|e| IntegrityError::Key(e.to_string()))?;
                if spki.as_bytes() != key.der {
                    return Err(IntegrityError::corrupt(
                        file,
                        "does not match its public key",
                    ));
                }
                sk.try_sign(message)
                    .map_err(|e| IntegrityError::Key(format!("rsa signing failed: {e}")))?
                    .to_vec()
            }
        };
        Ok(Signature {
            bytes,
            algorithm: key.algorithm,
            fingerprint: key.fingerprint.clone(),
        })
    }

    /// Write the public keys for auditors: `public-keys.json` plus `<fp>.pem` and `<fp>.der`.
    pub fn export_public_keys(&self, dir: &Path) -> Result<()> {
        export_public_keys(&self.public_keys(), dir)
    }

    fn save_manifest(&self) -> Result<()> {
        let keys = self
            .public
            .iter()
            .zip(&self.private_files)
            .map(|(k, f)| PublicKeyEntry {
                private_key_file: Some(f.clone()),
                ..k.entry()
            })
            .collect();
        let json = serde_json::to_vec_pretty(&KeyManifest { version: 1, keys })
            .map_err(|e| IntegrityError::Key(e.to_string()))?;
        write_file(&self.dir.join(MANIFEST), &json, false)
    }
}

/// Write `set` for auditors into `dir`.
pub fn export_public_keys(set: &PublicKeySet, dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| IntegrityError::io(dir, e))?;
    for k in set.keys() {
        write_file(
            &dir.join(format!("{}.pem", k.fingerprint)),
            k.pem().as_bytes(),
            false,
        )?;
        write_file(&dir.join(format!("{}.der", k.fingerprint)), &k.der, false)?;
    }
    let manifest = KeyManifest {
        version: 1,
        keys: set.keys().iter().map(PublicKey::entry).collect(),
    };
    let json =
        serde_json::to_vec_pretty(&manifest).map_err(|e| IntegrityError::Key(e.to_string()))?;
    write_file(&dir.join(PUBLIC_KEYS), &json, false)
}

fn spki_ed25519(raw: &[u8]) -> Vec<u8> {
    let mut der = ED25519_SPKI_PREFIX.to_vec();
    der.extend_from_slice(raw);
    der
}

/// A new key pair: its public half (window starting at `now`) and the PKCS#8 private DER.
fn generate(algorithm: SignatureAlgorithm, now: i64) -> Result<(PublicKey, Vec<u8>)> {
    match algorithm {
        SignatureAlgorithm::Ed25519 => {
            use ring::signature::KeyPair;
            let rng = ring::rand::SystemRandom::new();
            let pkcs8 = ring::signature::Ed25519KeyPair::generate_pkcs8(&rng)
                .map_err(|_| IntegrityError::Key("ed25519 key generation failed".into()))?;
            let kp = ring::signature::Ed25519KeyPair::from_pkcs8(pkcs8.as_ref())
                .map_err(|_| IntegrityError::Key("ed25519 key generation failed".into()))?;
            let der = spki_ed25519(kp.public_key().as_ref());
            Ok((
                PublicKey::from_der(algorithm, der, now, None),
                pkcs8.as_ref().to_vec(),
            ))
        }
        SignatureAlgorithm::Sha256WithRsa => {
            let key = rsa::RsaPrivateKey::new(&mut rsa::rand_core::OsRng, RSA_BITS)
                .map_err(|e| IntegrityError::Key(format!("rsa key generation failed: {e}")))?;
            let der = key
                .to_public_key()
                .to_public_key_der()
                .map_err(|e| IntegrityError::Key(e.to_string()))?
                .as_bytes()
                .to_vec();
            let private = key
                .to_pkcs8_der()
                .map_err(|e| IntegrityError::Key(e.to_string()))?
                .as_bytes()
                .to_vec();
            Ok((PublicKey::from_der(algorithm, der, now, None), private))
        }
    }
}

fn load_private(algorithm: SignatureAlgorithm, der: &[u8], file: &str) -> Result<PrivateKey> {
    let bad = |what: String| IntegrityError::corrupt(file, what);
    match algorithm {
        SignatureAlgorithm::Ed25519 => {
            ring::signature::Ed25519KeyPair::from_pkcs8_maybe_unchecked(der)
                .map(PrivateKey::Ed25519)
                .map_err(|e| bad(format!("not an ed25519 pkcs#8 key: {e}")))
        }
        SignatureAlgorithm::Sha256WithRsa => rsa::RsaPrivateKey::from_pkcs8_der(der)
            .map(|k| PrivateKey::Rsa(Box::new(rsa::pkcs1v15::SigningKey::new(k))))
            .map_err(|e| bad(format!("not an rsa pkcs#8 key: {e}"))),
    }
}

fn read_limited(path: &Path) -> Result<String> {
    let meta = std::fs::metadata(path).map_err(|e| IntegrityError::io(path, e))?;
    if meta.len() > KEY_FILE_BYTES_MAX {
        return Err(IntegrityError::corrupt(
            path.display().to_string(),
            "file too large",
        ));
    }
    std::fs::read_to_string(path).map_err(|e| IntegrityError::io(path, e))
}

/// Write atomically (temp file, fsync, rename); `private` files get mode 0600 from creation.
fn write_file(path: &Path, data: &[u8], private: bool) -> Result<()> {
    let tmp = path.with_extension("tmp");
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(if private { 0o600 } else { 0o644 });
    }
    #[cfg(not(unix))]
    let _ = private;
    let mut f = opts.open(&tmp).map_err(|e| IntegrityError::io(&tmp, e))?;
    f.write_all(data).map_err(|e| IntegrityError::io(&tmp, e))?;
    f.sync_all().map_err(|e| IntegrityError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| IntegrityError::io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ed25519_keyring_signs_reopens_and_rotates() {
        let dir = tempfile::tempdir().unwrap();
        let ring = Keyring::open_or_create(dir.path(), SignatureAlgorithm::Ed25519).unwrap();
        let fp = ring.active_key().fingerprint.clone();
        assert_eq!(fp.len(), 32);
        let sig = ring.sign(b"hello").unwrap();
        assert!(ring.active_key().verify(b"hello", &sig.bytes));
        assert!(!ring.active_key().verify(b"hellO", &sig.bytes));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.path().join(format!("{fp}.pk8")))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        drop(ring);
        let mut ring = Keyring::open_or_create(dir.path(), SignatureAlgorithm::Ed25519).unwrap();
        assert_eq!(ring.active_key().fingerprint, fp);
        let new = ring.rotate(SignatureAlgorithm::Ed25519).unwrap();
        assert_ne!(new.fingerprint, fp);
        let set = ring.public_keys();
        let old = set.find(&fp).unwrap();
        assert_eq!(old.not_after_ms, Some(new.not_before_ms));
        assert!(!old.valid_at(new.not_before_ms) && new.valid_at(new.not_before_ms));
        // The old key's signature still verifies with the exported set.
        let out = tempfile::tempdir().unwrap();
        ring.export_public_keys(out.path()).unwrap();
        let loaded = PublicKeySet::load_dir(out.path()).unwrap();
        assert_eq!(loaded.keys().len(), 2);
        assert!(loaded.find(&fp).unwrap().verify(b"hello", &sig.bytes));
        let pem = std::fs::read_to_string(out.path().join(format!("{fp}.pem"))).unwrap();
        assert_eq!(pem_decode(&pem).unwrap().1, old.der);
        assert_eq!(fingerprint(&old.der), fp);
        let reopened = Keyring::open(dir.path()).unwrap();
        assert_eq!(reopened.active_key().fingerprint, new.fingerprint);
    }

    proptest::proptest! {
        #[test]
        fn pem_decode_never_panics(s in "(-----(BEGIN |END )?[A-Z ]{0,12}-----|[A-Za-z0-9+/=\n]{0,20}){0,6}") {
            let _ = pem_decode(&s);
        }
    }

    #[test]
    fn pem_round_trips_and_rejects_garbage() {
        let der = vec![1u8, 2, 3, 250];
        assert_eq!(
            pem_decode(&pem_encode("PUBLIC KEY", &der)),
            Some(("PUBLIC KEY".to_string(), der))
        );
        assert_eq!(pem_decode("-----BEGIN -----END X"), None);
    }

    #[test]
    fn rsa_signatures_verify_with_spki_and_pkcs1() {
        // Key generation is slow in debug builds: one key for the whole test.
        let dir = tempfile::tempdir().unwrap();
        let mut ring = Keyring::open_or_create(dir.path(), SignatureAlgorithm::Ed25519).unwrap();
        let key = ring.rotate(SignatureAlgorithm::Sha256WithRsa).unwrap();
        let sig = ring.sign(b"msg").unwrap();
        assert_eq!(sig.algorithm, SignatureAlgorithm::Sha256WithRsa);
        assert_eq!(sig.bytes.len(), 256);
        assert!(key.verify(b"msg", &sig.bytes));
        assert!(!key.verify(b"msg2", &sig.bytes));
        use rsa::pkcs1::EncodeRsaPublicKey;
        let pkcs1 = rsa_public_key(&key.der)
            .unwrap()
            .to_pkcs1_der()
            .unwrap()
            .as_bytes()
            .to_vec();
        let k1 = PublicKey::from_der(SignatureAlgorithm::Sha256WithRsa, pkcs1, 0, None);
        assert!(k1.verify(b"msg", &sig.bytes));
        let reopened = Keyring::open(dir.path()).unwrap();
        assert_eq!(
            reopened.active_key().algorithm,
            SignatureAlgorithm::Sha256WithRsa
        );
        assert!(key.verify(b"x", &reopened.sign(b"x").unwrap().bytes));
    }
}
