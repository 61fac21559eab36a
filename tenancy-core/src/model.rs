//! The validated tenancy model: what every emitter (SQL, Rust, explain) reads.
//!
//! A [`Model`] is only ever produced by a front end (the DSL in [`crate::dsl`] or the
//! `#[derive(TenantScoped)]` front end) after validation, so emitters may rely on its
//! invariants: names are unique, every referenced table/column/role exists, rules name
//! declared roles, and scoped tables have a primary key.
//!
//! The model stores what the developer *declared*. The columns and keys the generator
//! adds (`tenant_id`, `project_id`, the core tables' keys) are derived by the methods on
//! [`Table`] (`all_columns`, `effective_primary_key`, ...), so every emitter agrees on them.

use std::fmt;

pub use crate::condition::{Condition, Stamp};

/// Name of the tenant column the generator adds to every tenant-owned table.
pub const TENANT_COLUMN: &str = "tenant_id";
/// Name of the project column the generator adds to every project-owned table.
pub const PROJECT_COLUMN: &str = "project_id";
/// Name of the membership table's user column.
pub const USER_COLUMN: &str = "user_id";
/// Name of the membership table's role column.
pub const ROLE_COLUMN: &str = "role";
/// Name of the generated key column of the tenants and projects tables.
pub const ID_COLUMN: &str = "id";
/// Name of the PostgreSQL enum type (inside the helper schema) that holds the roles.
pub const ROLE_TYPE: &str = "project_role";
/// The schema the generated migrations create the model's tables in (the migrations run with
/// it first on the `search_path`; the generated repositories name it explicitly).
pub const TABLE_SCHEMA: &str = "public";

/// One validated model: the tenancy core settings, the ordered roles and every table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Model {
    /// Database-level settings (role names, helper schema).
    pub settings: Settings,
    /// Roles ordered from the least to the most privileged (`viewer < editor < ...`).
    pub roles: Vec<String>,
    /// Every table, core tables first, then in declaration order.
    pub tables: Vec<Table>,
    /// How existing single-tenant tables are adopted, when some table `adopts` one
    /// (`None`: every table is created from scratch).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adoption: Option<Adoption>,
}

/// The `adopt { ... }` block and the `adopts` clauses: existing (pre-tenancy) tables that
/// become scoped tables through a phased migration instead of `CREATE TABLE`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Adoption {
    /// Name of the tenant that receives every existing row (written into the required text
    /// columns of its tenants row, e.g. `name` and `slug`).
    pub tenant: String,
    /// Name of the project (of that tenant) that receives every existing row.
    pub project: String,
    /// The adopted tables, in declaration order.
    pub tables: Vec<AdoptedTable>,
}

/// One `scoped table <table> adopts <legacy_table>` clause.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AdoptedTable {
    /// The model's table name.
    pub table: String,
    /// The existing table's name (renamed to `table` by the migration when different).
    pub legacy_table: String,
}

/// Database-level settings declared in the `tenancy { ... }` block.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Settings {
    /// The NOLOGIN role that owns every generated object (default `tenancy_owner`).
    pub owner_role: String,
    /// The application's LOGIN role, always subject to row-level security (default `tenancy_app`).
    pub app_role: String,
    /// The schema holding the helper functions and the role enum (default `tenancy`).
    pub helper_schema: String,
    /// The import name of the Python package `tenancy generate --python` writes
    /// (`python_package = "..."`; `None`: the `--python-package` flag or its default). Not a
    /// database setting: never in the snapshot, never a reason for a migration.
    #[serde(skip)]
    pub python_package: Option<String>,
}

impl Settings {
    /// The settings that shape the database are equal (everything but `python_package`).
    pub fn same_database(&self, other: &Settings) -> bool {
        let database = |s: &Settings| Settings {
            python_package: None,
            ..s.clone()
        };
        database(self) == database(other)
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            owner_role: "tenancy_owner".to_owned(),
            app_role: "tenancy_app".to_owned(),
            helper_schema: "tenancy".to_owned(),
            python_package: None,
        }
    }
}

