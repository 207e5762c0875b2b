//! The permission matrix: actors × operations on users, projects and collections.

use crate::common::*;
use serde_json::{json, Value};

struct Actor {
    name: &'static str,
    token: String,
}

/// Expected codes per operation: get, list (1 = 200 and listed, 0 = 200 and not
/// listed, else the status), create, update, delete.
type Row = [u16; 5];

async fn link(s: &Server, token: &str, tail: &str, name: &str, head: &str) {
    let (st, v) = s
        .post(
            "/arvados/v1/links",
            token,
            json!({"link": {"link_class": "permission", "name": name, "tail_uuid": tail, "head_uuid": head}}),
        )
        .await;
    assert_eq!(st, 200, "{v}");
}

async fn list_code(s: &Server, token: &str, path: &str, uuid: &str) -> u16 {
    let (st, l) = s.get(&format!("{path}?limit=1000"), token).await;
    if st != 200 {
        return st;
    }
    let found = l["items"]
        .as_array()
        .unwrap()
        .iter()
        .any(|i| i["uuid"] == json!(uuid));
    found as u16
}

#[tokio::test]
async fn permission_matrix() {
    let s = start().await;
    let (alice, owner) = s.user("alice").await;
    let (_bob, other) = s.user("bob").await;
    let p = s.project(&owner, "P", None).await;
    let mut actors = vec![
        Actor {
            name: "owner",
            token: owner.clone(),
        },
        Actor {
            name: "other",
            token: other.clone(),
        },
        Actor {
            name: "admin",
            token: s.admin.clone(),
        },
    ];
    for (name, level) in [
        ("reader", "can_read"),
        ("writer", "can_write"),
        ("manager", "can_manage"),
    ] {
        let (u, t) = s.user(name).await;
        link(&s, &owner, &u, level, &p).await;
        actors.push(Actor { name, token: t });
    }
    // roles: alice creates them (and so manages them), grants each on P, adds a member
    for (name, level) in [("role_reader", "can_read"), ("role_writer", "can_write")] {
        let (st, r) = s
            .post(
                "/arvados/v1/groups",
                &owner,
                json!({"group": {"name": name, "group_class": "role"}}),
            )
            .await;
        assert_eq!(st, 200, "{r}");
        let role = r["uuid"].as_str().unwrap();
        link(&s, &owner, role, level, &p).await;
        let (u, t) = s.user(name).await;
        link(&s, &owner, &u, "can_write", role).await;
        actors.push(Actor { name, token: t });
    }
    let anon = s.token_for("zzzzz-tpzed-anonymouspublic", json!({})).await;
    actors.push(Actor {
        name: "anonymous",
        token: anon.clone(),
    });
    let expired = s
        .token_for(&alice, json!({"expires_at": "2001-01-01T00:00:00Z"}))
        .await;
    actors.push(Actor {
        name: "expired",
        token: expired,
    });
    let revoked = s.token_for(&alice, json!({})).await;
    let (st, _) = s
        .delete(
            &format!(
                "/arvados/v1/api_client_authorizations/{}",
                revoked.split('/').nth(1).unwrap()
            ),
            &owner,
        )
        .await;
    assert_eq!(st, 200);
    actors.push(Actor {
        name: "revoked",
        token: revoked,
    });

    let coll_rows: &[(&str, Row)] = &[
        ("owner", [200, 1, 200, 200, 200]),
        ("other", [404, 0, 404, 404, 404]),
        ("admin", [200, 1, 200, 200, 200]),
        ("reader", [200, 1, 403, 403, 403]),
        ("writer", [200, 1, 200, 200, 200]),
        ("manager", [200, 1, 200, 200, 200]),
        ("role_reader", [200, 1, 403, 403, 403]),
        ("role_writer", [200, 1, 200, 200, 200]),
        ("anonymous", [404, 0, 403, 404, 404]),
        ("sharing", [200, 403, 403, 403, 403]),
        ("expired", [401, 401, 401, 401, 401]),
        ("revoked", [401, 401, 401, 401, 401]),
    ];
    let mut failures = Vec::new();
    for (who, want) in coll_rows {
        let c = s
            .collection(&owner, &format!("c-{who}"), Some(&p), who.as_bytes())
            .await;
        let cu = c["uuid"].as_str().unwrap().to_string();
        let token = if *who == "sharing" {
            s.token_for(
                &alice,
                json!({"scopes": [format!("GET /arvados/v1/collections/{cu}"), format!("GET /arvados/v1/collections/{cu}/")]}),
            )
            .await
        } else {
            actors
                .iter()
                .find(|a| a.name == *who)
                .unwrap()
                .token
                .clone()
        };
        let path = format!("/arvados/v1/collections/{cu}");
        let got: Row = [
            s.get(&path, &token).await.0,
            list_code(&s, &token, "/arvados/v1/collections", &cu).await,
            s.post(
                "/arvados/v1/collections",
                &token,
                json!({"collection": {"owner_uuid": p, "name": format!("new-{who}")}}),
            )
            .await
            .0,
            s.patch(
                &path,
                &token,
                json!({"collection": {"name": format!("renamed-{who}")}}),
            )
            .await
            .0,
            s.delete(&path, &token).await.0,
        ];
        if got != *want {
            failures.push(format!("collections/{who}: want {want:?} got {got:?}"));
        }
    }

    let proj_rows: &[(&str, Row)] = &[
        ("owner", [200, 1, 200, 200, 200]),
        ("other", [404, 0, 404, 404, 404]),
        ("admin", [200, 1, 200, 200, 200]),
        ("reader", [200, 1, 403, 403, 403]),
        ("writer", [200, 1, 200, 200, 200]),
        ("manager", [200, 1, 200, 200, 200]),
        ("role_reader", [200, 1, 403, 403, 403]),
        ("role_writer", [200, 1, 200, 200, 200]),
        ("anonymous", [404, 0, 403, 404, 404]),
        ("sharing", [403, 403, 403, 403, 403]),
        ("expired", [401, 401, 401, 401, 401]),
        ("revoked", [401, 401, 401, 401, 401]),
    ];
    for (who, want) in proj_rows {
        let sub = s.project(&owner, &format!("sub-{who}"), Some(&p)).await;
        let token = if *who == "sharing" {
            s.token_for(
                &alice,
                json!({"scopes": ["GET /arvados/v1/collections/zzzzz-4zz18-000000000000000"]}),
            )
            .await
        } else {
            actors
                .iter()
                .find(|a| a.name == *who)
                .unwrap()
                .token
                .clone()
        };
        let path = format!("/arvados/v1/groups/{sub}");
        let got: Row = [
            s.get(&path, &token).await.0,
            list_code(&s, &token, "/arvados/v1/groups", &sub).await,
            s.post(
                "/arvados/v1/groups",
                &token,
                json!({"group": {"owner_uuid": sub, "name": format!("new-{who}"), "group_class": "project"}}),
            )
            .await
            .0,
            s.patch(&path, &token, json!({"group": {"description": format!("by {who}")}})).await.0,
            s.delete(&path, &token).await.0,
        ];
        if got != *want {
            failures.push(format!("projects/{who}: want {want:?} got {got:?}"));
        }
    }

    let user_rows: &[(&str, Row)] = &[
        ("owner", [200, 1, 403, 200, 403]),
        ("other", [404, 0, 403, 404, 404]),
        ("admin", [200, 1, 200, 200, 200]),
        ("reader", [404, 0, 403, 404, 404]),
        ("writer", [404, 0, 403, 404, 404]),
        ("manager", [404, 0, 403, 404, 404]),
        ("role_reader", [404, 0, 403, 404, 404]),
        ("role_writer", [404, 0, 403, 404, 404]),
        ("anonymous", [404, 0, 403, 404, 404]),
        ("sharing", [403, 403, 403, 403, 403]),
        ("expired", [401, 401, 401, 401, 401]),
        ("revoked", [401, 401, 401, 401, 401]),
    ];
    for (who, want) in user_rows {
        let token = if *who == "sharing" {
            s.token_for(
                &alice,
                json!({"scopes": ["GET /arvados/v1/collections/zzzzz-4zz18-000000000000000"]}),
            )
            .await
        } else {
            actors
                .iter()
                .find(|a| a.name == *who)
                .unwrap()
                .token
                .clone()
        };
        let path = format!("/arvados/v1/users/{alice}");
        // only the admin deletes, and then a throwaway user
        let victim = if *who == "admin" {
            s.user("throwaway").await.0
        } else {
            alice.clone()
        };
        let got: Row = [
            s.get(&path, &token).await.0,
            list_code(&s, &token, "/arvados/v1/users", &alice).await,
            s.post(
                "/arvados/v1/users",
                &token,
                json!({"user": {"username": format!("new{who}").replace('_', "")}}),
            )
            .await
            .0,
            s.patch(&path, &token, json!({"user": {"last_name": who}}))
                .await
                .0,
            s.delete(&format!("/arvados/v1/users/{victim}"), &token)
                .await
                .0,
        ];
        if got != *want {
            failures.push(format!("users/{who}: want {want:?} got {got:?}"));
        }
    }
    assert!(
        failures.is_empty(),
        "permission matrix mismatches:\n{}",
        failures.join("\n")
    );
    // alice survived every attempt
    assert_eq!(s.get("/arvados/v1/users/current", &owner).await.0, 200);
}

