//! Semantic checks: turns the syntax trees of all files into a [`Model`], collecting
//! every error and warning on the way (nothing stops at the first problem).
//!
//! The [`Checker`] holds the diagnostics; each `check_*` function enforces one documented
//! rule. The model is only built when no error was reported.

use std::collections::{HashMap, HashSet};

use super::ast::{
    AdoptBlock, ColumnDecl, Constraint, File, Ident, Reference, RuleDecl, TableDecl, TypeExpr,
};
use super::diagnostic::{Diagnostic, Diagnostics, Span};
use super::suggest;
use crate::model::{
    AdoptedTable, Adoption, Column, Command, DefaultValue, ForeignKey, Index, IndexMethod, Model,
    OnDelete, Rule, Settings, SqlType, Table, TableKind,
};

/// PostgreSQL's NAMEDATALEN - 1: the longest identifier in bytes.
pub const MAX_IDENTIFIER_BYTES: usize = 63;

/// The largest `vector(N)` dimension pgvector accepts for a column.
pub const MAX_VECTOR_DIMENSIONS: u32 = 16000;

/// PostgreSQL's fully reserved key words (they cannot be table, column or role names).
const RESERVED_WORDS: [&str; 78] = [
    "all",
    "analyse",
    "analyze",
    "and",
    "any",
    "array",
    "as",
    "asc",
    "asymmetric",
    "both",
    "case",
    "cast",
    "check",
    "collate",
    "column",
    "constraint",
    "create",
    "current_catalog",
    "current_date",
    "current_role",
    "current_time",
    "current_timestamp",
    "current_user",
    "default",
    "deferrable",
    "desc",
    "distinct",
    "do",
    "else",
    "end",
    "except",
    "false",
    "fetch",
    "for",
    "foreign",
    "from",
    "grant",
    "group",
    "having",
    "in",
    "initially",
    "intersect",
    "into",
    "lateral",
    "leading",
    "limit",
    "localtime",
    "localtimestamp",
    "not",
    "null",
    "offset",
    "on",
    "only",
    "or",
    "order",
    "placing",
    "primary",
    "references",
    "returning",
    "select",
    "session_user",
    "some",
    "symmetric",
    "system_user",
    "table",
    "then",
    "to",
    "trailing",
    "true",
    "union",
    "unique",
    "user",
    "using",
    "variadic",
    "when",
    "where",
    "window",
    "with",
];

/// The settings a `tenancy` block may hold.
const SETTING_NAMES: [&str; 3] = ["owner_role", "app_role", "helper_schema"];

/// The settings an `adopt` block may hold.
const ADOPT_SETTING_NAMES: [&str; 2] = ["tenant", "project"];

/// Common spellings from PostgreSQL or other languages, mapped to the DSL type.
const TYPE_ALIASES: [(&str, &str); 14] = [
    ("int", "integer"),
    ("int4", "integer"),
    ("int8", "bigint"),
    ("int2", "smallint"),
    ("bool", "boolean"),
    ("varchar", "text"),
    ("string", "text"),
    ("timestamp", "timestamptz"),
    ("datetime", "timestamptz"),
    ("json", "jsonb"),
    ("float", "double"),
    ("float8", "double"),
    ("float4", "real"),
    ("serial", "bigint"),
];

/// Validates the parsed files and builds the model (only when there is no error).
pub fn validate(files: &[File], diags: &mut Diagnostics) -> Option<Model> {
    let mut checker = Checker {
        diags,
        roles: None,
        tables: HashMap::new(),
    };
    let settings = checker.check_tenancy_blocks(files);
    let decls: Vec<&TableDecl> = files.iter().flat_map(|f| f.tables.iter()).collect();
    checker.check_table_names(&decls);
    checker.check_core_kinds(&decls);
    let mut infos: Vec<TableInfo<'_>> = Vec::new();
    for decl in &decls {
        let is_first = checker
            .tables
            .get(decl.name.name.as_str())
            .is_some_and(|first| std::ptr::eq(*first, *decl));
        if !is_first {
            continue; // a duplicate table, already reported
        }
        if let Some(kind) = decl.kind {
            infos.push(checker.check_table(decl, kind));
        }
    }
    let by_name: HashMap<&str, &TableInfo<'_>> = infos
        .iter()
        .map(|t| (t.decl.name.name.as_str(), t))
        .collect();
    for info in &infos {
        for fk in &info.foreign_keys {
            checker.check_foreign_key(info, fk, &by_name);
        }
    }
    checker.check_reference_cycles(&infos);
    for info in &infos {
        checker.check_select_rule(info);
    }
    let adoption = checker.check_adoption(files, &infos);
    if checker.diags.has_errors() {
        return None;
    }
    let roles = checker.roles.clone().unwrap_or_default();
    let mut tables: Vec<Table> = Vec::new();
    for kind in [
        TableKind::Tenants,
        TableKind::Projects,
        TableKind::Memberships,
    ] {
        tables.extend(
            infos
                .iter()
                .filter(|t| t.kind == kind)
                .map(|t| build_table(t, &roles)),
        );
    }
    tables.extend(
        infos
            .iter()
            .filter(|t| !t.kind.is_core())
            .map(|t| build_table(t, &roles)),
    );
    let primary_keys: HashMap<String, Vec<String>> = tables
        .iter()
        .map(|t| (t.name.clone(), t.primary_key.clone()))
        .collect();
    for table in &mut tables {
        for fk in &mut table.foreign_keys {
            if fk.target_columns.is_empty() {
                fk.target_columns = primary_keys.get(&fk.table).cloned().unwrap_or_default();
            }
        }
    }
    Some(Model {
        settings: settings.unwrap_or_default(),
        roles,
        tables,
        adoption,
    })
}

/// A foreign key as declared (column-level or table-level), with spans.
struct FkDecl<'a> {
    columns: Vec<&'a Ident>,
    reference: &'a Reference,
    /// Where to point for problems with the key as a whole.
    span: Span,
}

/// A table with its types resolved, on the way to becoming a [`Table`].
struct TableInfo<'a> {
    decl: &'a TableDecl,
    kind: TableKind,
    /// Declared columns with their resolved types (`None`: unknown, already reported).
    columns: Vec<(&'a ColumnDecl, Option<SqlType>)>,
    /// Generated columns (from the kind).
    generated: Vec<Column>,
    primary_key: Vec<String>,
    unique_keys: Vec<Vec<String>>,
    indexes: Vec<Index>,
    foreign_keys: Vec<FkDecl<'a>>,
    /// One rule per command, in canonical order.
    rules: Vec<(Command, Option<&'a Ident>)>,
}

impl TableInfo<'_> {
    fn name(&self) -> &str {
        &self.decl.name.name
    }

    /// Type and nullability of a declared or generated column; `Some((None, _))` when the
    /// column exists but its type was invalid.
    fn column(&self, name: &str) -> Option<(Option<SqlType>, bool)> {
        if let Some(c) = self.generated.iter().find(|c| c.name == name) {
            return Some((Some(c.ty), c.nullable));
        }
        self.columns
            .iter()
            .find(|(c, _)| c.name.name == name)
            .map(|(c, ty)| (*ty, c.nullable))
    }

    fn column_names(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.generated.iter().map(|c| c.name.as_str()).collect();
        names.extend(self.columns.iter().map(|(c, _)| c.name.name.as_str()));
        names
    }

    /// The declared keys a foreign key may target (primary key first).
    fn keys(&self) -> Vec<&Vec<String>> {
        let mut keys = Vec::new();
        if !self.primary_key.is_empty() {
            keys.push(&self.primary_key);
        }
        keys.extend(self.unique_keys.iter());
        keys
    }
}

