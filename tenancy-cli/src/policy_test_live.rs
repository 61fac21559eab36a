//! `tenancy test --database-url`: runs every expectation that holds on the model on a live
//! database too, each in a transaction that is rolled back. The fixtures (a tenant, a project,
//! the caller's membership, the row the expectation is about) are written by the connecting
//! role, which must bypass row-level security (a superuser); then the transaction switches to
//! the app role (`SET LOCAL ROLE`), installs the caller's signed context (the key from
//! `TENANCY_CONTEXT_KEY` / `TENANCY_CONTEXT_KEY_FILE`) and runs the command: admitted means it
//! returned the row, refused means no row or SQLSTATE 42501.

use std::collections::BTreeMap;
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use sqlx::{Connection, PgConnection, Row};
use tenancy_core::access::counterexample::Value;
use tenancy_core::access::expect::{witness_row, Action, Expectation};
use tenancy_core::access::TableAccess;
use tenancy_core::model::{Command, Model, SqlType, Table, TableKind};
use tenancy_runtime::ContextKey;
use uuid::Uuid;

/// The live database and the key the caller's contexts are signed with.
pub struct Live {
    conn: PgConnection,
    key: ContextKey,
}

impl Live {
    /// Connects to `url` and reads the context key from the environment.
    pub async fn connect(url: &str) -> Result<Live> {
        let key = ContextKey::from_env()
            .map_err(|err| anyhow::anyhow!("{err}"))?
            .context(
                "no context key: set TENANCY_CONTEXT_KEY or TENANCY_CONTEXT_KEY_FILE to a key the \
                 database holds (tenancy key install)",
            )?;
        let conn = PgConnection::connect(url)
            .await
            .context("could not connect to the database")?;
        Ok(Live { conn, key })
    }

    /// The roles for which the database does not do what `expectation` says (empty: it holds).
    pub async fn violations(
        &mut self,
        model: &Model,
        expectation: &Expectation,
    ) -> Result<Vec<String>> {
        let mut out = Vec::new();
        for role in &expectation.roles {
            if let Some(admitted) = self.probe(model, role, &expectation.action).await? {
                if admitted != expectation.can {
                    out.push(role.clone());
                }
            }
        }
        Ok(out)
    }

    /// Whether the caller holding `role` is admitted; `None` when no row fits the condition.
    async fn probe(&mut self, model: &Model, role: &str, action: &Action) -> Result<Option<bool>> {
        let ids = Ids {
            tenant: Uuid::new_v4(),
            project: Uuid::new_v4(),
            caller: Uuid::new_v4(),
            other_user: Uuid::new_v4(),
        };
        let memberships = model
            .core_table(TableKind::Memberships)
            .context("the model has no memberships table")?;
        let (table, command, mut row, column) = match action {
            Action::Grant { role: granted } => {
                let row = BTreeMap::from([
                    ("user_id".to_owned(), quote(Uuid::new_v4())),
                    ("role".to_owned(), format!("'{granted}'")),
                ]);
                (memberships, Command::Insert, row, None)
            }
            Action::Access {
                table,
                command,
                condition,
            } => {
                let table = model.table(table).context("unknown table")?;
                let Some(witness) = witness_row(model, table, *command, role, condition.as_ref())
                else {
                    return Ok(None);
                };
                let row = witness
                    .row
                    .iter()
                    .map(|(c, v)| (c.clone(), value_sql(v, &ids)))
                    .collect();
                (table, *command, row, None::<String>)
            }
        };
        let _ = column;
        let mut parents = Vec::new();
        complete_row(model, table, &mut row, &ids, &mut parents);
        let mut tx = self.conn.begin().await?;
        arrange(&mut tx, model, &ids, role).await?;
        for insert in &parents {
            execute(&mut tx, insert).await?;
        }
        let filter = table
            .effective_primary_key()
            .iter()
            .map(|k| format!("\"{k}\" = {}", row.get(k).cloned().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join(" AND ");
        if command != Command::Insert {
            execute(&mut tx, &insert_sql(table, &row)).await?;
        }
        let name = format!("public.\"{}\"", table.name);
        let statement = match command {
            Command::Select => format!("SELECT 1 FROM {name} WHERE {filter}"),
            Command::Insert => format!("{} RETURNING 1", insert_sql(table, &row)),
            Command::Update => {
                let column = TableAccess::of(model, table)
                    .update_columns
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "id".to_owned());
                format!("UPDATE {name} SET \"{column}\" = \"{column}\" WHERE {filter} RETURNING 1")
            }
            Command::Delete => format!("DELETE FROM {name} WHERE {filter} RETURNING 1"),
        };
        let rank = model.role_rank(role).unwrap_or(0);
        let sets: String = (0..=rank)
            .map(|_| format!(";{{{}}}", ids.project))
            .collect();
        let claims = format!("{};{}{sets}", ids.tenant, ids.caller);
        let expires = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() + 300)
            .unwrap_or(0);
        let token = self
            .key
            .mint_until(&claims, expires)
            .map_err(|err| anyhow::anyhow!("{err}"))?;
        execute(
            &mut tx,
            &format!("SET LOCAL ROLE \"{}\"", model.settings.app_role),
        )
        .await?;
        sqlx::query(sqlx::AssertSqlSafe(format!(
            "SELECT \"{}\".install_context($1)",
            model.settings.helper_schema
        )))
        .bind(token)
        .execute(&mut *tx)
        .await
        .context(
            "could not install the caller's context (is the key installed in this database?)",
        )?;
        execute(&mut tx, "SAVEPOINT tenancy_test").await?;
        let result = sqlx::raw_sql(sqlx::AssertSqlSafe(statement.clone()))
            .fetch_all(&mut *tx)
            .await;
        tx.rollback().await.ok();
        match result {
            Ok(rows) => Ok(Some(
                rows.first().is_some_and(|r| r.try_get::<i32, _>(0).is_ok()),
            )),
            Err(err) => {
                let code = err
                    .as_database_error()
                    .and_then(|e| e.code())
                    .map(|c| c.into_owned());
                if code.as_deref() == Some("42501") {
                    Ok(Some(false))
                } else {
                    bail!("`{statement}` failed: {err}")
                }
            }
        }
    }
}

