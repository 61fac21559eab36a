//! `tenancy usage` against direct counts on a multi-tenant world: rows, bytes, vectors and
//! tokens per tenant, project and table; `--tenant`, `--since`; the three formats agree.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod lifecycle;

use std::collections::BTreeMap;

use lifecycle::{ok, refused, tenancy, world};
use tenancy_tests::TestDb;

/// (tenant, project, table) -> [rows, bytes, vectors, tokens], as the command prints them.
type Figures = BTreeMap<(String, String, String), [i64; 4]>;

fn parse(json: &str) -> Figures {
    let value: serde_json::Value = serde_json::from_str(json).unwrap();
    value["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let s = |k: &str| r[k].as_str().unwrap().to_owned();
            let n = |k: &str| r[k].as_i64().unwrap();
            (
                (s("tenant"), s("project"), s("table")),
                [n("rows"), n("bytes"), n("vectors"), n("tokens")],
            )
        })
        .collect()
}

/// The same figures by direct queries, written out per table.
async fn direct(pool: &sqlx::PgPool, tenant: Option<&str>, since: Option<&str>) -> Figures {
    let tables = [
        ("user_project_roles", "0", "0", None),
        ("documents", "0", "0", Some("created_at")),
        ("chunks", "count(t.embedding)", "0", Some("created_at")),
        ("queries", "0", "0", Some("created_at")),
        (
            "responses",
            "0",
            "sum(t.prompt_tokens) + sum(t.completion_tokens)",
            Some("created_at"),
        ),
        ("assertions", "0", "0", Some("created_at")),
    ];
    let mut out = Figures::new();
    for (table, vectors, tokens, created) in tables {
        if since.is_some() && created.is_none() {
            continue;
        }
        let time = match (since, created) {
            (Some(day), Some(column)) => format!("AND t.{column} >= '{day}'::timestamptz"),
            _ => String::new(),
        };
        let who = match tenant {
            Some(slug) => format!("AND tn.slug = '{slug}'"),
            None => String::new(),
        };
        // The stored size of every column the catalog lists for the table.
        let columns: Vec<String> = sqlx::query_scalar(
            "SELECT column_name::text FROM information_schema.columns \
             WHERE table_schema = 'public' AND table_name = $1",
        )
        .bind(table)
        .fetch_all(pool)
        .await
        .unwrap();
        let bytes: Vec<String> = columns
            .iter()
            .map(|c| format!("COALESCE(sum(pg_column_size(t.{c})), 0)"))
            .collect();
        let bytes = bytes.join(" + ");
        let rows: Vec<(String, String, i64, i64, i64, i64)> =
            sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT tn.slug, p.slug, count(*), ({bytes})::bigint, \
                   ({vectors})::bigint, COALESCE(({tokens}), 0)::bigint \
                 FROM {table} t JOIN tenants tn ON tn.id = t.tenant_id \
                 JOIN projects p ON p.tenant_id = t.tenant_id AND p.id = t.project_id \
                 WHERE true {who} {time} GROUP BY 1, 2"
            )))
            .fetch_all(pool)
            .await
            .unwrap();
        for (t, p, n, bytes, v, tok) in rows {
            out.insert((t, p, table.to_owned()), [n, bytes, v, tok]);
        }
    }
    out
}

