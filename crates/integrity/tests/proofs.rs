//! Proofs end to end: a chain signed first with Ed25519 and then, after a rotation, with
//! RSA; event proofs and consistency proofs verified by our code and by the independent
//! Python verifier in `docs/`; the CLI entry points' exit statuses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;

use bytes::Bytes;
use object_store::local::LocalFileSystem;
use object_store::{ObjectStore, ObjectStoreExt};
use trailvault_integrity::checkpoint::checkpoint_key;
use trailvault_integrity::cli::SourceArgs;
use trailvault_integrity::proof::{prove_consistency, prove_event, verify_proof, Proof};
use trailvault_integrity::proof_index::{ProofIndex, PROOF_INDEX_FILE};
use trailvault_integrity::{
    run_validate_cli, run_verify_proof_cli, seal_segment, DigestWriter, Keyring, PublicKeySet,
    SegmentSeal, SignatureAlgorithm, ValidateArgs, VerifyProofArgs,
};
use trailvault_model::StoredEvent;

#[derive(Debug, Clone, Copy, PartialEq)]
enum Roots {
    None,
    Right,
    Wrong,
}

struct Vault {
    _dir: tempfile::TempDir,
    data: PathBuf,
    exported: PathBuf,
    store: Arc<dyn ObjectStore>,
}

async fn vault() -> Vault {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let store: Arc<dyn ObjectStore> = Arc::new(LocalFileSystem::new_with_prefix(&data).unwrap());
    let ring = Keyring::open_or_create(&data.join("keys"), SignatureAlgorithm::Ed25519).unwrap();
    let mut w = DigestWriter::open(store.clone(), ring).await.unwrap();
    let index = ProofIndex::open(&data.join(PROOF_INDEX_FILE)).unwrap();
    w.attach_proof_index(index).await.unwrap();
    let t0 = 1_763_780_400_000i64;
    let mut seq = 1u64;
    for p in 0..4i64 {
        if p == 2 {
            w.rotate_key(SignatureAlgorithm::Sha256WithRsa).unwrap();
        }
        let mut seals = Vec::new();
        // Per period: a 5-event segment as written before segments carried subtree roots,
        // then a 70-event one with its roots in the footer (wrong roots in the last period:
        // proofs must not trust them).
        for (n, roots) in [(5u64, Roots::None), (70, Roots::Right)] {
            let roots = if p == 3 && roots == Roots::Right {
                Roots::Wrong
            } else {
                roots
            };
            let mut ev: Vec<StoredEvent> = (0..n)
                .map(|i| StoredEvent {
                    seq: seq + i,
                    group: "/aws/audit".into(),
                    stream: "s".into(),
                    timestamp_ms: t0 + p * 60_000 + i as i64,
                    ingestion_time_ms: t0 + p * 60_000 + 500,
                    message: format!("event {} with \"quotes\" and ünïcode", seq + i),
                    normalized: None,
                })
                .collect();
            trailvault_segment::sort_for_segment(&mut ev);
            let key = format!("segments/group=%2Faws%2Faudit/year=2025/month=11/day=22/hour=03/{seq:020}-{:020}.parquet", seq + n - 1);
            seq += n;
            let bytes = match roots {
                Roots::None => trailvault_segment::encode(&ev).unwrap(),
                Roots::Right => trailvault_integrity::leaf::encode_segment(&ev).unwrap().0,
                Roots::Wrong => {
                    let mut leaves = trailvault_integrity::leaf::event_leaf_hashes(&ev);
                    leaves.reverse();
                    let meta = trailvault_integrity::leaf::subtree_roots_metadata(
                        &trailvault_integrity::leaf::subtree_roots(&leaves),
                    );
                    trailvault_segment::encode_with_metadata(&ev, vec![meta]).unwrap()
                }
            };
            let decoded = trailvault_segment::decode(
                Bytes::from(bytes.clone()),
                trailvault_segment::Projection::Core,
            )
            .unwrap();
            store
                .put(
                    &object_store::path::Path::parse(&key).unwrap(),
                    bytes.clone().into(),
                )
                .await
                .unwrap();
            seals.push(SegmentSeal::new(
                "/aws/audit",
                key,
                &seal_segment(&bytes, &decoded),
                bytes.len() as u64,
                t0,
            ));
        }
        w.write_period("/aws/audit", t0 + p * 60_000, t0 + (p + 1) * 60_000, &seals)
            .await
            .unwrap();
    }
    let exported = dir.path().join("exported-keys");
    w.keyring().export_public_keys(&exported).unwrap();
    Vault {
        _dir: dir,
        data,
        exported,
        store,
    }
}