/// Fills the scope columns and the key of `row`, and points its foreign keys at parent rows of
/// the same project: their `INSERT`s go to `parents`, parents first.
fn complete_row(
    model: &Model,
    table: &Table,
    row: &mut BTreeMap<String, String>,
    ids: &Ids,
    parents: &mut Vec<String>,
) {
    if let Some(scope) = table.scope_columns() {
        row.insert(scope.tenant.to_owned(), quote(ids.tenant));
        if let Some(project) = scope.project {
            row.insert(project.to_owned(), quote(ids.project));
        }
    }
    let key_value = |table: &Table, column: &str| match table
        .column(column)
        .map(|c| c.ty)
        .unwrap_or(SqlType::Uuid)
    {
        SqlType::Uuid => quote(Uuid::new_v4()),
        _ => format!("'k{}'", Uuid::new_v4().simple()),
    };
    for key in table.effective_primary_key() {
        if let std::collections::btree_map::Entry::Vacant(entry) = row.entry(key.clone()) {
            entry.insert(key_value(table, &key));
        }
    }
    for fk in &table.foreign_keys {
        if fk.columns.iter().all(|c| row.contains_key(c)) || fk.table == table.name {
            continue;
        }
        let Some(parent) = model.table(&fk.table) else {
            continue;
        };
        let mut parent_row = BTreeMap::new();
        for target in &fk.target_columns {
            parent_row.insert(target.clone(), key_value(parent, target));
        }
        complete_row(model, parent, &mut parent_row, ids, parents);
        parents.push(insert_sql(parent, &parent_row));
        for (local, target) in fk.columns.iter().zip(&fk.target_columns) {
            if let Some(value) = parent_row.get(target) {
                row.insert(local.clone(), value.clone());
            }
        }
    }
}

struct Ids {
    tenant: Uuid,
    project: Uuid,
    caller: Uuid,
    other_user: Uuid,
}

fn quote(uuid: Uuid) -> String {
    format!("'{uuid}'")
}

fn value_sql(value: &Value, ids: &Ids) -> String {
    match value {
        Value::CallerUserId => quote(ids.caller),
        Value::OtherUserId => quote(ids.other_user),
        Value::CallerTenantId => quote(ids.tenant),
        Value::Null => "NULL".to_owned(),
        Value::Literal(l) => l.to_text(),
    }
}

/// A SQL value of type `ty` for a column that needs one (text unique, so unique keys of a
/// database with data do not collide).
fn sample(ty: SqlType) -> String {
    match ty {
        SqlType::Uuid => "gen_random_uuid()".into(),
        SqlType::Text => format!("'tenancy-test-{}'", Uuid::new_v4().simple()),
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

async fn execute(conn: &mut PgConnection, sql: &str) -> Result<()> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_owned()))
        .execute(&mut *conn)
        .await
        .with_context(|| {
            format!("could not prepare the test (connect as a role that bypasses row-level security): `{sql}`")
        })?;
    Ok(())
}

/// The tenant, project and memberships of one probe, written by the connecting role.
async fn arrange(conn: &mut PgConnection, model: &Model, ids: &Ids, role: &str) -> Result<()> {
    let core = |kind| {
        model
            .core_table(kind)
            .context("the model lacks a core table")
    };
    let tenant = BTreeMap::from([("id".to_owned(), quote(ids.tenant))]);
    execute(conn, &insert_sql(core(TableKind::Tenants)?, &tenant)).await?;
    let project = BTreeMap::from([
        ("tenant_id".to_owned(), quote(ids.tenant)),
        ("id".to_owned(), quote(ids.project)),
    ]);
    execute(conn, &insert_sql(core(TableKind::Projects)?, &project)).await?;
    let top = model.roles.last().cloned().unwrap_or_default();
    for (user, role) in [(ids.caller, role), (ids.other_user, top.as_str())] {
        let row = BTreeMap::from([
            ("tenant_id".to_owned(), quote(ids.tenant)),
            ("project_id".to_owned(), quote(ids.project)),
            ("user_id".to_owned(), quote(user)),
            ("role".to_owned(), format!("'{role}'")),
        ]);
        execute(conn, &insert_sql(core(TableKind::Memberships)?, &row)).await?;
    }
    Ok(())
}
