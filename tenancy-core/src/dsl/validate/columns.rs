//! Tables and their columns: names, types, defaults, column lists.

use super::*;

/// True for a character a doc comment may not hold: control characters other than tab and
/// newline (a carriage return ends the `--` comment a doc becomes in the generated SQL, so the
/// rest of the line would run at migrate time), line separators and the bidirectional
/// overrides that make a reviewer read something other than what runs.
pub(crate) fn forbidden_in_doc(c: char) -> bool {
    (c.is_control() && c != '\t' && c != '\n')
        || matches!(c, '\u{2028}' | '\u{2029}' | '\u{200e}' | '\u{200f}')
        || ('\u{202a}'..='\u{202e}').contains(&c)
        || ('\u{2066}'..='\u{2069}').contains(&c)
}

impl<'a> Checker<'_, 'a> {
    /// Doc comments are plain text: every forbidden character ([`forbidden_in_doc`]) is an
    /// error at the name the doc belongs to.
    fn check_docs(&mut self, decl: &TableDecl) {
        let docs = std::iter::once((decl.doc.as_deref(), &decl.name)).chain(
            decl.columns
                .iter()
                .map(|column| (column.doc.as_deref(), &column.name)),
        );
        for (doc, name) in docs {
            let Some(found) = doc.and_then(|doc| doc.chars().find(|c| forbidden_in_doc(*c))) else {
                continue;
            };
            self.diags.push(
                Diagnostic::error(
                    format!(
                        "the doc comment of `{}` contains the character `{}`",
                        name.name,
                        found.escape_unicode()
                    ),
                    name.span,
                    "documented above",
                )
                .with_help(
                    "doc comments are plain text: remove it (a carriage return would end the SQL \
                     comment the doc becomes, and direction overrides hide text from reviewers)",
                ),
            );
        }
    }

    /// Checks one table's own items and resolves them into a [`TableInfo`].
    pub(super) fn check_table(&mut self, decl: &'a TableDecl, kind: TableKind) -> TableInfo<'a> {
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
            stamps: HashMap::new(),
        };
        self.check_docs(decl);
        self.check_columns(&mut info);
        self.check_keys(&mut info);
        self.check_rules(&mut info);
        info
    }

    /// Rule: column names are valid, unique, and do not collide with the generated
    /// columns; types exist; defaults match their column's type.
    pub(super) fn check_columns(&mut self, info: &mut TableInfo<'a>) {
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
            if let Some(distance) = &column.distance {
                self.check_distance(column, ty, distance);
            }
            if let Some(span) = column.per_tenant {
                self.check_per_tenant(info.kind, column, ty, span);
            }
            if let Some(stamp) = &column.stamp {
                if let Some(stamp) = self.check_stamp(info.kind, column, ty, stamp) {
                    info.stamps.insert(name, stamp);
                }
            }
            info.columns.push((column, ty));
        }
    }

    /// Rule: `distance` is written on a `vector(N)` column only and names one of
    /// `cosine`, `l2`, `inner_product`.
    fn check_distance(&mut self, column: &ColumnDecl, ty: Option<SqlType>, distance: &Ident) {
        let names: Vec<&str> = VectorDistance::ALL.iter().map(|(n, _)| *n).collect();
        if VectorDistance::from_dsl(&distance.name).is_none() {
            let mut d = Diagnostic::error(
                format!("unknown distance `{}`", distance.name),
                distance.span,
                "not a distance",
            );
            d = match suggest(&distance.name, &names) {
                Some(s) => d.with_help(format!("did you mean `{s}`?")),
                None => d.with_help("the distances are `cosine`, `l2` and `inner_product`"),
            };
            self.error(d);
            return;
        }
        if ty.is_some_and(|ty| !matches!(ty, SqlType::Vector(_))) {
            self.error(
                Diagnostic::error(
                    format!(
                        "`distance` is only for vector columns, and `{}` is not one",
                        column.name.name
                    ),
                    distance.span,
                    "on a column that is not `vector(N)`",
                )
                .with_help("remove `distance`, or make the column a `vector(N)`"),
            );
        }
    }

    /// Rule: `per tenant` is written on a `vector(N)` column of a scoped table only (the
    /// tenant's choice of embedding model needs rows that belong to a tenant).
    fn check_per_tenant(
        &mut self,
        kind: TableKind,
        column: &ColumnDecl,
        ty: Option<SqlType>,
        span: Span,
    ) {
        if ty.is_some_and(|ty| !matches!(ty, SqlType::Vector(_))) {
            self.error(
                Diagnostic::error(
                    format!(
                        "`per tenant` is only for vector columns, and `{}` is not one",
                        column.name.name
                    ),
                    span,
                    "on a column that is not `vector(N)`",
                )
                .with_note("`per tenant` lets each tenant choose the model its vectors come from, and so their dimension")
                .with_help("remove `per tenant`, or make the column a `vector(N)`"),
            );
        } else if kind != TableKind::Scoped {
            self.error(
                Diagnostic::error(
                    format!(
                        "`per tenant` needs a scoped table, and `{}` is a {} table",
                        column.name.name,
                        kind.keyword()
                    ),
                    span,
                    "the rows of this table belong to no tenant",
                )
                .with_help(
                    "remove `per tenant` (every row then has the column's dimension), or move \
                     the column to a scoped table",
                ),
            );
        }
    }

    /// Rule: a table may not declare a column the generator adds. For scoped tables this is
    /// `tenant_id`/`project_id`; core tables also have fixed key columns.
    pub(super) fn check_generated_collision(&mut self, info: &TableInfo<'a>, column: &ColumnDecl) {
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
    pub(super) fn resolve_type(&mut self, ty: &TypeExpr) -> Option<SqlType> {
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
    pub(super) fn check_default(
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
        let problem = problem.or_else(|| super::defaults::value_problem(value, ty));
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
    pub(super) fn check_column_list(
        &mut self,
        info: &TableInfo<'a>,
        columns: &[Ident],
        what: &str,
    ) -> bool {
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

    pub(super) fn unknown_column(&mut self, name: &str, span: Span, table: &str, names: &[&str]) {
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
}