/// What a table is to the tenancy layer.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum TableKind {
    /// The tenants table (one row per tenant, key `id`).
    Tenants,
    /// The projects table (key `(tenant_id, id)`).
    Projects,
    /// The membership table `(tenant_id, project_id, user_id, role)`.
    Memberships,
    /// The optional tenant-wide membership table `(tenant_id, user_id, role)`: a role in every
    /// project of the tenant, and the role that manages these rows.
    TenantMemberships,
    /// A table owned by a project (and therefore by its tenant).
    Scoped,
    /// A table shared by every tenant, declared explicitly as `global`.
    Global,
}

impl TableKind {
    /// The DSL keyword that declares this kind of table.
    pub fn keyword(self) -> &'static str {
        match self {
            TableKind::Tenants => "tenants",
            TableKind::Projects => "projects",
            TableKind::Memberships => "memberships",
            TableKind::TenantMemberships => "tenant_memberships",
            TableKind::Scoped => "scoped",
            TableKind::Global => "global",
        }
    }

    /// True for the tables of the tenancy core (the three required ones and the optional
    /// tenant-wide memberships).
    pub fn is_core(self) -> bool {
        matches!(
            self,
            TableKind::Tenants
                | TableKind::Projects
                | TableKind::Memberships
                | TableKind::TenantMemberships
        )
    }

    /// True when rows belong to a tenant (everything but global tables).
    pub fn is_tenant_owned(self) -> bool {
        !matches!(self, TableKind::Global)
    }
}

/// A SQL command a rule can allow.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum Command {
    /// `SELECT`
    Select,
    /// `INSERT`
    Insert,
    /// `UPDATE`
    Update,
    /// `DELETE`
    Delete,
}

impl Command {
    /// All commands, in canonical order.
    pub const ALL: [Command; 4] = [
        Command::Select,
        Command::Insert,
        Command::Update,
        Command::Delete,
    ];

    /// Lower-case keyword (`select`, ...).
    pub fn keyword(self) -> &'static str {
        match self {
            Command::Select => "select",
            Command::Insert => "insert",
            Command::Update => "update",
            Command::Delete => "delete",
        }
    }

    /// Upper-case SQL keyword (`SELECT`, ...).
    pub fn sql(self) -> &'static str {
        match self {
            Command::Select => "SELECT",
            Command::Insert => "INSERT",
            Command::Update => "UPDATE",
            Command::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// One table of the model.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Table {
    /// SQL name of the table (unqualified, in `public`).
    pub name: String,
    /// Core, scoped or global.
    pub kind: TableKind,
    /// Documentation written above the declaration (`///` lines), if any.
    pub doc: Option<String>,
    /// Declared columns, in declaration order (generated columns are not listed here).
    pub columns: Vec<Column>,
    /// Declared primary key columns (without `tenant_id`/`project_id`); empty for core
    /// tables, whose keys are fixed by the generator.
    pub primary_key: Vec<String>,
    /// Declared unique keys (without `tenant_id`/`project_id`).
    pub unique_keys: Vec<Vec<String>>,
    /// Declared foreign keys (column-level `references` are normalised into this list).
    pub foreign_keys: Vec<ForeignKey>,
    /// Declared secondary indexes (without the `(tenant_id, project_id)` prefix).
    pub indexes: Vec<Index>,
    /// The rules, in canonical command order and, within a command, least privileged role
    /// first. A command may have several rules (with conditions; their union is allowed); a
    /// command without a rule is denied.
    pub rules: Vec<Rule>,
}

/// One declared column.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Column {
    /// Column name.
    pub name: String,
    /// PostgreSQL type.
    pub ty: SqlType,
    /// True when the column accepts NULL (`type?` in the DSL). Columns are NOT NULL by default.
    pub nullable: bool,
    /// Default value, if any.
    pub default: Option<DefaultValue>,
    /// Documentation (`///` lines), if any.
    pub doc: Option<String>,
    /// The distance a `vector(N)` column is searched by (`distance <name>` in the DSL);
    /// `None` on other columns and when not written (searches then use cosine, see
    /// [`Column::vector_distance`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub distance: Option<VectorDistance>,
    /// `per tenant` on a `vector(N)` column: each tenant chooses its embedding model (name and
    /// dimension, `N` being the dimension of tenants that chose none). The column is created
    /// as an unconstrained `vector`, and a trigger holds every row to its tenant's dimension
    /// (recorded in `<helper_schema>.vector_settings`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub per_tenant: bool,
    /// Filled by the database (`= current_user on insert`), never by the application.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stamp: Option<Stamp>,
}

