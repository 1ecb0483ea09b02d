//! Importing through a running vault's API (`--endpoint`): a real server on a loopback port.

mod common;

use std::sync::Arc;

use trailvault_auth::{AccessKey, MemoryKeyStore, VerifyConfig};
use trailvault_import::placement::{stream_for, LEDGER_GROUP, QUARANTINE_GROUP};
use trailvault_import::{import, ImportArgs};
use trailvault_server::{serve, AppState};
use trailvault_store::{now_ms, PutOptions, StreamFilter, Vault, VaultConfig};

async fn counts(vault: &Vault) -> std::collections::BTreeMap<String, u64> {
    trailvault_import::group_counts(vault)
        .await
        .unwrap()
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn imports_through_the_api_resumes_and_is_idempotent() {
    let data = tempfile::tempdir().unwrap();
    let vault = Vault::open(VaultConfig::new(data.path())).await.unwrap();
    let key = AccessKey::generate("importer").unwrap();
    // The only test in this binary: the import discovers these like any AWS client.
    std::env::set_var("AWS_ACCESS_KEY_ID", &key.id);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", &key.secret);
    let keys = MemoryKeyStore::default();
    keys.insert(key);
    let state = Arc::new(AppState {
        vault: vault.clone(),
        keys: Arc::new(keys),
        verify: VerifyConfig::default(),
        account_id: "123456789012".into(),
        region: "us-east-1".into(),
        monitor: None,
        integrity_status: Default::default(),
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve(listener, state, async move {
        let _ = stopped.await;
    }));

    let src = tempfile::tempdir().unwrap();
    let exp = common::write_tree(src.path(), 11);
    let mut a = ImportArgs::embedded(src.path().to_str().unwrap(), data.path());
    a.data = None;
    a.endpoint = Some(endpoint);
    a.jobs = Some(2);

    // An interrupted earlier run: the first 4 records of one CloudTrail file are stored.
    let files = trailvault_import::source::Source::Local {
        root: src.path().to_owned(),
        single: false,
    }
    .list()
    .await
    .unwrap();
    let victim = files
        .iter()
        .find(|f| f.key.contains("/CloudTrail/"))
        .unwrap();
    let group = format!(
        "awslogs/cloudtrail/{}/{}",
        common::ACCOUNTS[0],
        common::REGIONS[1]
    );
    assert!(victim.key.contains(common::REGIONS[1]), "{}", victim.key);
    let raw = trailvault_import::decode::decode(
        std::fs::File::open(src.path().join(&victim.key)).unwrap(),
        1 << 30,
    )
    .unwrap();
    let out = trailvault_formats::parse(trailvault_formats::Format::Cloudtrail, &raw.content);
    let first: Vec<_> = out.records[..4]
        .iter()
        .map(|r| trailvault_store::InputEvent {
            timestamp_ms: r.normalized.time_ms.unwrap(),
            message: r.raw.clone(),
            normalized: Some(r.normalized.clone()),
        })
        .collect();
    let _ = vault.create_log_group(trailvault_store::LogGroupMeta {
        name: group.clone(),
        created_ms: 0,
        retention_days: None,
        kms_key_id: None,
        log_group_class: "STANDARD".into(),
        deletion_protection: false,
        tags: Default::default(),
    });
    let stream = stream_for(&victim.key);
    vault.create_log_stream(&group, &stream).unwrap();
    vault
        .put_log_events(&group, &stream, first, PutOptions::import(now_ms()))
        .await
        .unwrap();

    let s = import(&a).await.unwrap();
    assert_eq!(s.records_already_present, 4, "{}", s.render());
    assert_eq!(
        s.records_read,
        s.records_stored + s.records_quarantined + s.records_already_present
    );
    let c = counts(&vault).await;
    for (g, n) in &exp.groups {
        assert_eq!(c.get(g), Some(n), "group {g}: {c:?}");
    }
    assert_eq!(
        c[QUARANTINE_GROUP],
        exp.quarantined_records + exp.quarantined_files.len() as u64
    );
    assert_eq!(c[LEDGER_GROUP], exp.files_imported + 1);

    // Events sent through the API carry the normalized form (trailvaultNormalized) and
    // their own, old timestamps (trailvaultImport).
    let events = vault
        .read_events(
            "awslogs/vpc-flow/111122223333/us-east-1",
            &StreamFilter::All,
            None,
            None,
        )
        .await
        .unwrap();
    assert_eq!(
        events.len() as u64,
        exp.groups["awslogs/vpc-flow/111122223333/us-east-1"]
    );
    assert!(events
        .iter()
        .all(|e| e.timestamp_ms < common::START_MS + 86_400_000));
    assert!(events.iter().all(|e| e
        .normalized
        .as_ref()
        .is_some_and(|n| n.source == "vpc-flow")));

    // The ledger is read back through the API: a second run stores nothing.
    let again = import(&a).await.unwrap();
    assert_eq!(again.records_stored, 0, "{}", again.render());
    assert_eq!(again.files_imported(), 0);
    assert_eq!(counts(&vault).await, c);

    let _ = stop.send(());
    let _ = server.await;
}