fn python_verify(proof: &Path, keys: &Path) -> Option<bool> {
    let ok = Command::new("python3")
        .args(["-c", "import cryptography"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if !ok {
        println!(
            "note: python3 with `cryptography` not available; the Python verifier was not run"
        );
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/verify_proof.py");
    let out = Command::new("python3")
        .arg(script)
        .arg(proof)
        .arg(keys)
        .output()
        .unwrap();
    println!(
        "python: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(out.status.success())
}

#[tokio::test]
async fn event_and_consistency_proofs_verify_here_and_in_python() {
    let v = vault().await;
    let keys = PublicKeySet::load_dir(&v.exported).unwrap();
    assert_eq!(keys.keys().len(), 2);

    // Events in Ed25519- and in RSA-signed digests, in segments with right, wrong and no
    // subtree roots in their footers.
    for id in [
        "00000000000000000007",
        "00000000000000000153",
        "00000000000000000200",
        "00000000000000000260",
    ] {
        let proof = Proof::Event(Box::new(prove_event(&v.store, id, None).await.unwrap()));
        // The index the writer kept gives the same proof without reading every digest.
        let index = ProofIndex::open_read_only(&v.data.join(PROOF_INDEX_FILE))
            .unwrap()
            .unwrap();
        let indexed = prove_event(&v.store, id, Some(&index)).await.unwrap();
        assert_eq!(Proof::Event(Box::new(indexed)), proof);
        let summary = verify_proof(&proof, &keys).unwrap();
        assert!(summary.contains(id), "{summary}");
        let file = v.data.join(format!("proof-{id}.json"));
        std::fs::write(&file, serde_json::to_string_pretty(&proof).unwrap()).unwrap();
        if let Some(ok) = python_verify(&file, &v.exported) {
            assert!(ok, "python rejected a good proof");
        }
        let args = VerifyProofArgs {
            file: file.clone(),
            keys: v.exported.clone(),
        };
        assert_eq!(run_verify_proof_cli(args).unwrap(), 0);

        // A doctored message fails in both verifiers.
        let Proof::Event(mut bad) = proof.clone() else {
            unreachable!()
        };
        bad.event.message.push('!');
        let Err(why) = verify_proof(&Proof::Event(bad.clone()), &keys) else {
            panic!("accepted")
        };
        assert!(why.contains("leaf hash"), "{why}");
        // ... also when the forger recomputes the leaf hash: the Merkle path no longer fits.
        let forged = StoredEvent {
            seq: trailvault_model::seq_from_event_id(id).unwrap(),
            group: bad.event.log_group.clone(),
            stream: bad.event.log_stream.clone(),
            timestamp_ms: bad.event.timestamp,
            ingestion_time_ms: bad.event.ingestion_time,
            message: bad.event.message.clone(),
            normalized: None,
        };
        bad.event.leaf_hash = hex::encode(trailvault_integrity::leaf::event_leaf_hash(&forged));
        let Err(why) = verify_proof(&Proof::Event(bad.clone()), &keys) else {
            panic!("accepted")
        };
        assert!(why.contains("not in the segment"), "{why}");
        let bad_file = v.data.join("bad.json");
        std::fs::write(
            &bad_file,
            serde_json::to_string(&Proof::Event(bad)).unwrap(),
        )
        .unwrap();
        if let Some(ok) = python_verify(&bad_file, &v.exported) {
            assert!(!ok, "python accepted a doctored proof");
        }
    }

    // Consistency between the first and the newest checkpoint.
    let old = std::fs::read_to_string(v.data.join(checkpoint_key(1))).unwrap();
    let new = std::fs::read_to_string(v.data.join(checkpoint_key(4))).unwrap();
    let proof = Proof::Consistency(prove_consistency(&v.store, &old, &new).await.unwrap());
    assert_eq!(
        verify_proof(&proof, &keys).unwrap(),
        "checkpoint of 4 digests extends checkpoint of 1 digests"
    );
    let file = v.data.join("consistency.json");
    std::fs::write(&file, serde_json::to_string(&proof).unwrap()).unwrap();
    if let Some(ok) = python_verify(&file, &v.exported) {
        assert!(ok);
    }
    // Swapped around it proves nothing.
    let Proof::Consistency(mut c) = proof else {
        unreachable!()
    };
    std::mem::swap(&mut c.old_checkpoint, &mut c.new_checkpoint);
    assert!(verify_proof(&Proof::Consistency(c), &keys).is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn validate_cli_exit_status() {
    let v = vault().await;
    let args = |checkpoint: Option<PathBuf>| ValidateArgs {
        source: SourceArgs {
            data: None,
            path: Some(v.data.clone()),
            keys: Some(v.exported.clone()),
        },
        group: None,
        start: None,
        end: None,
        verbose: true,
        checkpoint,
        concurrency: 0,
        hash_only: false,
    };
    let cp = v.data.join("../exported.checkpoint");
    std::fs::copy(v.data.join(checkpoint_key(4)), &cp).unwrap();
    let a = args(Some(cp.clone()));
    assert_eq!(
        tokio::task::spawn_blocking(move || run_validate_cli(a).unwrap())
            .await
            .unwrap(),
        0
    );
    // Flip one byte of one segment: exit status 1.
    let seg = v.data.join("segments/group=%2Faws%2Faudit/year=2025/month=11/day=22/hour=03/00000000000000000076-00000000000000000080.parquet");
    let mut b = std::fs::read(&seg).unwrap();
    b[10] ^= 0x80;
    std::fs::write(&seg, b).unwrap();
    let a = args(Some(cp));
    assert_eq!(
        tokio::task::spawn_blocking(move || run_validate_cli(a).unwrap())
            .await
            .unwrap(),
        1
    );
}
