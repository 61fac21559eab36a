//! What is deployed: the row-level security of every table (enabled, policies, the app role's
//! privileges), read from migration files by PostgreSQL's own parser (`pg_query`), or from
//! the catalogs of a live database (`pg_policies`, `pg_class`, privilege functions).

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use pg_query::protobuf::{AlterTableType, GrantTargetType, ObjectType, RoleSpecType};
use pg_query::{Node, NodeEnum};
use serde::Serialize;
use tenancy_core::model::{Command, Model, TABLE_SCHEMA};

use crate::expr::{self, names, Expr, Unsupported};
use crate::VerifyError;

/// The commands a policy applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PolicyCommand {
    /// `FOR ALL`.
    All,
    /// One command.
    Only(Command),
}

impl PolicyCommand {
    fn parse(text: &str) -> Option<PolicyCommand> {
        Some(match text.to_ascii_lowercase().as_str() {
            "all" | "*" => PolicyCommand::All,
            "select" | "r" => PolicyCommand::Only(Command::Select),
            "insert" | "a" => PolicyCommand::Only(Command::Insert),
            "update" | "w" => PolicyCommand::Only(Command::Update),
            "delete" | "d" => PolicyCommand::Only(Command::Delete),
            _ => return None,
        })
    }

    /// True when the policy applies to `command`.
    pub fn covers(self, command: Command) -> bool {
        match self {
            PolicyCommand::All => true,
            PolicyCommand::Only(c) => c == command,
        }
    }
}

/// One policy expression: its text and what the proof reads from it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyExpr {
    /// The expression as written (files) or as `pg_policies` prints it (database).
    pub text: String,
    /// The expression, or why the proof cannot read it.
    #[serde(skip)]
    pub expr: Result<Expr, Unsupported>,
}

/// One policy of a table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeployedPolicy {
    /// Its name.
    pub name: String,
    /// `AS PERMISSIVE` (rows any permissive policy admits) or restrictive (every restrictive
    /// policy must admit them).
    pub permissive: bool,
    /// The commands it applies to.
    pub command: PolicyCommand,
    /// The roles it is for (`public` for every role).
    pub roles: Vec<String>,
    /// True when it applies to the app role (`TO` the app role, `public`, or a role the app
    /// role has the privileges of; from files, every policy counts: a role's members are not
    /// known there).
    pub applies: bool,
    /// `USING`.
    pub using: Option<PolicyExpr>,
    /// `WITH CHECK`.
    pub check: Option<PolicyExpr>,
}

/// Row-level security and privileges of one table.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct TableState {
    /// `ENABLE ROW LEVEL SECURITY`.
    pub rls_enabled: bool,
    /// `FORCE ROW LEVEL SECURITY`.
    pub rls_forced: bool,
    /// The policies, in creation order.
    pub policies: Vec<DeployedPolicy>,
    /// The commands the app role holds a privilege for (on the table or on some column).
    pub privileges: BTreeSet<Command>,
}

/// The deployed row-level security of every table, by `schema.table`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Deployed {
    /// Where it was read from, in words.
    pub source: String,
    /// Every table seen, by `schema.table`.
    pub tables: BTreeMap<String, TableState>,
}

impl Deployed {
    /// The state of model table `name` (schema `public`).
    pub fn table(&self, name: &str) -> Option<&TableState> {
        self.tables.get(&format!("{TABLE_SCHEMA}.{name}"))
    }

