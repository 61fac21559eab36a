//! `tenancy check --database-url` (issue 24): PostgreSQL parses every column default of a
//! model as its column's type, in a rolled-back transaction. Live: needs the test server
//! (`TENANCY_TEST_DATABASE_URL` or `scripts/pg-up`).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use tenancy_core::dsl::compile_dir;
use tenancy_core::model::{Column, DefaultValue, Model, SqlType};
use tenancy_tests::repo_root;

fn rag() -> Model {
    compile_dir(&repo_root().join("examples/rag/policies"))
        .expect("rag policies")
        .0
}

fn column(name: &str, ty: SqlType, default: DefaultValue) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        nullable: true,
        default: Some(default),
        doc: None,
        distance: None,
        per_tenant: false,
        stamp: None,
    }
}

#[tokio::test]
async fn postgresql_parses_the_rag_defaults_and_refuses_broken_ones() {
    let url = tenancy_tests::admin_url().await;
    let pool = tenancy_audit::connect(&url).await.expect("connect");

    let model = rag();
    let report = tenancy_audit::defaults::probe_defaults(&pool, &model)
        .await
        .expect("probe");
    assert!(report.probed > 0, "the RAG model has defaults");
    assert!(report.refused.is_empty(), "{:#?}", report.refused);

    // Defaults the validator refuses statically, put into a model by hand: PostgreSQL
    // refuses them too, and a refused one does not stop the others from being probed.
    let mut broken = rag();
    let table = broken
        .tables
        .iter_mut()
        .find(|t| t.name == "documents")
        .expect("documents");
    let s = |v: &str| DefaultValue::String(v.to_owned());
    table.columns.extend([
        column("bad_day", SqlType::Date, s("2023-02-31")),
        column("bad_at", SqlType::Timestamptz, s("x")),
        column("good_day", SqlType::Date, s("2024-02-29")),
        column("bad_json", SqlType::Jsonb, s("{")),
        column(
            "bad_small",
            SqlType::SmallInt,
            DefaultValue::Integer(70_000),
        ),
        column("bad_uuid", SqlType::Uuid, s("not-a-uuid")),
    ]);
    let report = tenancy_audit::defaults::probe_defaults(&pool, &broken)
        .await
        .expect("probe");
    let refused: Vec<&str> = report
        .refused
        .iter()
        .map(|r| r.probe.column.as_str())
        .collect();
    assert_eq!(
        refused,
        ["bad_day", "bad_at", "bad_json", "bad_small", "bad_uuid"],
        "{:#?}",
        report.refused
    );
    assert!(
        report.refused[0].message.contains("out of range"),
        "{:#?}",
        report.refused[0]
    );
    pool.close().await;
}
