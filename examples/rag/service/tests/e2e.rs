//! End-to-end over real HTTP against real PostgreSQL (the test harness's fresh databases).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::*;
use rag_service::demo::ids::*;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

#[tokio::test]
async fn users_see_their_tenant_and_are_refused_others_and_refusals_are_counted() {
    let service = Service::start().await;
    let (status, body) = service
        .get(ALICE, &format!("{}/documents", acme(ACME_HANDBOOK)))
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let titles: Vec<&str> = body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["title"].as_str().unwrap())
        .collect();
    assert_eq!(titles, ["Acme vacation policy"]);

    // Another tenant: 404 (not 403), same as a tenant that does not exist.
    let (status, body) = service
        .get(ALICE, &format!("{}/documents", globex(GLOBEX_RESEARCH)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    let (status, _) = service
        .get(
            ALICE,
            &format!("/t/{}/projects/{}/documents", Uuid::new_v4(), ACME_HANDBOOK),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another tenant's project under her own tenant: 404.
    let (status, _) = service
        .get(ALICE, &format!("{}/documents", acme(GLOBEX_RESEARCH)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Bob has no role in Acme/support: 404, same as a project that does not exist.
    let (status, _) = service
        .get(BOB, &format!("{}/documents", acme(ACME_SUPPORT)))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = service
        .get(BOB, &format!("{}/documents", acme(Uuid::new_v4())))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Role too low: Bob is a viewer, Alice only a viewer in support.
    let doc = json!({"title": "t", "content_hash": "h-1"});
    let (status, body) = service
        .post(
            BOB,
            &format!("{}/documents", acme(ACME_HANDBOOK)),
            doc.clone(),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert_eq!(body["error"]["code"], "forbidden");
    let (status, _) = service
        .post(ALICE, &format!("{}/documents", acme(ACME_SUPPORT)), doc)
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // Globex's document id read through Acme: 404.
    let globex_doc: Uuid = {
        let (_, body) = service
            .get(CAROL, &format!("{}/documents", globex(GLOBEX_RESEARCH)))
            .await;
        body["items"][0]["id"].as_str().unwrap().parse().unwrap()
    };
    let (status, _) = service
        .get(
            ALICE,
            &format!("{}/documents/{globex_doc}", acme(ACME_HANDBOOK)),
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Token problems: 401 with a JSON error.
    let path = format!("{}/documents", acme(ACME_HANDBOOK));
    let (status, body) = service.call(None, Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error"]["code"], "unauthorized");
    let url = format!("{}{}", service.base, path);
    let expired = rag_service::demo::mint_token(SECRET, ISSUER, AUDIENCE, ALICE, -120).unwrap();
    let forged = rag_service::demo::mint_token(b"wrong", ISSUER, AUDIENCE, ALICE, 600).unwrap();
    let foreign = rag_service::demo::mint_token(SECRET, ISSUER, "other-app", ALICE, 600).unwrap();
    for token in [
        expired.as_str(),
        forged.as_str(),
        foreign.as_str(),
        "not.a.jwt",
    ] {
        let response = service
            .client
            .get(&url)
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{token}");
    }

    let metrics = service.metrics().await;
    for (reason, at_least) in [
        ("unknown_tenant", 2.0),
        ("unknown_project", 3.0),
        ("role_too_low", 2.0),
        ("missing_token", 1.0),
        ("expired_token", 1.0),
        ("bad_signature", 1.0),
        ("wrong_audience", 1.0),
        ("malformed_token", 1.0),
    ] {
        let value = sample(
            &metrics,
            &format!("tenancy_http_refused_total{{reason=\"{reason}\"}}"),
        )
        .unwrap_or(0.0);
        assert!(value >= at_least, "{reason}: {value}\n{metrics}");
    }
    assert_eq!(sample(&metrics, "tenancy_tenants"), Some(2.0));
    assert_eq!(sample(&metrics, "tenancy_projects"), Some(3.0));
    assert!(sample(&metrics, "tenancy_db_pool_max_connections").is_some());
    // Tenants are labelled by a keyed hash of their id, never by the id itself.
    assert!(metrics.contains(&format!(
        "tenancy_http_request_duration_seconds_count{{tenant=\"{}\"}}",
        tenant_label(ACME)
    )));
    for id in [
        ACME,
        GLOBEX,
        ACME_HANDBOOK,
        GLOBEX_RESEARCH,
        ALICE,
        BOB,
        CAROL,
    ] {
        assert!(
            !metrics.contains(&id.to_string()),
            "{id} exposed:\n{metrics}"
        );
    }
}

#[tokio::test]
async fn documents_chunks_search_queries_responses_assertions() {
    let service = Service::start().await;
    let base = acme(ACME_HANDBOOK);
    let mut ids = Vec::new();
    for n in 0..3 {
        let (status, body) = service
            .post(ALICE, &format!("{base}/documents"), json!({"title": format!("doc {n}"), "content_hash": format!("hash-{n}"), "metadata": {"n": n}}))
            .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
        assert_eq!(body["tenant_id"], ACME.to_string());
        ids.push(body["id"].as_str().unwrap().to_owned());
    }
    // Pagination: 4 documents (3 + the seeded one), pages of 3.
    let (_, first) = service
        .get(ALICE, &format!("{base}/documents?limit=3"))
        .await;
    assert_eq!(first["items"].as_array().unwrap().len(), 3);
    let after = first["next_after"].as_str().unwrap();
    let (_, second) = service
        .get(ALICE, &format!("{base}/documents?limit=3&after={after}"))
        .await;
    assert_eq!(second["items"].as_array().unwrap().len(), 1);
    assert!(second["next_after"].is_null());
    // Duplicate content hash: 409.
    let (status, _) = service
        .post(
            ALICE,
            &format!("{base}/documents"),
            json!({"title": "again", "content_hash": "hash-0"}),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // Update, get.
    let doc = &ids[0];
    let (status, body) = service
        .call(
            Some(ALICE),
            Method::PATCH,
            &format!("{base}/documents/{doc}"),
            Some(json!({"title": "renamed"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["title"], "renamed");
    // Chunks with embeddings, then search.
    let chunks: Vec<Value> = (0..5)
        .map(|i| json!({"ordinal": i, "content": format!("chunk {i}"), "token_count": 2, "embedding": axis(i)}))
        .collect();
    let (status, body) = service
        .post(
            ALICE,
            &format!("{base}/documents/{doc}/chunks"),
            json!({"chunks": chunks}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    assert_eq!(body.as_array().unwrap().len(), 5);
    let (_, listed) = service
        .get(ALICE, &format!("{base}/documents/{doc}/chunks"))
        .await;
    assert_eq!(listed["items"].as_array().unwrap().len(), 5);
    // Globex has a chunk along the same axis: it must never show up for Acme.
    let (_, gdocs) = service
        .get(CAROL, &format!("{}/documents", globex(GLOBEX_RESEARCH)))
        .await;
    let gdoc = gdocs["items"][0]["id"].as_str().unwrap().to_owned();
    let (status, _) = service
        .post(CAROL, &format!("{}/documents/{gdoc}/chunks", globex(GLOBEX_RESEARCH)), json!({"chunks": [{"ordinal": 0, "content": "globex", "token_count": 1, "embedding": axis(3)}]}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, hits) = service
        .post(
            ALICE,
            &format!("{base}/search"),
            json!({"embedding": axis(3), "k": 3}),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{hits}");
    let hits = hits.as_array().unwrap();
    assert_eq!(hits.len(), 3);
    assert_eq!(hits[0]["content"], "chunk 3");
    let (status, hits) = service
        .post(
            ALICE,
            &format!("/t/{ACME}/search"),
            json!({"embedding": axis(3), "k": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert!(hits
        .as_array()
        .unwrap()
        .iter()
        .all(|h| h["content"] != "globex"));
    assert_eq!(hits[0]["content"], "chunk 3");
    // Queries (viewers may ask), responses and assertions (editors).
    let (status, query) = service
        .post(
            BOB,
            &format!("{base}/queries"),
            json!({"query_text": "what is the policy?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{query}");
    let query_id = query["id"].as_str().unwrap();
    let (status, _) = service
        .post(
            BOB,
            &format!("{base}/queries/{query_id}/responses"),
            json!({"answer_text": "a", "model": "m"}),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, response) = service
        .post(
            ALICE,
            &format!("{base}/queries/{query_id}/responses"),
            json!({"answer_text": "25 days", "model": "m", "prompt_tokens": 10}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{response}");
    let response_id = response["id"].as_str().unwrap();
    let chunk_id = listed["items"][0]["id"].as_str().unwrap();
    let (status, assertion) = service
        .post(
            ALICE,
            &format!("{base}/responses/{response_id}/assertions"),
            json!({"claim": "25 days", "chunk_id": chunk_id, "verdict": "supported", "score": 0.9}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{assertion}");
    let (_, list) = service
        .get(BOB, &format!("{base}/responses/{response_id}/assertions"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (_, list) = service
        .get(BOB, &format!("{base}/queries/{query_id}/responses"))
        .await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let (status, _) = service
        .get(BOB, &format!("{base}/queries/{query_id}"))
        .await;
    assert_eq!(status, StatusCode::OK);
    // Viewers read only the queries they asked; Alice (owner) reads Bob's and hers.
    let (status, alices) = service
        .post(
            ALICE,
            &format!("{base}/queries"),
            json!({"query_text": "who approves leave?"}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{alices}");
    let alices_id = alices["id"].as_str().unwrap();
    let (_, list) = service.get(BOB, &format!("{base}/queries")).await;
    let ids: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|q| q["id"].as_str())
        .collect();
    assert_eq!(ids, vec![query_id]);
    let (status, _) = service
        .get(BOB, &format!("{base}/queries/{alices_id}"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = service
        .get(BOB, &format!("{base}/queries/{alices_id}/responses"))
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, list) = service.get(ALICE, &format!("{base}/queries")).await;
    assert_eq!(list["items"].as_array().unwrap().len(), 2);
    // Delete needs admin: Bob 403, Alice 204, then 404.
    let (status, _) = service
        .call(
            Some(BOB),
            Method::DELETE,
            &format!("{base}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::DELETE,
            &format!("{base}/documents/{doc}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = service.get(ALICE, &format!("{base}/documents/{doc}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn membership_admin_rules_and_audit() {
    let service = Service::start().await;
    let members = format!("{}/members", acme(ACME_HANDBOOK));
    let dave = Uuid::new_v4();
    let erin = Uuid::new_v4();
    let (status, body) = service.get(ALICE, &members).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"].as_array().unwrap().len(), 2);
    // Only admins/owners.
    let (status, _) = service.get(BOB, &members).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = service
        .post(BOB, &members, json!({"user_id": dave, "role": "viewer"}))
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = service
        .post(ALICE, &members, json!({"user_id": dave, "role": "editor"}))
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let (status, body) = service
        .post(
            ALICE,
            &members,
            json!({"user_id": dave, "role": "superuser"}),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("role"));
    // The last owner can be neither removed nor demoted.
    let alice_path = format!("{members}/{ALICE}");
    let (status, body) = service
        .call(Some(ALICE), Method::DELETE, &alice_path, None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["error"]["code"], "last_owner");
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::PUT,
            &alice_path,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    // With a second owner, Alice may step down to admin; as admin she cannot touch owners.
    let (status, _) = service
        .post(ALICE, &members, json!({"user_id": erin, "role": "owner"}))
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, body) = service
        .call(
            Some(ALICE),
            Method::PUT,
            &alice_path,
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["role"], "admin");
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::DELETE,
            &format!("{members}/{erin}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::PUT,
            &format!("{members}/{dave}"),
            Some(json!({"role": "owner"})),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::DELETE,
            &format!("{members}/{dave}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, _) = service
        .call(
            Some(ALICE),
            Method::DELETE,
            &format!("{members}/{dave}"),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Another tenant's admin cannot manage Acme's members.
    let (status, _) = service.get(CAROL, &members).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Every change is in the audit table, with the caller as actor and ids only.
    let rows: Vec<(String, String, Value)> = sqlx::query_as(
        "SELECT actor, action, subject FROM tenancy.audit_log WHERE tenant_id = $1 ORDER BY id",
    )
    .bind(ACME)
    .fetch_all(service.db.admin_pool())
    .await
    .unwrap();
    let actions: Vec<&str> = rows.iter().map(|r| r.1.as_str()).collect();
    assert_eq!(
        actions,
        [
            "member.add",
            "member.add",
            "member.set_role",
            "member.remove"
        ]
    );
    assert!(rows.iter().all(|r| r.0 == ALICE.to_string()));
    assert_eq!(rows[2].2["previous_role"], "owner");
}

#[tokio::test]
async fn concurrent_users_never_see_another_tenants_rows() {
    let service = Service::start().await;
    // 10 users per tenant, each with a document of their own.
    let mut users = Vec::new();
    for n in 0..20 {
        let user = Uuid::new_v4();
        let (tenant, project) = if n % 2 == 0 {
            (ACME, ACME_HANDBOOK)
        } else {
            (GLOBEX, GLOBEX_RESEARCH)
        };
        service.grant(tenant, project, user, "editor").await;
        let (status, _) = service
            .post(
                user,
                &format!("/t/{tenant}/projects/{project}/documents"),
                json!({"title": format!("u{n}"), "content_hash": format!("c{n}")}),
            )
            .await;
        assert_eq!(status, StatusCode::CREATED);
        users.push((user, tenant, project));
    }
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..500usize {
        let (user, tenant, project) = users[i % users.len()];
        let client = service.client.clone();
        let base = service.base.clone();
        let token = service.token(user);
        tasks.spawn(async move {
            let (method, path, body) = match i % 3 {
                0 => (
                    Method::GET,
                    format!("/t/{tenant}/projects/{project}/documents"),
                    None,
                ),
                1 => (
                    Method::POST,
                    format!("/t/{tenant}/search"),
                    Some(json!({"embedding": axis(i), "k": 5})),
                ),
                _ => (
                    Method::GET,
                    format!("/t/{tenant}/projects/{project}/queries"),
                    None,
                ),
            };
            let mut request = client
                .request(method, format!("{base}{path}"))
                .bearer_auth(token);
            if let Some(body) = body {
                request = request.json(&body);
            }
            let response = request.send().await.unwrap();
            let status = response.status();
            let body: Value = response.json().await.unwrap();
            (tenant, status, body)
        });
    }
    let mut checked = 0;
    while let Some(result) = tasks.join_next().await {
        let (tenant, status, body) = result.unwrap();
        assert_eq!(status, StatusCode::OK, "{body}");
        let text = body.to_string();
        let other = if tenant == ACME { GLOBEX } else { ACME };
        assert!(
            !text.contains(&other.to_string()),
            "cross-tenant row: {text}"
        );
        if let Some(items) = body["items"].as_array() {
            for item in items {
                assert_eq!(item["tenant_id"], tenant.to_string());
                checked += 1;
            }
        }
    }
    assert!(checked > 1000, "only {checked} rows checked");
}

#[tokio::test]
async fn project_usage_matches_direct_counts_and_needs_admin() {
    let service = Service::start().await;
    let path = format!("{}/usage", acme(ACME_HANDBOOK));
    let (status, body) = service.get(ALICE, &path).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let tables = [
        ("documents", "documents"),
        ("chunks", "chunks"),
        ("queries", "queries"),
        ("responses", "responses"),
        ("assertions", "assertions"),
        ("members", "user_project_roles"),
    ];
    let admin = service.db.admin_pool();
    let mut nonzero = 0;
    for (field, table) in tables {
        let direct: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
            "SELECT count(*) FROM {table} WHERE tenant_id = $1 AND project_id = $2"
        )))
        .bind(ACME)
        .bind(ACME_HANDBOOK)
        .fetch_one(admin)
        .await
        .unwrap();
        assert_eq!(body[field].as_i64(), Some(direct), "{field}: {body}");
        if direct > 0 {
            nonzero += 1;
        }
    }
    assert!(nonzero >= 2, "{body}");
    // A viewer: 403; another tenant's owner: 404.
    let (status, _) = service.get(BOB, &path).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = service.get(CAROL, &path).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}