    /// Reads every `*.sql` file of `dir`, in name order, as migrations applied one after the
    /// other.
    pub fn from_migrations_dir(dir: &Path, model: &Model) -> Result<Deployed, VerifyError> {
        let entries = std::fs::read_dir(dir).map_err(|e| VerifyError::Io {
            path: dir.display().to_string(),
            message: e.to_string(),
        })?;
        let mut files: Vec<_> = entries
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "sql"))
            .collect();
        files.sort();
        if files.is_empty() {
            return Err(VerifyError::Io {
                path: dir.display().to_string(),
                message: "no `*.sql` migration files".to_owned(),
            });
        }
        let mut sources = Vec::new();
        for file in &files {
            let text = std::fs::read_to_string(file).map_err(|e| VerifyError::Io {
                path: file.display().to_string(),
                message: e.to_string(),
            })?;
            sources.push((file.display().to_string(), text));
        }
        let mut deployed = Deployed::from_sql(&sources, model)?;
        deployed.source = format!("{} migration files in {}", files.len(), dir.display());
        Ok(deployed)
    }

    /// Applies the statements of `files` (`(name, sql)`, in order) that shape row-level
    /// security: `CREATE`/`ALTER`/`DROP POLICY`, `ALTER TABLE ... ROW LEVEL SECURITY`,
    /// `GRANT`/`REVOKE` on tables, `CREATE`/`DROP TABLE`, `ALTER TABLE`/`ALTER POLICY ...
    /// RENAME TO`. Statements inside `DO` blocks and
    /// function bodies are not seen.
    pub fn from_sql(files: &[(String, String)], model: &Model) -> Result<Deployed, VerifyError> {
        let mut state = FileState {
            app_role: model.settings.app_role.clone(),
            helper_schema: model.settings.helper_schema.clone(),
            deployed: Deployed {
                source: format!("{} SQL files", files.len()),
                tables: BTreeMap::new(),
            },
            grants: BTreeMap::new(),
        };
        for (name, sql) in files {
            let parsed = pg_query::parse(sql, 0).map_err(|e| VerifyError::Parse {
                file: name.clone(),
                message: e.to_string(),
            })?;
            for raw in &parsed.protobuf.stmts {
                let Some(stmt) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) else {
                    continue;
                };
                let text = statement_text(sql, raw.stmt_location, raw.stmt_len);
                state.apply(stmt, text);
            }
        }
        state.finish();
        Ok(state.deployed)
    }
}

/// The text of one statement of `sql` (byte offsets as libpg_query reports them).
fn statement_text(sql: &str, location: i32, len: i32) -> &str {
    let start = usize::try_from(location).unwrap_or(0);
    let end = if len <= 0 {
        sql.len()
    } else {
        start.saturating_add(usize::try_from(len).unwrap_or(0))
    };
    sql.get(start..end.min(sql.len())).unwrap_or("")
}

/// Privileges granted to one grantee on one table.
#[derive(Debug, Default)]
struct Grants {
    table: BTreeSet<Command>,
    columns: BTreeMap<Command, BTreeSet<String>>,
}

struct FileState {
    app_role: String,
    helper_schema: String,
    deployed: Deployed,
    /// `(schema.table, grantee)` -> privileges; grantee `public` for PUBLIC.
    grants: BTreeMap<(String, String), Grants>,
}

fn qualified(schema: &str, name: &str) -> String {
    let schema = if schema.is_empty() {
        TABLE_SCHEMA
    } else {
        schema
    };
    format!("{schema}.{name}")
}

fn range_var(node: Option<&pg_query::protobuf::RangeVar>) -> Option<String> {
    node.map(|r| qualified(&r.schemaname, &r.relname))
}

fn role_name(node: &Node) -> Option<String> {
    match &node.node {
        Some(NodeEnum::RoleSpec(r)) => Some(match r.roletype() {
            RoleSpecType::RolespecPublic => "public".to_owned(),
            RoleSpecType::RolespecCstring => r.rolename.clone(),
            RoleSpecType::RolespecCurrentRole => "current_role".to_owned(),
            RoleSpecType::RolespecCurrentUser => "current_user".to_owned(),
            RoleSpecType::RolespecSessionUser => "session_user".to_owned(),
            RoleSpecType::Undefined => return None,
        }),
        _ => None,
    }
}

/// The privilege keyword of a command.
fn command_of_privilege(privilege: &str) -> Option<Command> {
    PolicyCommand::parse(privilege).and_then(|c| match c {
        PolicyCommand::Only(c) => Some(c),
        PolicyCommand::All => None,
    })
}

impl FileState {
    fn table(&mut self, key: &str) -> &mut TableState {
        self.deployed.tables.entry(key.to_owned()).or_default()
    }