impl Column {
    /// The distance of a vector column (cosine unless the model says otherwise); `None` for a
    /// column that is not a vector.
    pub fn vector_distance(&self) -> Option<VectorDistance> {
        match self.ty {
            SqlType::Vector(_) => Some(self.distance.unwrap_or_default()),
            _ => None,
        }
    }
}

/// How a vector column is searched: the pgvector operator of its searches and the operator
/// class of its HNSW indexes.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "snake_case")]
pub enum VectorDistance {
    /// `cosine` (the default): `<=>`, `vector_cosine_ops`.
    #[default]
    Cosine,
    /// `l2`, Euclidean: `<->`, `vector_l2_ops`.
    L2,
    /// `inner_product`, negative inner product: `<#>`, `vector_ip_ops`.
    InnerProduct,
}

impl VectorDistance {
    /// Every distance with its DSL spelling, in declaration order.
    pub const ALL: [(&'static str, VectorDistance); 3] = [
        ("cosine", VectorDistance::Cosine),
        ("l2", VectorDistance::L2),
        ("inner_product", VectorDistance::InnerProduct),
    ];

    /// The DSL spelling: `cosine`, `l2` or `inner_product`.
    pub fn dsl_name(self) -> &'static str {
        match self {
            VectorDistance::Cosine => "cosine",
            VectorDistance::L2 => "l2",
            VectorDistance::InnerProduct => "inner_product",
        }
    }

    /// The distance spelled `name` in the DSL.
    pub fn from_dsl(name: &str) -> Option<VectorDistance> {
        Self::ALL
            .iter()
            .find(|(spelling, _)| *spelling == name)
            .map(|(_, distance)| *distance)
    }
}

/// The PostgreSQL types the DSL supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SqlType {
    /// `uuid`
    Uuid,
    /// `text`
    Text,
    /// `smallint`
    SmallInt,
    /// `integer`
    Integer,
    /// `bigint`
    BigInt,
    /// `real`
    Real,
    /// `double precision` (`double` in the DSL)
    Double,
    /// `boolean`
    Boolean,
    /// `date`
    Date,
    /// `timestamptz`
    Timestamptz,
    /// `jsonb`
    Jsonb,
    /// `bytea`
    Bytea,
    /// `vector(N)` from pgvector.
    Vector(u32),
    /// The role enum of the tenancy core (only on the membership table's `role` column).
    Role,
}

impl SqlType {
    /// The DSL spelling of the type (`vector(384)`, `double`, ...).
    pub fn dsl_name(self) -> String {
        match self {
            SqlType::Uuid => "uuid".into(),
            SqlType::Text => "text".into(),
            SqlType::SmallInt => "smallint".into(),
            SqlType::Integer => "integer".into(),
            SqlType::BigInt => "bigint".into(),
            SqlType::Real => "real".into(),
            SqlType::Double => "double".into(),
            SqlType::Boolean => "boolean".into(),
            SqlType::Date => "date".into(),
            SqlType::Timestamptz => "timestamptz".into(),
            SqlType::Jsonb => "jsonb".into(),
            SqlType::Bytea => "bytea".into(),
            SqlType::Vector(n) => format!("vector({n})"),
            SqlType::Role => "role".into(),
        }
    }

    /// The PostgreSQL spelling of the type; the role enum lives in `helper_schema`.
    pub fn sql_name(self, helper_schema: &str) -> String {
        match self {
            SqlType::Double => "double precision".into(),
            SqlType::Role => format!("{helper_schema}.{ROLE_TYPE}"),
            other => other.dsl_name(),
        }
    }

    /// Every scalar type name the DSL accepts (for "did you mean" suggestions).
    pub const DSL_NAMES: [&'static str; 13] = [
        "uuid",
        "text",
        "smallint",
        "integer",
        "bigint",
        "real",
        "double",
        "boolean",
        "date",
        "timestamptz",
        "jsonb",
        "bytea",
        "vector",
    ];
}

/// A column default. Only values the generator can check against the column type.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultValue {
    /// A string literal (`'draft'`, `'{}'` for jsonb).
    String(String),
    /// An integer literal.
    Integer(i64),
    /// A decimal literal, kept as written.
    Decimal(String),
    /// `true` / `false`.
    Bool(bool),
    /// `now()`
    Now,
    /// `gen_random_uuid()`
    GenRandomUuid,
}