#[tokio::test]
async fn public_and_home_sharing() {
    let s = start().await;
    let (alice, at) = s.user("alice").await;
    let (bob, bt) = s.user("bob").await;
    let anon = s.token_for("zzzzz-tpzed-anonymouspublic", json!({})).await;
    let c = s.collection(&at, "pub", None, b"public data").await;
    let cu = c["uuid"].as_str().unwrap();
    let path = format!("/arvados/v1/collections/{cu}");
    assert_eq!(s.get(&path, &anon).await.0, 404);
    assert_eq!(s.get(&path, &bt).await.0, 404);
    // granting the public role makes it world-readable, not writable
    link(&s, &at, "zzzzz-j7d0g-anonymouspublic", "can_read", cu).await;
    assert_eq!(s.get(&path, &anon).await.0, 200);
    assert_eq!(s.get(&path, &bt).await.0, 200);
    assert_eq!(
        s.patch(&path, &anon, json!({"collection": {"name": "x"}}))
            .await
            .0,
        403
    );
    assert_eq!(
        s.patch(&path, &bt, json!({"collection": {"name": "x"}}))
            .await
            .0,
        403
    );
    // a can_read grant on alice's user shares her home project
    let c2 = s.collection(&at, "home", None, b"home data").await;
    let p2 = format!("/arvados/v1/collections/{}", c2["uuid"].as_str().unwrap());
    assert_eq!(s.get(&p2, &bt).await.0, 404);
    link(&s, &at, &bob, "can_read", &alice).await;
    assert_eq!(s.get(&p2, &bt).await.0, 200);
    assert_eq!(
        s.get(&format!("/arvados/v1/users/{alice}"), &bt).await.0,
        200
    );
    let (st, l) = s
        .get(&format!("/arvados/v1/groups/{alice}/contents"), &bt)
        .await;
    assert_eq!((st, l["items_available"].clone()), (200, json!(2)));
    // bob cannot grant further (needs can_manage), nor see alice's tokens
    let (st, _) = s
        .post(
            "/arvados/v1/links",
            &bt,
            json!({"link": {"link_class": "permission", "name": "can_read", "tail_uuid": bob, "head_uuid": c2["uuid"]}}),
        )
        .await;
    assert_eq!(st, 403);
    let at_uuid = at.split('/').nth(1).unwrap();
    assert_eq!(
        s.get(
            &format!("/arvados/v1/api_client_authorizations/{at_uuid}"),
            &bt
        )
        .await
        .0,
        404
    );
    // bob sees the link that names him; alice can revoke it
    let (_, links) = s.get("/arvados/v1/links", &bt).await;
    let mine: Vec<&Value> = links["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["tail_uuid"] == json!(bob))
        .collect();
    assert_eq!(mine.len(), 1);
    let lu = mine[0]["uuid"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/arvados/v1/links/{lu}"), &at).await.0,
        200
    );
    assert_eq!(s.get(&p2, &bt).await.0, 404);
    // permission link validation
    let (st, _) = s
        .post(
            "/arvados/v1/links",
            &at,
            json!({"link": {"link_class": "permission", "name": "can_fly", "tail_uuid": bob, "head_uuid": c2["uuid"]}}),
        )
        .await;
    assert_eq!(st, 422);
    let (st, _) = s
        .post(
            "/arvados/v1/links",
            &at,
            json!({"link": {"link_class": "permission", "name": "can_read", "tail_uuid": bob, "head_uuid": "zzzzz-4zz18-aaaaaaaaaaaaaaa"}}),
        )
        .await;
    assert_eq!(st, 404);
}

/// Issue 11 item 4: an owner change needs can_write on the old owner as well as on the
/// new one — for collections, projects and links alike. A writer (or manager) of an
/// object cannot take it from its owner.
#[tokio::test]
async fn owner_change_needs_write_on_the_old_owner() {
    let s = start().await;
    let (alice, at) = s.user("alice").await;
    let (bob, bt) = s.user("bob").await;
    // bob may write alice's collection, and manage her project
    let c = s.collection(&at, "c", None, b"alice's").await;
    let cu = c["uuid"].as_str().unwrap().to_string();
    link(&s, &at, &bob, "can_write", &cu).await;
    let p = s.project(&at, "P", None).await;
    link(&s, &at, &bob, "can_manage", &p).await;
    let (st, e) = s
        .patch(
            &format!("/arvados/v1/collections/{cu}"),
            &bt,
            json!({"collection": {"owner_uuid": bob}}),
        )
        .await;
    assert_eq!(st, 403, "{e}");
    assert!(
        e["errors"][0].as_str().unwrap().contains("current owner"),
        "{e}"
    );
    let (st, e) = s
        .patch(
            &format!("/arvados/v1/groups/{p}"),
            &bt,
            json!({"group": {"owner_uuid": bob}}),
        )
        .await;
    assert_eq!(st, 403, "{e}");
    // alice still owns both and reads them
    let (st, c2) = s.get(&format!("/arvados/v1/collections/{cu}"), &at).await;
    assert_eq!((st, &c2["owner_uuid"]), (200, &json!(alice)));
    let (st, p2) = s.get(&format!("/arvados/v1/groups/{p}"), &at).await;
    assert_eq!((st, &p2["owner_uuid"]), (200, &json!(alice)));
    // a link alice made on the project: its manager bob may edit it, not take it
    let (st, l) = s
        .post(
            "/arvados/v1/links",
            &at,
            json!({"link": {"link_class": "tag", "name": "t", "tail_uuid": alice, "head_uuid": p}}),
        )
        .await;
    assert_eq!(st, 200, "{l}");
    let lu = l["uuid"].as_str().unwrap();
    let (st, e) = s
        .patch(
            &format!("/arvados/v1/links/{lu}"),
            &bt,
            json!({"link": {"owner_uuid": bob}}),
        )
        .await;
    assert_eq!(st, 403, "{e}");
    // with write on both owners a move is fine: bob moves the collection from P
    // (which he manages) to his home
    let c3 = s.collection(&at, "in-p", Some(&p), b"in p").await;
    let (st, e) = s
        .patch(
            &format!("/arvados/v1/collections/{}", c3["uuid"].as_str().unwrap()),
            &bt,
            json!({"collection": {"owner_uuid": bob}}),
        )
        .await;
    assert_eq!(st, 200, "{e}");
    // and alice moves her collection into P and renames it in one update
    let (st, e) = s
        .patch(
            &format!("/arvados/v1/collections/{cu}"),
            &at,
            json!({"collection": {"owner_uuid": p, "name": "moved"}}),
        )
        .await;
    assert_eq!(st, 200, "{e}");
    assert_eq!((&e["owner_uuid"], &e["name"]), (&json!(p), &json!("moved")));
}

/// Issue 11 item 12: a sharing link shares the collection as it is, not its history:
/// no versions list, and nothing once the collection is trashed.
#[tokio::test]
async fn sharing_link_reads_the_collection_not_its_history() {
    let s = start().await;
    let (alice, at) = s.user("alice").await;
    let c = s.collection(&at, "c", None, b"v1").await;
    let cu = c["uuid"].as_str().unwrap().to_string();
    let path = format!("/arvados/v1/collections/{cu}");
    let (st, _) = s
        .patch(&path, &at, json!({"collection": {"name": "c, v2"}}))
        .await;
    assert_eq!(st, 200);
    let share = s
        .token_for(
            &alice,
            json!({"scopes": [format!("GET /arvados/v1/collections/{cu}"), format!("GET /arvados/v1/collections/{cu}/")]}),
        )
        .await;
    let (st, v) = s.get(&path, &share).await;
    assert_eq!((st, &v["name"]), (200, &json!("c, v2")));
    let (st, e) = s.get(&format!("{path}/versions"), &share).await;
    assert_eq!(st, 403, "{e}");
    // the owner sees the history, and so does a token scoped to read collections
    let (st, vs) = s.get(&format!("{path}/versions"), &at).await;
    assert_eq!((st, vs["items_available"].as_u64()), (200, Some(2)));
    let reader = s
        .token_for(&alice, json!({"scopes": ["GET /arvados/v1/collections/"]}))
        .await;
    assert_eq!(s.get(&format!("{path}/versions"), &reader).await.0, 200);
    // past versions by their own UUID are outside the link's scope
    let v1 = vs["items"][0]["uuid"].as_str().unwrap();
    assert_eq!(
        s.get(&format!("/arvados/v1/collections/{v1}"), &share)
            .await
            .0,
        403
    );
    // trashed: gone for the link, include_trash or not; the owner still sees it
    assert_eq!(s.delete(&path, &at).await.0, 200);
    assert_eq!(s.get(&path, &share).await.0, 404);
    assert_eq!(
        s.get(&format!("{path}?include_trash=true"), &share).await.0,
        404
    );
    assert_eq!(
        s.get(&format!("{path}?include_trash=true"), &at).await.0,
        200
    );
}