    fn policy_expr(&self, node: Option<&Node>, source: &str) -> Option<PolicyExpr> {
        node.map(|n| {
            let text = n
                .deparse(pg_query::DeparseOptions::default())
                .map(|t| t.trim_start_matches("SELECT ").to_owned())
                .unwrap_or_else(|_| source.trim().to_owned());
            PolicyExpr {
                text,
                expr: expr::from_node(n, &self.helper_schema),
            }
        })
    }

    fn apply(&mut self, stmt: &NodeEnum, text: &str) {
        match stmt {
            NodeEnum::CreateStmt(create) => {
                if let Some(key) = range_var(create.relation.as_ref()) {
                    self.table(&key);
                }
            }
            NodeEnum::CreatePolicyStmt(p) => {
                let Some(key) = range_var(p.table.as_ref()) else {
                    return;
                };
                let roles: Vec<String> = p.roles.iter().filter_map(role_name).collect();
                let policy = DeployedPolicy {
                    name: p.policy_name.clone(),
                    permissive: p.permissive,
                    command: PolicyCommand::parse(&p.cmd_name).unwrap_or(PolicyCommand::All),
                    roles: if roles.is_empty() {
                        vec!["public".to_owned()]
                    } else {
                        roles
                    },
                    applies: true,
                    using: self.policy_expr(p.qual.as_deref(), text),
                    check: self.policy_expr(p.with_check.as_deref(), text),
                };
                let table = self.table(&key);
                table.policies.retain(|q| q.name != policy.name);
                table.policies.push(policy);
            }
            NodeEnum::AlterPolicyStmt(p) => {
                let Some(key) = range_var(p.table.as_ref()) else {
                    return;
                };
                let using = self.policy_expr(p.qual.as_deref(), text);
                let check = self.policy_expr(p.with_check.as_deref(), text);
                let roles: Vec<String> = p.roles.iter().filter_map(role_name).collect();
                let table = self.table(&key);
                if let Some(policy) = table.policies.iter_mut().find(|q| q.name == p.policy_name) {
                    if using.is_some() {
                        policy.using = using;
                    }
                    if check.is_some() {
                        policy.check = check;
                    }
                    if !roles.is_empty() {
                        policy.roles = roles;
                    }
                }
            }
            NodeEnum::DropStmt(d) => match d.remove_type() {
                ObjectType::ObjectPolicy => {
                    for object in &d.objects {
                        let Some(NodeEnum::List(list)) = &object.node else {
                            continue;
                        };
                        let parts = names(&list.items);
                        let Some((policy, table)) = parts.split_last() else {
                            continue;
                        };
                        let key = match table {
                            [name] => qualified("", name),
                            [schema, name] => qualified(schema, name),
                            _ => continue,
                        };
                        if let Some(t) = self.deployed.tables.get_mut(&key) {
                            t.policies.retain(|q| &q.name != policy);
                        }
                    }
                }
                ObjectType::ObjectTable => {
                    for object in &d.objects {
                        let Some(NodeEnum::List(list)) = &object.node else {
                            continue;
                        };
                        let key = match names(&list.items).as_slice() {
                            [name] => qualified("", name),
                            [schema, name] => qualified(schema, name),
                            _ => continue,
                        };
                        self.deployed.tables.remove(&key);
                        self.grants.retain(|(t, _), _| t != &key);
                    }
                }
                _ => {}
            },
            NodeEnum::RenameStmt(r) => {
                let Some(relation) = r.relation.as_ref() else {
                    return;
                };
                let old = qualified(&relation.schemaname, &relation.relname);
                match r.rename_type() {
                    ObjectType::ObjectTable => {
                        let new = qualified(&relation.schemaname, &r.newname);
                        if let Some(state) = self.deployed.tables.remove(&old) {
                            self.deployed.tables.insert(new.clone(), state);
                        }
                        let moved: Vec<(String, String)> = self
                            .grants
                            .keys()
                            .filter(|(t, _)| t == &old)
                            .cloned()
                            .collect();
                        for key in moved {
                            if let Some(grants) = self.grants.remove(&key) {
                                self.grants.insert((new.clone(), key.1), grants);
                            }
                        }
                    }
                    ObjectType::ObjectPolicy => {
                        if let Some(policy) = self
                            .deployed
                            .tables
                            .get_mut(&old)
                            .and_then(|t| t.policies.iter_mut().find(|p| p.name == r.subname))
                        {
                            policy.name = r.newname.clone();
                        }
                    }
                    _ => {}
                }
            }
            NodeEnum::AlterTableStmt(a) => {
                let Some(key) = range_var(a.relation.as_ref()) else {
                    return;
                };
                for cmd in &a.cmds {
                    let Some(NodeEnum::AlterTableCmd(cmd)) = &cmd.node else {
                        continue;
                    };
                    let table = self.table(&key);
                    match cmd.subtype() {
                        AlterTableType::AtEnableRowSecurity => table.rls_enabled = true,
                        AlterTableType::AtDisableRowSecurity => table.rls_enabled = false,
                        AlterTableType::AtForceRowSecurity => table.rls_forced = true,
                        AlterTableType::AtNoForceRowSecurity => table.rls_forced = false,
                        _ => {}
                    }
                }
            }
            NodeEnum::GrantStmt(g) if g.objtype() == ObjectType::ObjectTable => {
                let tables: Vec<String> = match g.targtype() {
                    GrantTargetType::AclTargetObject => g
                        .objects
                        .iter()
                        .filter_map(|o| match &o.node {
                            Some(NodeEnum::RangeVar(r)) => {
                                Some(qualified(&r.schemaname, &r.relname))
                            }
                            _ => None,
                        })
                        .collect(),
                    GrantTargetType::AclTargetAllInSchema => {
                        let schemas = names(&g.objects);
                        self.deployed
                            .tables
                            .keys()
                            .filter(|k| schemas.iter().any(|s| k.starts_with(&format!("{s}."))))
                            .cloned()
                            .collect()
                    }
                    _ => Vec::new(),
                };
                // (command, columns): `None` for the whole table; no privileges: ALL.
                let mut privileges: Vec<(Command, Option<Vec<String>>)> = Vec::new();
                for p in &g.privileges {
                    let Some(NodeEnum::AccessPriv(p)) = &p.node else {
                        continue;
                    };
                    let columns = names(&p.cols);
                    if p.priv_name.is_empty() || p.priv_name.eq_ignore_ascii_case("all") {
                        for c in Command::ALL {
                            privileges.push((c, (!columns.is_empty()).then(|| columns.clone())));
                        }
                    } else if let Some(c) = command_of_privilege(&p.priv_name) {
                        privileges.push((c, (!columns.is_empty()).then(|| columns.clone())));
                    }
                }
                if g.privileges.is_empty() {
                    privileges = Command::ALL.into_iter().map(|c| (c, None)).collect();
                }
                let grantees: Vec<String> = g.grantees.iter().filter_map(role_name).collect();
                for table in &tables {
                    for grantee in &grantees {
                        let grants = self
                            .grants
                            .entry((table.clone(), grantee.clone()))
                            .or_default();
                        for (command, columns) in &privileges {
                            match (g.is_grant, columns) {
                                (true, None) => {
                                    grants.table.insert(*command);
                                }
                                (true, Some(cols)) => {
                                    grants
                                        .columns
                                        .entry(*command)
                                        .or_default()
                                        .extend(cols.iter().cloned());
                                }
                                (false, None) => {
                                    grants.table.remove(command);
                                    grants.columns.remove(command);
                                }
                                (false, Some(cols)) => {
                                    if let Some(set) = grants.columns.get_mut(command) {
                                        set.retain(|c| !cols.contains(c));
                                    }
                                }
                            }
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// The app role's privileges: its own grants and PUBLIC's.
    fn finish(&mut self) {
        for ((table, grantee), grants) in &self.grants {
            if grantee != &self.app_role && grantee != "public" {
                continue;
            }
            if let Some(state) = self.deployed.tables.get_mut(table) {
                state.privileges.extend(grants.table.iter().copied());
                state.privileges.extend(
                    grants
                        .columns
                        .iter()
                        .filter(|(_, cols)| !cols.is_empty())
                        .map(|(c, _)| *c),
                );
            }
        }
    }
}

/// One row of the policy query.
#[derive(sqlx::FromRow)]
struct PolicyRow {
    schemaname: String,
    tablename: String,
    policyname: String,
    permissive: String,
    roles: Vec<String>,
    cmd: String,
    qual: Option<String>,
    with_check: Option<String>,
    applies: bool,
}

/// One row of the table query.
#[derive(sqlx::FromRow)]
struct TableRow {
    schemaname: String,
    tablename: String,
    rls_enabled: bool,
    rls_forced: bool,
    can_select: bool,
    can_insert: bool,
    can_update: bool,
    can_delete: bool,
}

const TABLES_SQL: &str = "\
SELECT n.nspname::text AS schemaname, c.relname::text AS tablename,
       c.relrowsecurity AS rls_enabled, c.relforcerowsecurity AS rls_forced,
       pg_catalog.has_any_column_privilege($1, c.oid, 'SELECT') AS can_select,
       pg_catalog.has_any_column_privilege($1, c.oid, 'INSERT') AS can_insert,
       pg_catalog.has_any_column_privilege($1, c.oid, 'UPDATE') AS can_update,
       pg_catalog.has_table_privilege($1, c.oid, 'DELETE') AS can_delete
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND n.nspname = $2";

const POLICIES_SQL: &str = "\
SELECT p.schemaname::text AS schemaname, p.tablename::text AS tablename,
       p.policyname::text AS policyname, p.permissive, p.roles::text[] AS roles, p.cmd,
       p.qual, p.with_check,
       EXISTS (SELECT 1 FROM pg_catalog.unnest(p.roles) r
               WHERE r = 'public' OR pg_catalog.pg_has_role($1, r, 'USAGE')) AS applies
FROM pg_catalog.pg_policies p
WHERE p.schemaname = $2
ORDER BY p.tablename, p.policyname";

impl Deployed {
    /// Reads the tables of schema `public`, their policies and the app role's privileges from
    /// the catalogs of the database behind `pool` (read only).
    pub async fn from_database(
        pool: &sqlx::PgPool,
        model: &Model,
    ) -> Result<Deployed, VerifyError> {
        let app = &model.settings.app_role;
        let db = |e: sqlx::Error| VerifyError::Database(e.to_string());
        let exists: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = $1)",
        )
        .bind(app)
        .fetch_one(pool)
        .await
        .map_err(db)?;
        if !exists {
            return Err(VerifyError::Database(format!(
                "the app role `{app}` does not exist in this database"
            )));
        }
        let tables: Vec<TableRow> = sqlx::query_as(TABLES_SQL)
            .bind(app)
            .bind(TABLE_SCHEMA)
            .fetch_all(pool)
            .await
            .map_err(db)?;
        let policies: Vec<PolicyRow> = sqlx::query_as(POLICIES_SQL)
            .bind(app)
            .bind(TABLE_SCHEMA)
            .fetch_all(pool)
            .await
            .map_err(db)?;
        let mut deployed = Deployed {
            source: "the database".to_owned(),
            tables: BTreeMap::new(),
        };
        for t in tables {
            let mut privileges = BTreeSet::new();
            for (held, command) in [
                (t.can_select, Command::Select),
                (t.can_insert, Command::Insert),
                (t.can_update, Command::Update),
                (t.can_delete, Command::Delete),
            ] {
                if held {
                    privileges.insert(command);
                }
            }
            deployed.tables.insert(
                qualified(&t.schemaname, &t.tablename),
                TableState {
                    rls_enabled: t.rls_enabled,
                    rls_forced: t.rls_forced,
                    policies: Vec::new(),
                    privileges,
                },
            );
        }
        let schema = &model.settings.helper_schema;
        let read = |text: Option<String>| {
            text.map(|text| PolicyExpr {
                expr: expr::parse_text(&text, schema),
                text,
            })
        };
        for p in policies {
            let key = qualified(&p.schemaname, &p.tablename);
            let policy = DeployedPolicy {
                name: p.policyname,
                permissive: p.permissive.eq_ignore_ascii_case("PERMISSIVE"),
                command: PolicyCommand::parse(&p.cmd).unwrap_or(PolicyCommand::All),
                roles: p.roles,
                applies: p.applies,
                using: read(p.qual),
                check: read(p.with_check),
            };
            deployed
                .tables
                .entry(key)
                .or_default()
                .policies
                .push(policy);
        }
        Ok(deployed)
    }
}
