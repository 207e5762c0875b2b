//! A database written in record format 1 (the untyped JSON maps of the first releases,
//! `tests/fixtures/v1-db.jsonl`, made by `api::write_v1_fixture`) opens, is migrated to
//! the typed format (read old, write new), and serves the same answers.

use keep_api::store::{Op, RocksStore, Store, Table};
use serde_json::{json, Value};

use crate::common::*;

/// One stored key and value.
type Row = (Table, Vec<u8>, Vec<u8>);

/// The fixture: its header and its rows.
fn fixture() -> (Value, Vec<Row>) {
    let text = include_str!("fixtures/v1-db.jsonl");
    let mut lines = text.lines();
    let header: Value = serde_json::from_str(lines.next().unwrap()).unwrap();
    let rows = lines
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let table = Table::from_name(v["table"].as_str().unwrap()).unwrap();
            let hex = |k: &str| hex::decode(v[k].as_str().unwrap()).unwrap();
            (table, hex("key"), hex("value"))
        })
        .collect();
    (header, rows)
}

/// The fixture keeps no token secret: each token named in the header gets a fresh one
/// here, its stored (format 1) record and its hash index rewritten to match. Returns
/// the token texts by name.
fn fresh_secrets(h: &Value, rows: &mut [Row]) -> std::collections::HashMap<String, String> {
    let mut out = std::collections::HashMap::new();
    for (name, uuid) in h["token_uuids"].as_object().unwrap() {
        let uuid = uuid.as_str().unwrap();
        let token = keep_format::Token::generate(uuid.parse().unwrap());
        let new_hash = token.secret_hash();
        let record = rows
            .iter_mut()
            .find(|(t, k, _)| *t == Table::Tokens && k == uuid.as_bytes())
            .unwrap_or_else(|| panic!("no record for token {name}"));
        assert_eq!(record.2[0], 1, "a format 1 record");
        let mut obj: Value = serde_json::from_slice(&record.2[1..]).unwrap();
        let old_hash = obj["secret_hash"].as_str().unwrap().to_string();
        obj["secret_hash"] = json!(new_hash);
        record.2 = [vec![1], serde_json::to_vec(&obj).unwrap()].concat();
        let index = rows
            .iter_mut()
            .find(|(t, k, _)| *t == Table::IdxToken && k == old_hash.as_bytes())
            .unwrap_or_else(|| panic!("no hash index for token {name}"));
        index.1 = new_hash.into_bytes();
        out.insert(name.clone(), token.expose().to_string());
    }
    out
}

/// The first byte of every record of the record tables, and the stored format.
fn record_formats(db_path: &std::path::Path) -> (Vec<u8>, String) {
    let names: Vec<&str> = Table::ALL.iter().map(|t| t.name()).collect();
    let db =
        rocksdb::DB::open_cf_for_read_only(&rocksdb::Options::default(), db_path, &names, false)
            .unwrap();
    let mut firsts = Vec::new();
    for t in [
        Table::Users,
        Table::Groups,
        Table::Collections,
        Table::Versions,
        Table::Tokens,
        Table::Links,
    ] {
        let cf = db.cf_handle(t.name()).unwrap();
        for item in db.iterator_cf(cf, rocksdb::IteratorMode::Start) {
            let (_, v) = item.unwrap();
            firsts.push(v[0]);
        }
    }
    let cf = db.cf_handle("meta").unwrap();
    let format = db.get_cf(cf, b"format").unwrap().unwrap();
    (firsts, String::from_utf8(format).unwrap())
}