impl DefaultValue {
    /// The default as a SQL expression (`'draft'`, `10`, `TRUE`, `now()`, ...).
    pub fn to_sql(&self) -> String {
        match self {
            DefaultValue::String(s) => format!("'{}'", s.replace('\'', "''")),
            DefaultValue::Integer(i) => i.to_string(),
            DefaultValue::Decimal(d) => d.clone(),
            DefaultValue::Bool(true) => "TRUE".to_owned(),
            DefaultValue::Bool(false) => "FALSE".to_owned(),
            DefaultValue::Now => "now()".to_owned(),
            DefaultValue::GenRandomUuid => "gen_random_uuid()".to_owned(),
        }
    }
}

/// What happens to referencing rows when the referenced row is deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnDelete {
    /// `NO ACTION` (the PostgreSQL default).
    #[default]
    NoAction,
    /// `RESTRICT`
    Restrict,
    /// `CASCADE`
    Cascade,
    /// `SET NULL`, applied only to the declared (nullable) columns, never to `tenant_id`.
    SetNull,
}

/// A declared foreign key (without the generated `tenant_id`/`project_id` columns).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ForeignKey {
    /// Referencing columns in this table.
    pub columns: Vec<String>,
    /// Referenced table.
    pub table: String,
    /// Referenced columns (a primary or unique key of the referenced table).
    pub target_columns: Vec<String>,
    /// Delete behaviour.
    pub on_delete: OnDelete,
}

/// Index access methods.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IndexMethod {
    /// B-tree (default).
    #[default]
    BTree,
    /// GIN (jsonb containment, full text).
    Gin,
}

/// A declared secondary index.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Index {
    /// Indexed columns (the generator leads tenant-owned indexes with the scope columns).
    pub columns: Vec<String>,
    /// Access method.
    pub method: IndexMethod,
}

/// "`command` is allowed to members whose role is at least `min_role`".
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Rule {
    /// The command allowed.
    pub command: Command,
    /// The least privileged role allowed to run it.
    pub min_role: String,
    /// The row condition (`where ...`) that must also hold; `None`: every row of the
    /// caller's projects.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub condition: Option<Condition>,
    /// The columns the rule covers (`allow update (a, b) to r`), in table column order;
    /// `None`: every column the command can name. `update` rules list the columns they may
    /// change; `select` rules (on scoped tables) the columns they may read.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub columns: Option<Vec<String>>,
}

/// The columns that tie a table's rows to the tenancy hierarchy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScopeColumns {
    /// Column holding the tenant id (`id` on the tenants table).
    pub tenant: &'static str,
    /// Column holding the project id (`id` on the projects table); `None` on tenants.
    pub project: Option<&'static str>,
}

impl Model {
    /// Looks a table up by name.
    pub fn table(&self, name: &str) -> Option<&Table> {
        self.tables.iter().find(|t| t.name == name)
    }

    /// The table of the given core kind (exactly one exists in a validated model).
    pub fn core_table(&self, kind: TableKind) -> Option<&Table> {
        self.tables.iter().find(|t| t.kind == kind)
    }

    /// The adoption clause of `table`, when that table adopts an existing one.
    pub fn adopted(&self, table: &str) -> Option<&AdoptedTable> {
        self.adoption
            .as_ref()
            .and_then(|a| a.tables.iter().find(|t| t.table == table))
    }

    /// Position of a role in the order (0 = least privileged).
    pub fn role_rank(&self, role: &str) -> Option<usize> {
        self.roles.iter().position(|r| r == role)
    }

    /// Tables in an order where every referenced table comes before the tables that
    /// reference it (core tables first). Ties keep declaration order, so the result is
    /// deterministic.
    pub fn tables_in_dependency_order(&self) -> Vec<&Table> {
        let mut done: Vec<&str> = Vec::new();
        let mut out: Vec<&Table> = Vec::new();
        let mut remaining: Vec<&Table> = self.tables.iter().collect();
        while !remaining.is_empty() {
            let before = remaining.len();
            let mut i = 0;
            while i < remaining.len() {
                let t = remaining[i];
                let ready = t.dependencies(self).iter().all(|d| done.contains(d));
                if ready {
                    done.push(t.name.as_str());
                    out.push(t);
                    remaining.remove(i);
                    // restart so the earliest declared ready table is always next
                    i = 0;
                } else {
                    i += 1;
                }
            }
            if remaining.len() == before {
                // A reference cycle (the validator rejects these); keep declaration order.
                out.append(&mut remaining);
            }
        }
        out
    }
}

