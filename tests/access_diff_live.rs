//! Every widening `tenancy diff` reports comes with a counterexample; this test plays each
//! one on real databases: the base model's baseline migrations on one fresh database, the
//! changed model's on another, the same caller (its role in its own project, or any caller for
//! a global table) and the same row (the counterexample's column values) on both, and the
//! command run as the app role under that caller's signed context. The base must refuse (an
//! error 42501, a missing relation, or no row) and the changed model must admit.
//!
//! The policy changes are those of `tenancy-core/tests/access_review.rs`.

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;

use tenancy_core::access::counterexample::Value;
use tenancy_core::access::{diff, AccessChange, Effect};
use tenancy_core::dsl::{self, SourceFile};
use tenancy_core::model::{Command, Model, SqlType, Table, TableKind};
use tenancy_core::sql::Target;
use tenancy_tests::{set_context, TestDb};
use uuid::Uuid;

fn rag_text() -> String {
    std::fs::read_to_string(tenancy_tests::repo_root().join("examples/rag/policies/rag.tenancy"))
        .expect("rag.tenancy")
}

fn compile(text: &str) -> Model {
    let (model, diagnostics) = dsl::compile(&[SourceFile::new("rag.tenancy", text)]);
    assert!(!diagnostics.has_errors(), "{diagnostics:?}");
    model.expect("model")
}

fn edited(edits: &[(&str, &str)]) -> Model {
    let mut text = rag_text();
    for (from, to) in edits {
        assert_eq!(
            text.matches(from).count(),
            1,
            "edit `{from}` must match once"
        );
        text = text.replacen(from, to, 1);
    }
    compile(&text)
}