/// Collects diagnostics while checking.
struct Checker<'d, 'a> {
    diags: &'d mut Diagnostics,
    /// Declared roles, when a `roles = ...` line exists (rules are checked against it).
    roles: Option<Vec<String>>,
    /// First declaration of each table name.
    tables: HashMap<&'a str, &'a TableDecl>,
}

impl<'a> Checker<'_, 'a> {
    fn error(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    // ---- names --------------------------------------------------------------------

    /// Rule: SQL names match `[a-z_][a-z0-9_]*`, are at most 63 bytes long (PostgreSQL
    /// truncates longer ones) and are not reserved SQL words.
    fn check_identifier(&mut self, name: &str, span: Span, what: &str) -> bool {
        let valid_chars = name
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_lowercase() || b == b'_')
            && name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !valid_chars {
            self.error(
                Diagnostic::error(
                    format!("invalid {what} name `{name}`"),
                    span,
                    "names are lower case: letters, digits and `_`",
                )
                .with_help(format!("write `{}`", name.to_ascii_lowercase())),
            );
            return false;
        }
        if name.len() > MAX_IDENTIFIER_BYTES {
            self.error(
                Diagnostic::error(
                    format!("{what} name `{name}` is too long"),
                    span,
                    format!(
                        "{} bytes; PostgreSQL keeps at most {MAX_IDENTIFIER_BYTES}",
                        name.len()
                    ),
                )
                .with_help("choose a shorter name"),
            );
            return false;
        }
        if RESERVED_WORDS.contains(&name) {
            self.error(
                Diagnostic::error(
                    format!("{what} name `{name}` is a reserved word in SQL"),
                    span,
                    "reserved in PostgreSQL",
                )
                .with_help(
                    "choose another name; a reserved word would need quoting in every query",
                ),
            );
            return false;
        }
        true
    }

    // ---- tenancy block ----------------------------------------------------------------

    /// Rule: exactly one `tenancy` block in the model; settings are known, given once and
    /// valid SQL names; `roles` is given once, with at least two distinct roles.
    fn check_tenancy_blocks(&mut self, files: &[File]) -> Option<Settings> {
        let blocks: Vec<_> = files.iter().flat_map(|f| f.tenancy_blocks.iter()).collect();
        let Some(first) = blocks.first() else {
            self.error(
                Diagnostic::global_error("no `tenancy` block")
                    .with_note("the `tenancy` block declares the project roles every rule refers to")
                    .with_help(
                        "add one to any policy file, for example:\n\n    tenancy {\n        roles = viewer < editor < admin\n    }",
                    ),
            );
            return None;
        };
        for extra in &blocks[1..] {
            self.error(
                Diagnostic::error(
                    "duplicate `tenancy` block",
                    extra.span,
                    "second `tenancy` block",
                )
                .with_secondary(first.span, "first declared here")
                .with_help("merge the settings into one block"),
            );
        }
        let mut settings = Settings::default();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for setting in &first.settings {
            let key = setting.key.name.as_str();
            if !SETTING_NAMES.contains(&key) {
                let mut d = Diagnostic::error(
                    format!("unknown setting `{key}`"),
                    setting.key.span,
                    "not a `tenancy` setting",
                );
                d = match suggest(key, &SETTING_NAMES) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(
                        "the settings are `owner_role`, `app_role`, `helper_schema` and `roles`",
                    ),
                };
                self.error(d);
                continue;
            }
            if let Some(prev) = seen.insert(key, setting.key.span) {
                self.error(
                    Diagnostic::error(
                        format!("duplicate setting `{key}`"),
                        setting.key.span,
                        "set again here",
                    )
                    .with_secondary(prev, "first set here"),
                );
                continue;
            }
            self.check_identifier(
                &setting.value,
                setting.value_span,
                key.trim_end_matches("_role"),
            );
            let value = setting.value.clone();
            match key {
                "owner_role" => settings.owner_role = value,
                "app_role" => settings.app_role = value,
                _ => settings.helper_schema = value,
            }
        }
        if settings.owner_role == settings.app_role {
            let span = first
                .settings
                .iter()
                .rev()
                .find(|s| s.key.name == "app_role" || s.key.name == "owner_role")
                .map_or(first.span, |s| s.value_span);
            self.error(
                Diagnostic::error(
                    "`owner_role` and `app_role` are the same role",
                    span,
                    "the application would own the tables and bypass row-level security",
                )
                .with_help("use two different roles"),
            );
        }
        self.check_roles(first);
        Some(settings)
    }

    /// Rule: `roles = a < b ...` appears once, with at least two distinct valid names.
    fn check_roles(&mut self, block: &super::ast::TenancyBlock) {
        let Some(decl) = block.roles.first() else {
            self.error(
                Diagnostic::error(
                    "the `tenancy` block declares no roles",
                    block.span,
                    "`roles` missing in this block",
                )
                .with_help("add the roles, lowest first: `roles = viewer < editor < admin`"),
            );
            return;
        };
        for extra in &block.roles[1..] {
            self.error(
                Diagnostic::error("duplicate `roles` setting", extra.span, "set again here")
                    .with_secondary(decl.span, "first set here"),
            );
        }
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for role in &decl.roles {
            if let Some(prev) = seen.insert(role.name.as_str(), role.span) {
                self.error(
                    Diagnostic::error(
                        format!("duplicate role `{}`", role.name),
                        role.span,
                        "declared again here",
                    )
                    .with_secondary(prev, "first declared here")
                    .with_help("each role appears once, lowest first"),
                );
                continue;
            }
            self.check_identifier(&role.name, role.span, "role");
            names.push(role.name.clone());
        }
        if decl.roles.len() < 2 {
            self.error(
                Diagnostic::error(
                    "fewer than two roles",
                    decl.span,
                    "at least two roles are needed",
                )
                .with_note(
                    "rules say which role a command needs; with one role there is nothing to order",
                )
                .with_help("declare them lowest first: `roles = viewer < editor < admin`"),
            );
        }
        self.roles = Some(names);
    }

    // ---- tables -------------------------------------------------------------------

    /// Rule: table names are valid SQL names and unique across all files.
    fn check_table_names(&mut self, decls: &[&'a TableDecl]) {
        for decl in decls {
            let name = decl.name.name.as_str();
            if let Some(first) = self.tables.get(name) {
                let first_span = first.name.span;
                self.error(
                    Diagnostic::error(
                        format!("duplicate table `{name}`"),
                        decl.name.span,
                        "declared again here",
                    )
                    .with_secondary(first_span, "first declared here")
                    .with_help("rename one of them or merge the declarations"),
                );
                continue;
            }
            self.check_identifier(name, decl.name.span, "table");
            self.tables.insert(name, decl);
        }
    }

    /// Rule: exactly one `tenants`, one `projects` and one `memberships` table.
    fn check_core_kinds(&mut self, decls: &[&TableDecl]) {
        for kind in [
            TableKind::Tenants,
            TableKind::Projects,
            TableKind::Memberships,
        ] {
            let of_kind: Vec<&&TableDecl> = decls.iter().filter(|d| d.kind == Some(kind)).collect();
            let keyword = kind.keyword();
            match of_kind.split_first() {
                None => {
                    let example = match kind {
                        TableKind::Memberships => "memberships table memberships {\n        allow select to viewer\n    }".to_owned(),
                        _ => format!("{keyword} table {keyword} {{\n        name text\n        allow select to viewer\n    }}"),
                    };
                    self.error(
                        Diagnostic::global_error(format!("no `{keyword}` table"))
                            .with_note("the tenancy core needs one tenants, one projects and one memberships table")
                            .with_help(format!("declare it, for example:\n\n    {example}")),
                    );
                }
                Some((first, rest)) => {
                    for extra in rest {
                        self.error(
                            Diagnostic::error(
                                format!("more than one `{keyword}` table"),
                                extra.kind_span,
                                format!("second `{keyword}` table"),
                            )
                            .with_secondary(first.kind_span, "first one here")
                            .with_help(format!(
                                "a model has exactly one `{keyword}` table; declare the other one as `scoped` or `global`"
                            )),
                        );
                    }
                }
            }
        }
    }

    /// Checks one table's own items and resolves them into a [`TableInfo`].
    fn check_table(&mut self, decl: &'a TableDecl, kind: TableKind) -> TableInfo<'a> {
        let generated = Table {
            name: String::new(),
            kind,
            doc: None,
            columns: Vec::new(),
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
            foreign_keys: Vec::new(),
            indexes: Vec::new(),
            rules: Vec::new(),
        }
        .generated_columns();
        let mut info = TableInfo {
            decl,
            kind,
            columns: Vec::new(),
            generated,
            primary_key: Vec::new(),
            unique_keys: Vec::new(),
            indexes: Vec::new(),
            foreign_keys: Vec::new(),
            rules: Vec::new(),
        };
        self.check_columns(&mut info);
        self.check_keys(&mut info);
        self.check_rules(&mut info);
        info
    }

    /// Rule: column names are valid, unique, and do not collide with the generated
    /// columns; types exist; defaults match their column's type.
    fn check_columns(&mut self, info: &mut TableInfo<'a>) {
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for column in &info.decl.columns {
            let name = column.name.name.as_str();
            if let Some(prev) = seen.insert(name, column.name.span) {
                self.error(
                    Diagnostic::error(
                        format!("duplicate column `{name}` in table `{}`", info.name()),
                        column.name.span,
                        "declared again here",
                    )
                    .with_secondary(prev, "first declared here"),
                );
                continue;
            }
            self.check_identifier(name, column.name.span, "column");
            self.check_generated_collision(info, column);
            let ty = self.resolve_type(&column.ty);
            if let (Some(ty), Some(default)) = (ty, &column.default) {
                self.check_default(column, ty, &default.value, default.span);
            }
            info.columns.push((column, ty));
        }
    }

    /// Rule: a table may not declare a column the generator adds. For scoped tables this is
    /// `tenant_id`/`project_id`; core tables also have fixed key columns.
    fn check_generated_collision(&mut self, info: &TableInfo<'a>, column: &ColumnDecl) {
        let name = column.name.name.as_str();
        if !info.generated.iter().any(|c| c.name == name) {
            return;
        }
        let d = if info.kind == TableKind::Scoped {
            Diagnostic::error(
                format!("scoped table `{}` declares `{name}` itself", info.name()),
                column.name.span,
                "the generator adds this column",
            )
            .with_help(format!(
                "remove it; the generator adds `{name}` to every scoped table and prefixes every key and foreign key with it"
            ))
        } else {
            Diagnostic::error(
                format!(
                    "column `{name}` is generated for the {} table `{}`",
                    info.kind.keyword(),
                    info.name()
                ),
                column.name.span,
                "the generator adds this column",
            )
            .with_help(format!(
                "remove `{name}`; the generated key columns are fixed"
            ))
        };
        self.error(d);
    }

    /// Rule: a type is one of `SqlType::DSL_NAMES`; `vector` needs `(N)` with
    /// 1 <= N <= 16000 and no other type takes an argument.
    fn resolve_type(&mut self, ty: &TypeExpr) -> Option<SqlType> {
        let name = ty.name.name.as_str();
        let scalar = match name {
            "uuid" => Some(SqlType::Uuid),
            "text" => Some(SqlType::Text),
            "smallint" => Some(SqlType::SmallInt),
            "integer" => Some(SqlType::Integer),
            "bigint" => Some(SqlType::BigInt),
            "real" => Some(SqlType::Real),
            "double" => Some(SqlType::Double),
            "boolean" => Some(SqlType::Boolean),
            "date" => Some(SqlType::Date),
            "timestamptz" => Some(SqlType::Timestamptz),
            "jsonb" => Some(SqlType::Jsonb),
            "bytea" => Some(SqlType::Bytea),
            _ => None,
        };
        if let Some(scalar) = scalar {
            if let Some((_, span)) = &ty.arg {
                self.error(
                    Diagnostic::error(
                        format!("type `{name}` takes no argument"),
                        *span,
                        "unexpected argument",
                    )
                    .with_help(format!("write `{name}`")),
                );
                return None;
            }
            return Some(scalar);
        }
        if name == "vector" {
            let Some((raw, span)) = &ty.arg else {
                self.error(
                    Diagnostic::error("`vector` needs a dimension", ty.span, "dimension missing")
                        .with_help("write the number of dimensions, e.g. `vector(384)`"),
                );
                return None;
            };
            return match raw.parse::<u32>() {
                Ok(n) if (1..=MAX_VECTOR_DIMENSIONS).contains(&n) => Some(SqlType::Vector(n)),
                _ => {
                    self.error(
                        Diagnostic::error(
                            format!("invalid vector dimension `{raw}`"),
                            *span,
                            format!("must be between 1 and {MAX_VECTOR_DIMENSIONS}"),
                        )
                        .with_help("pgvector columns hold 1 to 16000 dimensions"),
                    );
                    None
                }
            };
        }
        let mut d = Diagnostic::error(
            format!("unknown type `{name}`"),
            ty.name.span,
            "not a supported type",
        );
        let alias = TYPE_ALIASES
            .iter()
            .find(|(a, _)| *a == name)
            .map(|(_, t)| *t);
        d = match alias.or_else(|| suggest(name, &SqlType::DSL_NAMES)) {
            Some(s) => d.with_help(format!("did you mean `{s}`?")),
            None => d.with_help(format!(
                "the types are {}",
                SqlType::DSL_NAMES
                    .iter()
                    .map(|n| if *n == "vector" {
                        "`vector(N)`".to_owned()
                    } else {
                        format!("`{n}`")
                    })
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        };
        self.error(d);
        None
    }

    /// Rule: a default has the column's type: `now()` for timestamptz/date,
    /// `gen_random_uuid()` for uuid, strings for text/jsonb/uuid/date/timestamptz (jsonb
    /// strings must be JSON, uuid strings UUIDs), numbers for numeric types, booleans for
    /// boolean.
    fn check_default(
        &mut self,
        column: &ColumnDecl,
        ty: SqlType,
        value: &DefaultValue,
        span: Span,
    ) {
        use SqlType as T;
        let type_name = ty.dsl_name();
        let problem: Option<(String, Option<String>)> = match (value, ty) {
            (DefaultValue::Now, T::Timestamptz | T::Date) => None,
            (DefaultValue::GenRandomUuid, T::Uuid) => None,
            (DefaultValue::Bool(_), T::Boolean) => None,
            (DefaultValue::Integer(v), T::SmallInt) if i16::try_from(*v).is_err() => {
                Some((format!("`{v}` does not fit in a smallint"), None))
            }
            (DefaultValue::Integer(v), T::Integer) if i32::try_from(*v).is_err() => Some((
                format!("`{v}` does not fit in an integer"),
                Some("use `bigint`".to_owned()),
            )),
            (
                DefaultValue::Integer(_),
                T::SmallInt | T::Integer | T::BigInt | T::Real | T::Double,
            ) => None,
            (DefaultValue::Decimal(_), T::Real | T::Double) => None,
            (DefaultValue::String(_), T::Text | T::Timestamptz) => None,
            (DefaultValue::String(s), T::Jsonb) => {
                match serde_json::from_str::<serde_json::Value>(s) {
                    Ok(_) => None,
                    Err(e) => Some((
                        format!("this jsonb default is not valid JSON ({e})"),
                        Some("write JSON inside single quotes, e.g. `default '{}'`".to_owned()),
                    )),
                }
            }
            (DefaultValue::String(s), T::Uuid) if !is_uuid(s) => Some((
                "this uuid default is not a UUID".to_owned(),
                Some("write `default gen_random_uuid()` or a quoted UUID".to_owned()),
            )),
            (DefaultValue::String(_), T::Uuid) => None,
            (DefaultValue::String(s), T::Date) if !is_date(s) => Some((
                "this date default is not a date".to_owned(),
                Some("write `'YYYY-MM-DD'` or `now()`".to_owned()),
            )),
            (DefaultValue::String(_), T::Date) => None,
            _ => {
                let suggestion = match ty {
                    T::Timestamptz | T::Date => Some("write `default now()`".to_owned()),
                    T::Uuid => Some("write `default gen_random_uuid()`".to_owned()),
                    T::Boolean => Some("write `default true` or `default false`".to_owned()),
                    T::Text => Some("quote the value: `default '...'`".to_owned()),
                    T::SmallInt | T::Integer | T::BigInt => {
                        Some("write an integer, e.g. `default 0`".to_owned())
                    }
                    T::Real | T::Double => Some("write a number, e.g. `default 0.5`".to_owned()),
                    T::Jsonb => {
                        Some("write JSON inside single quotes, e.g. `default '{}'`".to_owned())
                    }
                    T::Bytea | T::Vector(_) | T::Role => Some(format!(
                        "remove the default; `{type_name}` columns take none"
                    )),
                };
                Some((
                    format!("{} is not a `{type_name}`", describe_default(value)),
                    suggestion,
                ))
            }
        };
        if let Some((label, help)) = problem {
            let mut d = Diagnostic::error(
                format!(
                    "default value does not match the type of column `{}`",
                    column.name.name
                ),
                span,
                label,
            )
            .with_secondary(column.ty.span, format!("column has type `{type_name}`"));
            if let Some(help) = help {
                d = d.with_help(help);
            }
            self.error(d);
        }
    }

    /// Checks that every name in a column list exists in the table and none repeats.
    fn check_column_list(&mut self, info: &TableInfo<'a>, columns: &[Ident], what: &str) -> bool {
        let mut ok = true;
        let mut seen: HashSet<&str> = HashSet::new();
        let names = info.column_names();
        for column in columns {
            if !seen.insert(column.name.as_str()) {
                self.error(Diagnostic::error(
                    format!("column `{}` listed twice in {what}", column.name),
                    column.span,
                    "repeated here",
                ));
                ok = false;
            } else if info.column(&column.name).is_none() {
                self.unknown_column(&column.name, column.span, info.name(), &names);
                ok = false;
            }
        }
        ok
    }

    fn unknown_column(&mut self, name: &str, span: Span, table: &str, names: &[&str]) {
        let mut d = Diagnostic::error(
            format!("unknown column `{name}` in table `{table}`"),
            span,
            format!("`{table}` has no column `{name}`"),
        );
        if let Some(s) = suggest(name, names) {
            d = d.with_help(format!("did you mean `{s}`?"));
        }
        self.error(d);
    }

    /// Rule: key, index and foreign key columns exist; core tables declare no primary key;
    /// scoped and global tables declare exactly one; GIN indexes cover jsonb columns.
    fn check_keys(&mut self, info: &mut TableInfo<'a>) {
        let decl = info.decl;
        let mut pk_spans: Vec<Span> = Vec::new();
        for column in &decl.columns {
            if let Some(span) = column.primary_key {
                pk_spans.push(span);
                if info.primary_key.is_empty() {
                    info.primary_key = vec![column.name.name.clone()];
                }
            }
            if column.unique.is_some() {
                info.unique_keys.push(vec![column.name.name.clone()]);
            }
            if let Some(reference) = &column.references {
                info.foreign_keys.push(FkDecl {
                    columns: vec![&column.name],
                    reference,
                    span: column.name.span,
                });
            }
        }
        for constraint in &decl.constraints {
            match constraint {
                Constraint::PrimaryKey { span, columns } => {
                    pk_spans.push(*span);
                    if self.check_column_list(info, columns, "the primary key")
                        && info.primary_key.is_empty()
                    {
                        info.primary_key = names(columns);
                    }
                }
                Constraint::Unique { columns, .. } => {
                    if self.check_column_list(info, columns, "a unique key") {
                        let key = names(columns);
                        if !info.unique_keys.contains(&key) {
                            info.unique_keys.push(key);
                        }
                    }
                }
                Constraint::Index {
                    method, columns, ..
                } => {
                    if self.check_column_list(info, columns, "an index") {
                        if *method == IndexMethod::Gin {
                            self.check_gin_columns(info, columns);
                        }
                        info.indexes.push(Index {
                            columns: names(columns),
                            method: *method,
                        });
                    }
                }
                Constraint::ForeignKey {
                    span,
                    columns,
                    reference,
                } => {
                    if self.check_column_list(info, columns, "a foreign key") {
                        info.foreign_keys.push(FkDecl {
                            columns: columns.iter().collect(),
                            reference,
                            span: *span,
                        });
                    }
                }
            }
        }
        if info.kind.is_core() {
            for span in &pk_spans {
                self.error(
                    Diagnostic::error(
                        format!(
                            "the {} table `{}` cannot declare a primary key",
                            info.kind.keyword(),
                            info.name()
                        ),
                        *span,
                        "the generator fixes this table's key",
                    )
                    .with_note(format!("its key is `({})`", core_key(info.kind).join(", ")))
                    .with_help("remove it; declare `unique (...)` for other keys"),
                );
            }
            info.primary_key.clear();
            return;
        }
        if let Some((first, rest)) = pk_spans.split_first() {
            for extra in rest {
                self.error(
                    Diagnostic::error(
                        format!("table `{}` has more than one primary key", info.name()),
                        *extra,
                        "second primary key",
                    )
                    .with_secondary(*first, "first primary key")
                    .with_help("keep one; use `unique (...)` for the others"),
                );
            }
        } else {
            self.error(
                Diagnostic::error(
                    format!(
                        "{} table `{}` has no primary key",
                        info.kind.keyword(),
                        info.name()
                    ),
                    decl.name.span,
                    "no `primary key` in this table",
                )
                .with_help("add `id uuid default gen_random_uuid()` and `primary key (id)`"),
            );
        }
    }

    /// Rule: GIN indexes are only for jsonb columns (the default operator classes).
    fn check_gin_columns(&mut self, info: &TableInfo<'a>, columns: &[Ident]) {
        for column in columns {
            if let Some((Some(ty), _)) = info.column(&column.name) {
                if ty != SqlType::Jsonb {
                    self.error(
                        Diagnostic::error(
                            format!("GIN index on `{}` column `{}`", ty.dsl_name(), column.name),
                            column.span,
                            "GIN indexes need a jsonb column here",
                        )
                        .with_help("use a plain `index (...)` for this column"),
                    );
                }
            }
        }
    }

    /// Rule: rules name declared roles, at most one rule per command; global tables take
    /// `allow select` only, with no role; every other table names a role.
    fn check_rules(&mut self, info: &mut TableInfo<'a>) {
        let mut by_command: HashMap<Command, (Span, Option<&'a Ident>)> = HashMap::new();
        for rule in &info.decl.rules {
            self.check_rule_role(info, rule);
            for (spec, span) in &rule.commands {
                for command in spec.commands() {
                    if info.kind == TableKind::Global && command != Command::Select {
                        self.error(
                            Diagnostic::error(
                                format!("global table `{}` cannot allow `{command}`", info.name()),
                                *span,
                                "global tables are read-only for the application",
                            )
                            .with_note("a global table is shared by all tenants: a write by one tenant would change every tenant's data")
                            .with_help("write `allow select`; change global rows in migrations, as the owner role"),
                        );
                        continue;
                    }
                    if let Some((prev, _)) = by_command.get(&command) {
                        self.error(
                            Diagnostic::error(
                                format!(
                                    "duplicate rule for `{command}` on table `{}`",
                                    info.name()
                                ),
                                *span,
                                format!("`{command}` allowed again here"),
                            )
                            .with_secondary(*prev, "first allowed here")
                            .with_help(
                                "keep one rule per command: the lowest role that may run it",
                            ),
                        );
                        continue;
                    }
                    by_command.insert(command, (*span, rule.role.as_ref()));
                }
            }
        }
        info.rules = Command::ALL
            .iter()
            .filter_map(|c| by_command.get(c).map(|(_, role)| (*c, *role)))
            .collect();
    }

    /// The role part of one rule (see [`Checker::check_rules`]).
    fn check_rule_role(&mut self, info: &TableInfo<'a>, rule: &RuleDecl) {
        match (&rule.role, info.kind) {
            (Some(role), TableKind::Global) => {
                let commands: Vec<String> = rule
                    .commands
                    .iter()
                    .map(|(spec, _)| match spec {
                        super::ast::CommandSpec::One(c) => c.keyword().to_owned(),
                        super::ast::CommandSpec::All => "all".to_owned(),
                    })
                    .collect();
                self.error(
                    Diagnostic::error(
                        format!("a rule on global table `{}` names a role", info.name()),
                        role.span,
                        "global tables have no project, so no project role applies",
                    )
                    .with_help(format!(
                        "remove `to {}`: write `allow {}`",
                        role.name,
                        commands.join(", ")
                    )),
                );
            }
            (None, kind) if kind != TableKind::Global => {
                let lowest = self
                    .roles
                    .as_ref()
                    .and_then(|r| r.first().cloned())
                    .unwrap_or_else(|| "viewer".to_owned());
                self.error(
                    Diagnostic::error(
                        format!("rule on table `{}` names no role", info.name()),
                        rule.span,
                        "who may do this?",
                    )
                    .with_help(format!(
                        "name the lowest role allowed, e.g. `... to {lowest}`"
                    )),
                );
            }
            (Some(role), _) => {
                let Some(roles) = &self.roles else { return };
                if !roles.contains(&role.name) {
                    let mut d = Diagnostic::error(
                        format!("unknown role `{}`", role.name),
                        role.span,
                        "not declared in the `tenancy` block",
                    );
                    d = match suggest(&role.name, roles) {
                        Some(s) => d.with_help(format!("did you mean `{s}`?")),
                        None => d.with_help(format!("the roles are {}", roles.join(" < "))),
                    };
                    self.error(d);
                }
            }
            (None, _) => {}
        }
    }

    /// Warning: a tenant-owned table with no `select` rule can never be read.
    fn check_select_rule(&mut self, info: &TableInfo<'a>) {
        if info.kind.is_tenant_owned() && !info.rules.iter().any(|(c, _)| *c == Command::Select) {
            let lowest = self
                .roles
                .as_ref()
                .and_then(|r| r.first().cloned())
                .unwrap_or_else(|| "viewer".to_owned());
            self.diags.push(
                Diagnostic::warning(
                    format!("nobody can read table `{}`", info.name()),
                    info.decl.name.span,
                    "no `allow select` rule",
                )
                .with_note("commands without a rule are denied to every role")
                .with_help(format!(
                    "add `allow select to {lowest}` if members should read it"
                )),
            );
        }
    }

    // ---- foreign keys -------------------------------------------------------------------

    /// Rule: a foreign key targets an existing table and existing columns, of the same
    /// types, that form a declared key of the target; global tables reference only global
    /// tables; tenant-owned tables never reference the core tables (the generator links
    /// them); `on delete set null` needs nullable columns.
    fn check_foreign_key(
        &mut self,
        info: &TableInfo<'a>,
        fk: &FkDecl<'a>,
        by_name: &HashMap<&str, &TableInfo<'a>>,
    ) {
        let reference = fk.reference;
        let target_name = reference.table.name.as_str();
        let Some(target) = by_name.get(target_name).copied() else {
            if !self.tables.contains_key(target_name) {
                let names: Vec<&str> = self.tables.keys().copied().collect();
                let mut d = Diagnostic::error(
                    format!("unknown table `{target_name}`"),
                    reference.table.span,
                    "no table of this name",
                );
                if let Some(s) = suggest(target_name, &names) {
                    d = d.with_help(format!("did you mean `{s}`?"));
                }
                self.error(d);
            }
            return;
        };
        if info.kind == TableKind::Global && target.kind.is_tenant_owned() {
            self.error(
                Diagnostic::error(
                    format!(
                        "global table `{}` references tenant-owned table `{target_name}`",
                        info.name()
                    ),
                    reference.table.span,
                    format!("`{target_name}` is a {} table", target.kind.keyword()),
                )
                .with_note(
                    "a global row is visible to every tenant and cannot point at one tenant's rows",
                )
                .with_help(format!(
                    "make `{}` a scoped table, or move the reference to the tenant-owned side",
                    info.name()
                )),
            );
            return;
        }
        if target.kind.is_core() {
            let (message, help) = if info.kind == TableKind::Scoped
                && target.kind == TableKind::Projects
            {
                (
                    format!("scoped table `{}` references the projects table", info.name()),
                    "remove the reference: the generator adds `project_id` and its foreign key to `projects`".to_owned(),
                )
            } else {
                (
                    format!("table `{}` references the {} table `{target_name}`", info.name(), target.kind.keyword()),
                    "remove the reference: the generator links every tenant-owned row to its tenant and project".to_owned(),
                )
            };
            self.error(
                Diagnostic::error(
                    message,
                    reference.table.span,
                    "core tables are linked by the generator",
                )
                .with_help(help),
            );
            return;
        }
        if info.kind.is_core() && target.kind.is_tenant_owned() {
            self.error(
                Diagnostic::error(
                    format!(
                        "the {} table `{}` references scoped table `{target_name}`",
                        info.kind.keyword(),
                        info.name()
                    ),
                    reference.table.span,
                    "core tables may only reference global tables",
                )
                .with_help(format!(
                    "reference the core table from `{target_name}` instead"
                )),
            );
            return;
        }
        // Target columns: as written, or the target's declared primary key.
        let target_columns: Vec<(String, Span)> = match &reference.columns {
            Some(cols) => cols.iter().map(|c| (c.name.clone(), c.span)).collect(),
            None => {
                if target.primary_key.is_empty() {
                    return; // the target's missing key is reported on the target
                }
                target
                    .primary_key
                    .iter()
                    .map(|c| (c.clone(), reference.table.span))
                    .collect()
            }
        };
        let target_names = target.column_names();
        let mut resolved = true;
        for (name, span) in &target_columns {
            if target.column(name).is_none() {
                self.unknown_column(name, *span, target_name, &target_names);
                resolved = false;
            }
        }
        if !resolved {
            return;
        }
        if fk.columns.len() != target_columns.len() {
            self.error(
                Diagnostic::error(
                    format!(
                        "foreign key has {} column(s) but its target has {}",
                        fk.columns.len(),
                        target_columns.len()
                    ),
                    reference.span,
                    format!(
                        "targets `{target_name}({})`",
                        target_columns
                            .iter()
                            .map(|(n, _)| n.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ),
                )
                .with_secondary(fk.span, "referencing columns"),
            );
            return;
        }
        for (column, (target_column, target_span)) in fk.columns.iter().zip(&target_columns) {
            let own = info.column(&column.name);
            let other = target.column(target_column);
            if let (Some((Some(own_ty), _)), Some((Some(other_ty), _))) = (own, other) {
                if own_ty != other_ty {
                    self.error(
                        Diagnostic::error(
                            format!(
                                "foreign key column `{}` has type `{}` but `{target_name}.{target_column}` has type `{}`",
                                column.name,
                                own_ty.dsl_name(),
                                other_ty.dsl_name()
                            ),
                            column.span,
                            format!("`{}`", own_ty.dsl_name()),
                        )
                        .with_secondary(*target_span, format!("`{}`", other_ty.dsl_name()))
                        .with_help(format!("declare `{}` as `{}`", column.name, other_ty.dsl_name())),
                    );
                }
            }
        }
        let mut target_set: Vec<&str> = target_columns.iter().map(|(n, _)| n.as_str()).collect();
        target_set.sort_unstable();
        let is_key = target.keys().iter().any(|key| {
            let mut k: Vec<&str> = key.iter().map(String::as_str).collect();
            k.sort_unstable();
            k == target_set
        });
        if !is_key {
            let cols = target_columns
                .iter()
                .map(|(n, _)| n.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            let mut d = Diagnostic::error(
                format!(
                    "foreign key target `{target_name}({cols})` is not a key of `{target_name}`"
                ),
                reference.span,
                "neither the primary key nor a unique key",
            );
            if target.kind == TableKind::Scoped {
                d = d.with_note(format!(
                    "the generator builds the composite foreign key `(tenant_id, project_id, {cols})`, which needs `({cols})` to be unique in `{target_name}`"
                ));
            }
            d = d.with_help(format!(
                "reference `{target_name}({})` or declare `unique ({cols})` in `{target_name}`",
                target.primary_key.join(", ")
            ));
            self.error(d);
        }
        if let Some((OnDelete::SetNull, span)) = reference.on_delete {
            for column in &fk.columns {
                if let Some((ty, false)) = info.column(&column.name) {
                    let ty = ty.map_or_else(|| "uuid".to_owned(), SqlType::dsl_name);
                    self.error(
                        Diagnostic::error(
                            format!("`on delete set null` on NOT NULL column `{}`", column.name),
                            span,
                            "would set a NOT NULL column to NULL",
                        )
                        .with_secondary(column.span, "this column is NOT NULL")
                        .with_help(format!(
                            "make the column nullable (`{} {ty}?`) or use `on delete cascade`",
                            column.name
                        )),
                    );
                }
            }
        }
    }

    // ---- adoption -------------------------------------------------------------------

    /// Rule: at most one `adopt` block, naming `tenant` and `project` once each (not empty);
    /// a block is needed as soon as a table `adopts` an existing one, and a block without any
    /// `adopts` is only a warning. See [`Checker::check_adopting_table`] for the tables.
    fn check_adoption(&mut self, files: &[File], infos: &[TableInfo<'a>]) -> Option<Adoption> {
        let blocks: Vec<&AdoptBlock> = files.iter().flat_map(|f| f.adopt_blocks.iter()).collect();
        let adopting: Vec<&TableInfo<'a>> =
            infos.iter().filter(|i| i.decl.adopts.is_some()).collect();
        let Some(block) = blocks.first() else {
            if let Some((legacy, keyword)) = adopting.first().and_then(|i| i.decl.adopts.as_ref()) {
                let table = adopting.first().map_or("", |i| i.name());
                self.error(
                    Diagnostic::error(
                        format!(
                            "table `{table}` adopts `{}`, but no `adopt` block says where its rows go",
                            legacy.name
                        ),
                        keyword.to(legacy.span),
                        "adopted here",
                    )
                    .with_note("existing rows belong to no tenant yet: the migration gives them to one tenant and project")
                    .with_help(
                        "add to any policy file:\n\n    adopt {\n        tenant = \"default\"\n        project = \"default\"\n    }",
                    ),
                );
            }
            return None;
        };
        for extra in &blocks[1..] {
            self.error(
                Diagnostic::error(
                    "duplicate `adopt` block",
                    extra.span,
                    "second `adopt` block",
                )
                .with_secondary(block.span, "first declared here")
                .with_help("keep one `adopt` block"),
            );
        }
        let mut values: HashMap<&str, (String, Span)> = HashMap::new();
        for setting in &block.settings {
            let key = setting.key.name.as_str();
            if !ADOPT_SETTING_NAMES.contains(&key) {
                let mut d = Diagnostic::error(
                    format!("unknown `adopt` setting `{key}`"),
                    setting.key.span,
                    "not an `adopt` setting",
                );
                d = match suggest(key, &ADOPT_SETTING_NAMES) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help("the settings are `tenant` and `project`"),
                };
                self.error(d);
                continue;
            }
            if let Some((_, prev)) = values.get(key) {
                let prev = *prev;
                self.error(
                    Diagnostic::error(
                        format!("duplicate `adopt` setting `{key}`"),
                        setting.key.span,
                        "set again here",
                    )
                    .with_secondary(prev, "first set here"),
                );
                continue;
            }
            if setting.value.trim().is_empty() {
                self.error(
                    Diagnostic::error(
                        format!("the `{key}` of the `adopt` block is empty"),
                        setting.value_span,
                        "empty name",
                    )
                    .with_help(format!("name it, e.g. `{key} = \"default\"`")),
                );
            }
            values.insert(key, (setting.value.clone(), setting.key.span));
        }
        for key in ADOPT_SETTING_NAMES {
            if !values.contains_key(key) {
                self.error(
                    Diagnostic::error(
                        format!("the `adopt` block does not name the {key}"),
                        block.span,
                        format!("`{key}` missing in this block"),
                    )
                    .with_help(format!(
                        "add `{key} = \"default\"`: the {key} that receives the existing rows"
                    )),
                );
            }
        }
        if adopting.is_empty() {
            self.diags.push(
                Diagnostic::warning(
                    "`adopt` block, but no table adopts an existing one",
                    block.span,
                    "this block has no effect",
                )
                .with_help("add `adopts <existing table>` to a scoped table, or remove the block"),
            );
            return None;
        }
        self.check_default_rows(block.span, infos);
        let by_name: HashMap<&str, &TableInfo<'a>> = infos.iter().map(|t| (t.name(), t)).collect();
        let mut legacy_names: HashMap<&str, Span> = HashMap::new();
        let mut tables = Vec::new();
        for info in adopting {
            if let Some(adopted) = self.check_adopting_table(info, &by_name, &mut legacy_names) {
                tables.push(adopted);
            }
        }
        let name = |key: &str| values.get(key).map(|(v, _)| v.clone()).unwrap_or_default();
        Some(Adoption {
            tenant: name("tenant"),
            project: name("project"),
            tables,
        })
    }

    /// Rule: only scoped tables adopt; the existing table's name is a valid SQL name, is
    /// adopted by one table only and is not the name of another table of the model; the
    /// table has a single-column primary key (the backfill walks the rows in key order);
    /// its foreign keys point at the core or at other adopted tables (the adopted tables
    /// get their keys together, before any new table is created).
    fn check_adopting_table(
        &mut self,
        info: &TableInfo<'a>,
        by_name: &HashMap<&str, &TableInfo<'a>>,
        legacy_names: &mut HashMap<&'a str, Span>,
    ) -> Option<AdoptedTable> {
        let (legacy, keyword) = info.decl.adopts.as_ref()?;
        let table = info.name();
        let mut ok = true;
        if info.kind != TableKind::Scoped {
            self.error(
                Diagnostic::error(
                    format!(
                        "only scoped tables can adopt an existing table; `{table}` is a {} table",
                        info.kind.keyword()
                    ),
                    keyword.to(legacy.span),
                    "not allowed here",
                )
                .with_note("the tenancy core is created from scratch; the default tenant and project rows are inserted by the migration")
                .with_help("remove `adopts` here, or declare the table `scoped`"),
            );
            ok = false;
        }
        ok &= self.check_identifier(&legacy.name, legacy.span, "table");
        if let Some(prev) = legacy_names.insert(legacy.name.as_str(), legacy.span) {
            self.error(
                Diagnostic::error(
                    format!("existing table `{}` is adopted twice", legacy.name),
                    legacy.span,
                    "adopted again here",
                )
                .with_secondary(prev, "first adopted here")
                .with_help("each existing table becomes exactly one table of the model"),
            );
            ok = false;
        }
        if legacy.name != table && by_name.contains_key(legacy.name.as_str()) {
            self.error(
                Diagnostic::error(
                    format!(
                        "`{table}` adopts `{}`, which is the name of another table of the model",
                        legacy.name
                    ),
                    legacy.span,
                    "already a table of the model",
                )
                .with_help("an adopted table is renamed to the table that adopts it; rename one of the two"),
            );
            ok = false;
        }
        if info.kind == TableKind::Scoped && info.primary_key.len() != 1 {
            self.error(
                Diagnostic::error(
                    format!(
                        "adopted table `{table}` needs a single-column primary key, not ({})",
                        info.primary_key.join(", ")
                    ),
                    keyword.to(legacy.span),
                    "adopted here",
                )
                .with_note("the backfill walks the existing rows in batches, in primary key order")
                .with_help(
                    "declare the existing table's single-column key, e.g. `primary key (id)`",
                ),
            );
            ok = false;
        }
        for fk in &info.foreign_keys {
            let target = fk.reference.table.name.as_str();
            let Some(parent) = by_name.get(target) else {
                continue; // unknown table, already reported
            };
            if !parent.kind.is_core() && parent.decl.adopts.is_none() {
                self.error(
                    Diagnostic::error(
                        format!(
                            "adopted table `{table}` references `{target}`, which adopts no existing table"
                        ),
                        fk.span,
                        "this foreign key",
                    )
                    .with_note("adopted tables get their composite keys together, before any new table is created")
                    .with_help(format!(
                        "add `adopts <existing table>` to `{target}`, or remove this reference"
                    )),
                );
                ok = false;
            }
        }
        ok.then(|| AdoptedTable {
            table: table.to_owned(),
            legacy_table: legacy.name.clone(),
        })
    }

    /// Rule: the migration inserts one tenants row and one projects row for the existing
    /// rows, writing the `adopt` names into their required text columns; any other
    /// required column (NOT NULL, no default, not text) cannot be filled.
    fn check_default_rows(&mut self, block_span: Span, infos: &[TableInfo<'a>]) {
        for info in infos
            .iter()
            .filter(|i| matches!(i.kind, TableKind::Tenants | TableKind::Projects))
        {
            for (column, ty) in &info.columns {
                let required = !column.nullable && column.default.is_none();
                if required && ty.is_some_and(|t| t != SqlType::Text) {
                    let type_name = ty.map(SqlType::dsl_name).unwrap_or_default();
                    self.error(
                        Diagnostic::error(
                            format!(
                                "the adoption cannot create the default {} row: column `{}` of `{}` needs a value",
                                if info.kind == TableKind::Tenants { "tenant" } else { "project" },
                                column.name.name,
                                info.name()
                            ),
                            column.name.span,
                            format!("required {type_name} column without a default"),
                        )
                        .with_secondary(block_span, "the adoption that needs the row")
                        .with_note("required text columns get the name from the `adopt` block; other columns need a default")
                        .with_help(format!(
                            "give `{}` a default or make it nullable (`{type_name}?`)",
                            column.name.name
                        )),
                    );
                }
            }
        }
    }

    /// Rule: references between tables form no cycle; a table may reference itself.
    fn check_reference_cycles(&mut self, infos: &[TableInfo<'a>]) {
        let index: HashMap<&str, usize> = infos
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name(), i))
            .collect();
        let edges: Vec<Vec<(usize, Span)>> = infos
            .iter()
            .map(|t| {
                t.foreign_keys
                    .iter()
                    .filter_map(|fk| {
                        let target = index.get(fk.reference.table.name.as_str()).copied()?;
                        (target != index[t.name()]).then_some((target, fk.reference.table.span))
                    })
                    .collect()
            })
            .collect();
        // 0 = unvisited, 1 = on the stack, 2 = done.
        let mut state = vec![0u8; infos.len()];
        let mut stack: Vec<usize> = Vec::new();
        let mut reported: HashSet<Vec<usize>> = HashSet::new();
        for start in 0..infos.len() {
            self.cycle_dfs(start, infos, &edges, &mut state, &mut stack, &mut reported);
        }
    }

    fn cycle_dfs(
        &mut self,
        node: usize,
        infos: &[TableInfo<'a>],
        edges: &[Vec<(usize, Span)>],
        state: &mut [u8],
        stack: &mut Vec<usize>,
        reported: &mut HashSet<Vec<usize>>,
    ) {
        if state[node] != 0 {
            return;
        }
        state[node] = 1;
        stack.push(node);
        for &(next, span) in &edges[node] {
            if state[next] == 1 {
                let from = stack.iter().position(|&n| n == next).unwrap_or(0);
                let cycle: Vec<usize> = stack[from..].to_vec();
                let mut key = cycle.clone();
                key.sort_unstable();
                if reported.insert(key) {
                    let path: Vec<&str> = cycle
                        .iter()
                        .chain(std::iter::once(&next))
                        .map(|&i| infos[i].name())
                        .collect();
                    let mut d = Diagnostic::error(
                        format!("reference cycle: {}", path.join(" -> ")),
                        span,
                        "this reference closes the cycle",
                    );
                    for pair in cycle.windows(2) {
                        if let Some((_, other)) = edges[pair[0]].iter().find(|(t, _)| *t == pair[1])
                        {
                            d = d.with_secondary(*other, "part of the cycle");
                        }
                    }
                    self.error(
                        d.with_note("only a table referencing itself may form a cycle")
                            .with_help("remove one of the references"),
                    );
                }
            } else {
                self.cycle_dfs(next, infos, edges, state, stack, reported);
            }
        }
        stack.pop();
        state[node] = 2;
    }
}

/// The key the generator gives a core table (for messages).
fn core_key(kind: TableKind) -> Vec<&'static str> {
    match kind {
        TableKind::Tenants => vec!["id"],
        TableKind::Projects => vec!["tenant_id", "id"],
        _ => vec!["tenant_id", "project_id", "user_id"],
    }
}

fn names(idents: &[Ident]) -> Vec<String> {
    idents.iter().map(|i| i.name.clone()).collect()
}

/// `'xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx'` (hex digits, any case).
fn is_uuid(s: &str) -> bool {
    let groups: Vec<&str> = s.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// `'YYYY-MM-DD'` with plausible month and day numbers.
fn is_date(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    if parts.len() != 3
        || parts
            .iter()
            .zip([4, 2, 2])
            .any(|(p, n)| p.len() != n || !p.bytes().all(|b| b.is_ascii_digit()))
    {
        return false;
    }
    let month: u32 = parts[1].parse().unwrap_or(0);
    let day: u32 = parts[2].parse().unwrap_or(0);
    (1..=12).contains(&month) && (1..=31).contains(&day)
}

fn describe_default(value: &DefaultValue) -> String {
    match value {
        DefaultValue::String(_) => "a string".to_owned(),
        DefaultValue::Integer(v) => format!("`{v}`"),
        DefaultValue::Decimal(v) => format!("`{v}`"),
        DefaultValue::Bool(v) => format!("`{v}`"),
        DefaultValue::Now => "`now()`".to_owned(),
        DefaultValue::GenRandomUuid => "`gen_random_uuid()`".to_owned(),
    }
}

/// Builds the model table from a checked [`TableInfo`] (only called without errors).
fn build_table(info: &TableInfo<'_>, roles: &[String]) -> Table {
    let lowest = roles.first().cloned().unwrap_or_default();
    Table {
        name: info.name().to_owned(),
        kind: info.kind,
        doc: info.decl.doc.clone(),
        columns: info
            .columns
            .iter()
            .filter_map(|(c, ty)| {
                Some(Column {
                    name: c.name.name.clone(),
                    ty: (*ty)?,
                    nullable: c.nullable,
                    default: c.default.as_ref().map(|d| d.value.clone()),
                    doc: c.doc.clone(),
                })
            })
            .collect(),
        primary_key: info.primary_key.clone(),
        unique_keys: info.unique_keys.clone(),
        foreign_keys: info
            .foreign_keys
            .iter()
            .map(|fk| ForeignKey {
                columns: fk.columns.iter().map(|c| c.name.clone()).collect(),
                table: fk.reference.table.name.clone(),
                target_columns: match &fk.reference.columns {
                    Some(cols) => names(cols),
                    // Filled from the target's primary key once every table is built.
                    None => Vec::new(),
                },
                on_delete: fk.reference.on_delete.map(|(a, _)| a).unwrap_or_default(),
            })
            .collect(),
        indexes: info.indexes.clone(),
        rules: info
            .rules
            .iter()
            .map(|(command, role)| Rule {
                command: *command,
                min_role: role.map_or_else(|| lowest.clone(), |r| r.name.clone()),
            })
            .collect(),
    }
}