impl Table {
    /// The scope columns, or `None` for global tables.
    pub fn scope_columns(&self) -> Option<ScopeColumns> {
        match self.kind {
            TableKind::Tenants => Some(ScopeColumns {
                tenant: ID_COLUMN,
                project: None,
            }),
            TableKind::Projects => Some(ScopeColumns {
                tenant: TENANT_COLUMN,
                project: Some(ID_COLUMN),
            }),
            TableKind::Memberships | TableKind::Scoped => Some(ScopeColumns {
                tenant: TENANT_COLUMN,
                project: Some(PROJECT_COLUMN),
            }),
            TableKind::TenantMemberships => Some(ScopeColumns {
                tenant: TENANT_COLUMN,
                project: None,
            }),
            TableKind::Global => None,
        }
    }

    /// The columns the generator adds in front of the declared ones.
    pub fn generated_columns(&self) -> Vec<Column> {
        let uuid = |name: &str, default: Option<DefaultValue>| Column {
            name: name.to_owned(),
            ty: SqlType::Uuid,
            nullable: false,
            default,
            doc: None,
            distance: None,
            per_tenant: false,
            stamp: None,
        };
        let role = Column {
            name: ROLE_COLUMN.to_owned(),
            ty: SqlType::Role,
            nullable: false,
            default: None,
            doc: None,
            distance: None,
            per_tenant: false,
            stamp: None,
        };
        match self.kind {
            TableKind::Tenants => vec![uuid(ID_COLUMN, Some(DefaultValue::GenRandomUuid))],
            TableKind::Projects => vec![
                uuid(TENANT_COLUMN, None),
                uuid(ID_COLUMN, Some(DefaultValue::GenRandomUuid)),
            ],
            TableKind::Memberships => vec![
                uuid(TENANT_COLUMN, None),
                uuid(PROJECT_COLUMN, None),
                uuid(USER_COLUMN, None),
                role,
            ],
            TableKind::TenantMemberships => {
                vec![uuid(TENANT_COLUMN, None), uuid(USER_COLUMN, None), role]
            }
            TableKind::Scoped => vec![uuid(TENANT_COLUMN, None), uuid(PROJECT_COLUMN, None)],
            TableKind::Global => vec![],
        }
    }

    /// Generated columns followed by the declared ones: the table as created.
    pub fn all_columns(&self) -> Vec<Column> {
        let mut cols = self.generated_columns();
        cols.extend(self.columns.iter().cloned());
        cols
    }

    /// Looks a declared or generated column up by name.
    pub fn column(&self, name: &str) -> Option<Column> {
        self.all_columns().into_iter().find(|c| c.name == name)
    }

    /// The key prefix the generator puts in front of every key and index of this table.
    pub fn key_prefix(&self) -> Vec<String> {
        match self.kind {
            TableKind::Scoped | TableKind::Memberships => {
                vec![TENANT_COLUMN.to_owned(), PROJECT_COLUMN.to_owned()]
            }
            TableKind::Projects | TableKind::TenantMemberships => vec![TENANT_COLUMN.to_owned()],
            TableKind::Tenants | TableKind::Global => vec![],
        }
    }

    /// Prefixes `cols` with the scope columns, without repeating any already present.
    pub fn with_key_prefix(&self, cols: &[String]) -> Vec<String> {
        let mut out: Vec<String> = self
            .key_prefix()
            .into_iter()
            .filter(|p| !cols.contains(p))
            .collect();
        out.extend(cols.iter().cloned());
        out
    }

    /// The primary key as created.
    pub fn effective_primary_key(&self) -> Vec<String> {
        match self.kind {
            TableKind::Tenants => vec![ID_COLUMN.to_owned()],
            TableKind::Projects => vec![TENANT_COLUMN.to_owned(), ID_COLUMN.to_owned()],
            TableKind::Memberships => vec![
                TENANT_COLUMN.to_owned(),
                PROJECT_COLUMN.to_owned(),
                USER_COLUMN.to_owned(),
            ],
            TableKind::TenantMemberships => vec![TENANT_COLUMN.to_owned(), USER_COLUMN.to_owned()],
            TableKind::Scoped | TableKind::Global => self.with_key_prefix(&self.primary_key),
        }
    }