#[tokio::test]
async fn usage_matches_direct_counts() {
    let db = TestDb::fresh().await;
    world(&db, 9).await;
    let pool = db.admin_pool();
    // Some history: a third of acme's documents and their chunks are from 2025.
    sqlx::query(
        "UPDATE documents SET created_at = '2025-03-01T12:00:00Z' \
         WHERE tenant_id = (SELECT id FROM tenants WHERE slug = 'acme') \
           AND content_hash IN ('h1', 'h2', 'h3')",
    )
    .execute(pool)
    .await
    .unwrap();
    sqlx::query("UPDATE chunks SET created_at = '2025-03-01T12:00:00Z' WHERE ordinal = 1")
        .execute(pool)
        .await
        .unwrap();

    let all = parse(&ok(&tenancy(db.url(), &["usage", "--format", "json"]).await));
    let expected = direct(pool, None, None).await;
    assert_eq!(all, expected);
    // Every tenant and table is there, with vectors and tokens where the model has them.
    assert_eq!(all.len(), 4 * 6);
    let chunks = all[&("acme".into(), "docs".into(), "chunks".into())];
    assert_eq!(chunks[0], 27);
    assert_eq!(
        chunks[2], 18,
        "two of three chunks per document have an embedding"
    );
    assert!(chunks[1] > 18 * 384 * 4, "the vectors' bytes are counted");
    let responses = all[&("beta".into(), "docs".into(), "responses".into())];
    assert_eq!(responses[3], (1..=9).map(|k| 100 + k + 20).sum::<i64>());

    let acme = parse(&ok(&tenancy(
        db.url(),
        &["usage", "--tenant", "acme", "--format", "json"],
    )
    .await));
    assert_eq!(acme, direct(pool, Some("acme"), None).await);
    assert!(acme.keys().all(|(t, _, _)| t == "acme"));
    assert_eq!(acme.len(), 2 * 6);

    let out = ok(&tenancy(
        db.url(),
        &["usage", "--since", "2026-01-01", "--format", "json"],
    )
    .await);
    let recent = parse(&out);
    assert_eq!(recent, direct(pool, None, Some("2026-01-01")).await);
    assert_eq!(
        recent[&("acme".into(), "docs".into(), "documents".into())][0],
        6
    );
    let untimed: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(
        untimed["untimed"],
        serde_json::json!(["user_project_roles"])
    );

    // CSV and text carry the same figures.
    let csv = ok(&tenancy(db.url(), &["usage", "--format", "csv"]).await);
    let mut lines = csv.lines();
    assert_eq!(
        lines.next(),
        Some("tenant,project,table,rows,bytes,vectors,tokens")
    );
    let from_csv: Figures = lines
        .map(|l| {
            let c: Vec<&str> = l.split(',').collect();
            let n = |i: usize| c[i].parse::<i64>().unwrap();
            (
                (c[0].into(), c[1].into(), c[2].into()),
                [n(3), n(4), n(5), n(6)],
            )
        })
        .collect();
    assert_eq!(from_csv, all);
    // The Prometheus exposition: four gauges per figure, the same values.
    let metrics = ok(&tenancy(db.url(), &["usage", "--format", "prometheus"]).await);
    let mut from_metrics = Figures::new();
    for line in metrics.lines().filter(|l| !l.starts_with('#')) {
        let (series, value) = line.rsplit_once(' ').unwrap();
        let (name, labels) = series.split_once('{').unwrap();
        let labels: Vec<&str> = labels
            .trim_end_matches('}')
            .split(',')
            .map(|kv| kv.split_once('=').unwrap().1.trim_matches('"'))
            .collect();
        let slot = ["rows", "bytes", "vectors", "tokens"]
            .iter()
            .position(|g| name == format!("tenancy_usage_{g}"))
            .unwrap();
        from_metrics
            .entry((labels[0].into(), labels[1].into(), labels[2].into()))
            .or_insert([0; 4])[slot] = value.parse().unwrap();
    }
    assert_eq!(from_metrics, all);
    assert!(metrics.contains("# TYPE tenancy_usage_bytes gauge\n"));

    let text = ok(&tenancy(db.url(), &["usage", "--since", "2026-01-01"]).await);
    assert!(text.starts_with("tenant"), "{text}");
    assert_eq!(text.lines().count(), 1 + recent.len() + 1, "{text}");
    assert!(text
        .ends_with("not counted (no insert time to compare with --since): user_project_roles\n"));

    // Bad input: one sentence each.
    let line = refused(&tenancy(db.url(), &["usage", "--since", "2026-13-45"]).await);
    assert_eq!(
        line,
        "error: --since `2026-13-45` is not a date (YYYY-MM-DD)"
    );
    let line = refused(&tenancy(db.url(), &["usage", "--tenant", "nobody"]).await);
    assert_eq!(line, "error: no tenant with slug `nobody`");
    let line = refused(&tenancy(db.app_url(), &["usage"]).await);
    assert!(line.contains("is subject to row-level security"), "{line}");
}