#[tokio::test]
async fn a_format_1_database_opens_migrates_and_serves() {
    let (h, mut rows) = fixture();
    let tokens = fresh_secrets(&h, &mut rows);
    assert_eq!(h["signing_key"], json!(KEY));
    assert_eq!(h["root_token"], json!(ROOT));
    let dir = tempfile::tempdir().unwrap();
    let db_path = dir.path().join("db");
    {
        let store = RocksStore::open(&db_path, false).unwrap();
        let ops = rows
            .iter()
            .map(|(t, k, v)| Op::Put(*t, k.clone(), v.clone()))
            .collect();
        store.write(ops).unwrap();
    }
    let (before, format) = record_formats(&db_path);
    assert_eq!(format, "1");
    assert!(
        before.len() >= 20 && before.iter().all(|b| *b == 1),
        "{before:?}"
    );

    let tok = |k: &str| tokens[k].clone();
    let id = |k: &str| h["uuids"][k].as_str().unwrap().to_string();
    let s = start_in(dir, Some(tok("admin"))).await;

    // read new: every record was rewritten, and the database says so
    let (after, format) = record_formats(&db_path);
    assert_eq!(format, "2");
    assert_eq!(after.len(), before.len());
    assert!(after.iter().all(|b| *b == 2), "{after:?}");

    // the same answers as before
    let (alice, bob) = (tok("alice"), tok("bob"));
    let (st, me) = s.get("/arvados/v1/users/current", &alice).await;
    assert_eq!(st, 200, "{me}");
    assert_eq!(me["uuid"], json!(id("alice")));
    assert_eq!(me["username"], json!("alice"));
    assert_eq!(me["kind"], json!("arvados#user"));
    let (st, t) = s
        .get(
            "/arvados/v1/api_client_authorizations/current",
            &tok("alice_expiring"),
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["expires_at"], json!("2200-01-01T00:00:00.000000000Z"));
    assert!(t.get("secret_hash").is_none());

    let cu = id("collection");
    let (st, c) = s
        .get(&format!("/arvados/v1/collections/{cu}"), &alice)
        .await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["name"], json!("reads.bam"));
    assert_eq!(c["portable_data_hash"], h["pdh"]);
    assert_eq!(c["properties"], json!({"sample": "A1"}));
    assert_eq!(c["version"], json!(2));
    assert_eq!(c["can_write"], json!(true));
    assert!(c["manifest_text"].as_str().unwrap().contains("+A"), "{c}");
    assert!(c["unsigned_manifest_text"]
        .as_str()
        .unwrap()
        .contains("./dir "));
    let (st, v) = s
        .get(&format!("/arvados/v1/collections/{cu}/versions"), &alice)
        .await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["items_available"], json!(2));
    let (st, by_pdh) = s
        .get(
            &format!("/arvados/v1/collections/{}", h["pdh"].as_str().unwrap()),
            &alice,
        )
        .await;
    assert_eq!(st, 200, "{by_pdh}");

    // trash, projects, filter groups, permissions
    let tu = id("trashed");
    assert_eq!(
        s.get(&format!("/arvados/v1/collections/{tu}"), &alice)
            .await
            .0,
        404
    );
    let (st, t) = s
        .get(
            &format!("/arvados/v1/collections/{tu}?include_trash=true"),
            &alice,
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["is_trashed"], json!(true));
    let p = id("project");
    let (st, g) = s.get(&format!("/arvados/v1/groups/{p}"), &bob).await;
    assert_eq!(st, 200, "bob reads the project alice shared: {g}");
    assert_eq!(g["properties"], json!({"lab": "x", "n": 3}));
    let (st, fg) = s
        .get(
            &format!("/arvados/v1/groups/{}/contents", id("filter_group")),
            &alice,
        )
        .await;
    assert_eq!(st, 200, "{fg}");
    let uuids: Vec<&str> = fg["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["uuid"].as_str().unwrap())
        .collect();
    assert!(uuids.contains(&cu.as_str()), "{fg}");
    let (st, l) = s
        .get(&format!("/arvados/v1/links/{}", id("tag_link")), &alice)
        .await;
    assert_eq!(st, 200, "{l}");
    assert_eq!(l["properties"], json!({"why": "test"}));

    // and writes go on: names stay unique under their owner
    let (st, e) = s
        .post(
            "/arvados/v1/collections",
            &alice,
            json!({"collection": {"name": "reads.bam", "owner_uuid": p}}),
        )
        .await;
    assert_eq!(st, 422, "{e}");
    let (st, c2) = s
        .patch(
            &format!("/arvados/v1/collections/{cu}"),
            &alice,
            json!({"collection": {"name": "renamed.bam"}}),
        )
        .await;
    assert_eq!(st, 200, "{c2}");
    assert_eq!(c2["version"], json!(3));
}