    /// The unique keys as created (scope columns prepended for tenant-owned tables).
    pub fn effective_unique_keys(&self) -> Vec<Vec<String>> {
        self.unique_keys
            .iter()
            .map(|k| self.with_key_prefix(k))
            .collect()
    }

    /// The key columns a caller supplies to find one row (the primary key without the
    /// scope columns, which come from the scope).
    pub fn lookup_key(&self) -> Vec<String> {
        let prefix = self.key_prefix();
        self.effective_primary_key()
            .into_iter()
            .filter(|c| !prefix.contains(c))
            .collect()
    }

    /// The least privileged role any rule for `command` names (the role a caller needs at
    /// all), or `None` when the command is denied.
    pub fn rule(&self, command: Command) -> Option<&str> {
        self.rules
            .iter()
            .find(|r| r.command == command)
            .map(|r| r.min_role.as_str())
    }

    /// Every rule for `command`, least privileged role first.
    pub fn rules_for(&self, command: Command) -> Vec<&Rule> {
        self.rules.iter().filter(|r| r.command == command).collect()
    }

    /// True when some rule for `command` has a row condition: a caller with the role may
    /// still be refused some rows.
    pub fn has_condition(&self, command: Command) -> bool {
        self.rules_for(command)
            .iter()
            .any(|r| r.condition.is_some())
    }

    /// True when some `update` rule names the columns it may change: writable columns
    /// then differ by role, and the database checks them per row.
    pub fn has_column_rights(&self) -> bool {
        self.rules_for(Command::Update)
            .iter()
            .any(|r| r.columns.is_some())
    }

    /// Columns every caller who may read a row reads: the scope columns and the primary key
    /// (they name the row), whatever the `select` column lists say.
    pub fn always_readable_columns(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        if let Some(scope) = self.scope_columns() {
            out.push(scope.tenant.to_owned());
            out.extend(scope.project.map(str::to_owned));
        }
        for key in self.effective_primary_key() {
            if !out.contains(&key) {
                out.push(key);
            }
        }
        out
    }

    /// True when `rule` (a `select` rule) lets its callers read `column`.
    pub fn rule_reads(&self, rule: &Rule, column: &str) -> bool {
        rule.columns
            .as_ref()
            .is_none_or(|l| l.iter().any(|c| c == column))
            || self.always_readable_columns().iter().any(|c| c == column)
    }

    /// The masked columns: those some `select` rule does not list. The app role has no
    /// SELECT on them; they are read through the table's masked view, which shows a value
    /// only to a caller whose rules cover the column for that row. In column order.
    pub fn masked_columns(&self) -> Vec<Column> {
        let rules = self.rules_for(Command::Select);
        if rules.iter().all(|r| r.columns.is_none()) {
            return Vec::new();
        }
        self.all_columns()
            .into_iter()
            .filter(|c| rules.iter().any(|r| !self.rule_reads(r, &c.name)))
            .collect()
    }

    /// The stamped columns (filled by the database), in column order.
    pub fn stamped_columns(&self) -> Vec<&Column> {
        self.columns.iter().filter(|c| c.stamp.is_some()).collect()
    }

    /// Names of the tables this one references (generated references included).
    pub fn dependencies<'m>(&'m self, model: &'m Model) -> Vec<&'m str> {
        let mut deps: Vec<&str> = Vec::new();
        let core = |kind| model.core_table(kind).map(|t: &Table| t.name.as_str());
        match self.kind {
            TableKind::Projects | TableKind::TenantMemberships => {
                deps.extend(core(TableKind::Tenants))
            }
            TableKind::Memberships | TableKind::Scoped => deps.extend(core(TableKind::Projects)),
            TableKind::Tenants | TableKind::Global => {}
        }
        for fk in &self.foreign_keys {
            if fk.table != self.name && !deps.contains(&fk.table.as_str()) {
                deps.push(fk.table.as_str());
            }
        }
        deps
    }
}