/// A fresh database with `model`'s baseline migrations.
async fn database(model: &Model) -> TestDb {
    let dir = std::env::temp_dir().join(format!("tenancy-access-live-{}", Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    for file in tenancy_core::sql::generate_migrations(model, Target::Postgres) {
        let path = dir.join(&file.path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, file.contents).unwrap();
    }
    let db = TestDb::empty().await;
    db.apply_migrations(&dir.join("migrations"))
        .await
        .expect("apply the model's migrations");
    std::fs::remove_dir_all(&dir).ok();
    db
}

/// The ids of the world every probe runs in: the caller's tenant and project, another tenant
/// and project, the caller and another user.
struct Ids {
    tenant: Uuid,
    project: Uuid,
    other_tenant: Uuid,
    other_project: Uuid,
    caller: Uuid,
    other_user: Uuid,
}

fn quote(uuid: Uuid) -> String {
    format!("'{uuid}'")
}

/// A SQL constant of type `ty` for a column that needs a value.
fn sample(ty: SqlType) -> String {
    match ty {
        SqlType::Uuid => "gen_random_uuid()".into(),
        SqlType::Text => "'x'".into(),
        SqlType::SmallInt | SqlType::Integer | SqlType::BigInt => "0".into(),
        SqlType::Real | SqlType::Double => "0".into(),
        SqlType::Boolean => "false".into(),
        SqlType::Date => "current_date".into(),
        SqlType::Timestamptz => "now()".into(),
        SqlType::Jsonb => "'{}'".into(),
        SqlType::Bytea => "'\\x00'".into(),
        SqlType::Vector(n) => format!("array_fill(0, ARRAY[{n}])::vector"),
        SqlType::Role => "'viewer'".into(),
    }
}

/// `INSERT INTO table (...) VALUES (...)` with `given` values and a sample for every other
/// column that needs one.
fn insert_sql(table: &Table, given: &BTreeMap<String, String>) -> String {
    let mut columns = Vec::new();
    let mut values = Vec::new();
    for column in table.all_columns() {
        let value = match given.get(&column.name) {
            Some(v) => v.clone(),
            None if !column.nullable && column.default.is_none() => sample(column.ty),
            None => continue,
        };
        columns.push(format!("\"{}\"", column.name));
        values.push(value);
    }
    format!(
        "INSERT INTO public.\"{}\" ({}) VALUES ({})",
        table.name,
        columns.join(", "),
        values.join(", ")
    )
}

async fn admin(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(db.admin_pool())
        .await
        .unwrap_or_else(|err| panic!("{sql}: {err}"));
}

/// Tenants, projects and memberships of the world (through the superuser).
async fn arrange(db: &TestDb, model: &Model, ids: &Ids, role: &str) {
    let core = |kind| model.core_table(kind).expect("core table");
    for (tenant, project) in [
        (ids.tenant, ids.project),
        (ids.other_tenant, ids.other_project),
    ] {
        let mut row = BTreeMap::from([("id".to_owned(), quote(tenant))]);
        row.insert("slug".into(), format!("'{tenant}'"));
        admin(db, &insert_sql(core(TableKind::Tenants), &row)).await;
        let row = BTreeMap::from([
            ("tenant_id".to_owned(), quote(tenant)),
            ("id".to_owned(), quote(project)),
            ("slug".to_owned(), format!("'{project}'")),
        ]);
        admin(db, &insert_sql(core(TableKind::Projects), &row)).await;
    }
    for (user, role) in [(ids.caller, role), (ids.other_user, "owner")] {
        let row = BTreeMap::from([
            ("tenant_id".to_owned(), quote(ids.tenant)),
            ("project_id".to_owned(), quote(ids.project)),
            ("user_id".to_owned(), quote(user)),
            ("role".to_owned(), format!("'{role}'")),
        ]);
        admin(db, &insert_sql(core(TableKind::Memberships), &row)).await;
    }
}

/// Whether the caller of the counterexample may do what `change` says on `model`'s database.
async fn admitted(model: &Model, change: &AccessChange) -> bool {
    let witness = change.counterexample.as_ref().expect("counterexample");
    let role = witness.role.clone().unwrap_or_else(|| "viewer".to_owned());
    let db = database(model).await;
    let ids = Ids {
        tenant: Uuid::new_v4(),
        project: Uuid::new_v4(),
        other_tenant: Uuid::new_v4(),
        other_project: Uuid::new_v4(),
        caller: Uuid::new_v4(),
        other_user: Uuid::new_v4(),
    };
    arrange(&db, model, &ids, &role).await;
    let result = probe(&db, model, &ids, &role, change).await;
    db.drop_db().await;
    result
}

async fn probe(db: &TestDb, model: &Model, ids: &Ids, role: &str, change: &AccessChange) -> bool {
    let witness = change.counterexample.as_ref().expect("counterexample");
    let (table_name, command) = match &change.granted_role {
        Some(_) => ("user_project_roles".to_owned(), Command::Insert),
        None => (
            change.table.clone().expect("table"),
            change.command.expect("command"),
        ),
    };
    let Some(table) = model.table(&table_name) else {
        return false; // the relation does not exist: refused
    };
    // The row: the counterexample's values, in the caller's project (any caller of a global
    // table: a row of another tenant where the table is tenant-owned).
    let mut row: BTreeMap<String, String> = witness
        .row
        .iter()
        .map(|(column, value)| {
            let sql = match value {
                Value::CallerUserId => quote(ids.caller),
                Value::OtherUserId => quote(ids.other_user),
                Value::CallerTenantId => quote(ids.tenant),
                Value::Null => "NULL".to_owned(),
                Value::Literal(l) => l.to_text(),
            };
            (column.clone(), sql)
        })
        .collect();
    let (tenant, project) = if witness.role.is_none() {
        (ids.other_tenant, ids.other_project)
    } else {
        (ids.tenant, ids.project)
    };
    if let Some(scope) = table.scope_columns() {
        row.insert(scope.tenant.to_owned(), quote(tenant));
        if let Some(p) = scope.project {
            row.insert(p.to_owned(), quote(project));
        }
    }
    for key in table.effective_primary_key() {
        if let std::collections::btree_map::Entry::Vacant(entry) = row.entry(key.clone()) {
            let column = table.column(&key).expect("key column");
            entry.insert(match column.ty {
                SqlType::Uuid => quote(Uuid::new_v4()),
                _ => format!("'k{}'", Uuid::new_v4().simple()),
            });
        }
    }
    if let Some(granted) = &change.granted_role {
        row.insert("role".into(), format!("'{granted}'"));
    }
    let key_filter = table
        .effective_primary_key()
        .iter()
        .map(|k| format!("\"{k}\" = {}", row[k]))
        .collect::<Vec<_>>()
        .join(" AND ");
    if command != Command::Insert {
        let mut existing = row.clone();
        if let Some(column) = &change.column {
            // The row holds another value before the caller writes the counterexample's.
            let ty = table.column(column).expect("column").ty;
            existing.insert(column.clone(), sample(ty));
        }
        admin(db, &insert_sql(table, &existing)).await;
    }
    let name = format!("public.\"{}\"", table.name);
    // A masked column cannot be read back by the app role (RETURNING would be refused):
    // check the write itself.
    let masked = |column: &str| table.masked_columns().iter().any(|c| c.name == column);
    let statement = match command {
        Command::Select => format!("SELECT 1 FROM {name} WHERE {key_filter}"),
        Command::Insert => match change.column.as_ref().filter(|c| !masked(c)) {
            // The column's value must stick: a stamp would have replaced it.
            Some(column) => format!(
                "{} RETURNING \"{column}\" = {}",
                insert_sql(table, &row),
                row[column]
            ),
            None => format!("{} RETURNING 1", insert_sql(table, &row)),
        },
        Command::Update => {
            let column = change.column.clone().unwrap_or_else(|| {
                tenancy_core::access::TableAccess::of(model, table)
                    .update_columns
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "id".to_owned())
            });
            match row.get(&column).filter(|_| change.column.is_some()) {
                Some(value) if masked(&column) => format!(
                    "UPDATE {name} SET \"{column}\" = {value} WHERE {key_filter} RETURNING 1"
                ),
                Some(value) => format!(
                    "UPDATE {name} SET \"{column}\" = {value} WHERE {key_filter} \
                     RETURNING \"{column}\" = {value}"
                ),
                None => format!(
                    "UPDATE {name} SET \"{column}\" = \"{column}\" WHERE {key_filter} RETURNING 1"
                ),
            }
        }
        Command::Delete => format!("DELETE FROM {name} WHERE {key_filter} RETURNING 1"),
    };
    let mut tx = db.app_pool().begin().await.expect("begin");
    let context = set_context(
        &ids.tenant.to_string(),
        &ids.caller.to_string(),
        &format!("{}:{role}", ids.project),
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(context))
        .execute(&mut *tx)
        .await
        .expect("install the context");
    let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
        .fetch_all(&mut *tx)
        .await;
    tx.rollback().await.ok();
    match result {
        Ok(rows) => rows.first().is_some_and(|r| {
            use sqlx::Row;
            // `RETURNING 1` or `RETURNING column = value`
            r.try_get::<bool, _>(0).unwrap_or(true)
        }),
        Err(err) => {
            let code = err
                .as_database_error()
                .and_then(|e| e.code())
                .map(|c| c.into_owned());
            match code.as_deref() {
                // permission denied / row-level security, or no such relation or column
                Some("42501") | Some("42P01") | Some("42703") => false,
                _ => panic!("{statement}: {err}"),
            }
        }
    }
}

/// Plays every widening of `old -> new` on both databases.
async fn every_widening_gains(name: &str, old: &Model, new: &Model) {
    let d = diff(old, new);
    let widenings: Vec<&AccessChange> = d
        .changes
        .iter()
        .filter(|c| c.effect == Effect::Widens)
        .collect();
    assert!(!widenings.is_empty(), "{name}: no widening");
    for change in widenings {
        assert!(
            !admitted(old, change).await,
            "{name}: the base model already admits the counterexample of: {}",
            change.description
        );
        assert!(
            admitted(new, change).await,
            "{name}: the changed model refuses the counterexample of: {}",
            change.description
        );
    }
}

const DOC_DELETE: &str = "allow update to admin\n    allow delete to admin\n}";
const DOC_UPDATE_OWN: &str =
    "allow update (title, metadata) to editor where created_by = current_user";

#[tokio::test]
async fn a_minimum_role_that_drops() {
    let new = edited(&[(
        DOC_DELETE,
        "allow update to admin\n    allow delete to viewer\n}",
    )]);
    every_widening_gains("min_role_drops", &edited(&[]), &new).await;
}

#[tokio::test]
async fn a_removed_condition() {
    let new = edited(&[(DOC_UPDATE_OWN, "allow update (title, metadata) to editor")]);
    every_widening_gains("condition_removed", &edited(&[]), &new).await;
}

#[tokio::test]
async fn a_loosened_condition_and_a_mixed_one() {
    let loosened = edited(&[(DOC_UPDATE_OWN, "allow update (title, metadata) to editor where created_by = current_user or mime_type = 'text/plain'",
    )]);
    every_widening_gains("condition_loosened", &edited(&[]), &loosened).await;
    let mixed = edited(&[(
        DOC_UPDATE_OWN,
        "allow update (title, metadata) to editor where mime_type = 'text/plain'",
    )]);
    every_widening_gains("condition_mixed", &edited(&[]), &mixed).await;
}

#[tokio::test]
async fn a_raw_sql_condition() {
    let new = edited(&[(
        DOC_UPDATE_OWN,
        "allow update to editor where sql \"pg_catalog.length(title) < 200\"",
    )]);
    every_widening_gains("condition_raw_sql", &edited(&[]), &new).await;
}

#[tokio::test]
async fn a_stamped_column_that_becomes_writable() {
    let new = edited(&[(
        "created_by uuid = current_user on insert",
        "created_by uuid",
    )]);
    every_widening_gains("column_becomes_writable", &edited(&[]), &new).await;
}

#[tokio::test]
async fn a_grant_ceiling_that_rises() {
    let new = edited(&[(
        "allow insert, update, delete to admin\n}",
        "allow insert, update, delete to editor\n}",
    )]);
    every_widening_gains("grant_ceiling_rises", &edited(&[]), &new).await;
}

#[tokio::test]
async fn a_global_table_that_becomes_granted_and_a_table_that_becomes_global() {
    let base = edited(&[(
        "primary key (name)\n    allow select\n",
        "primary key (name)\n",
    )]);
    every_widening_gains("global_table_granted", &base, &edited(&[])).await;
    let global = edited(&[
        ("scoped table queries {", "global table queries {"),
        ("    index (asked_by)\n", ""),
        (
            "    allow select to viewer where asked_by = current_user\n    allow select to editor\n    allow insert to viewer where asked_by = current_user\n    allow delete to admin\n",
            "    allow select\n",
        ),
        (
            "    /// Who asked: the database writes the caller's user id on insert.\n    asked_by uuid = current_user on insert\n",
            "",
        ),
        (
            "    // Viewers read the questions they asked; editors and admins read every question of the\n    // project (to review what people ask and how it was answered).\n",
            "",
        ),
    ]);
    every_widening_gains("table_becomes_global", &edited(&[]), &global).await;
}

#[tokio::test]
async fn a_new_table() {
    let new = edited(&[(
        "/// Embedding models known",
        "/// Notes.\nscoped table notes {\n    id uuid default gen_random_uuid()\n    body text\n    primary key (id)\n    allow select to editor\n}\n\n/// Embedding models known",
    )]);
    every_widening_gains("table_added", &edited(&[]), &new).await;
}
