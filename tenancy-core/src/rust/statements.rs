//! The SQL text of every generated repository method.
//!
//! Parameter order is fixed and shared with the Rust side ([`super::repository`]):
//! scope parameters first (`$1` tenant; `$2` the project list for reads or the write scope's
//! project for writes), then the key, then the method's own values.

use crate::model::{Column, SqlType};

use super::naming::sql_ident;
use super::shape::Shape;
use super::types::{default_sql, qualified_type_sql, sql_array_type};

/// A running `$n` counter.
struct Params(usize);

impl Params {
    fn next(&mut self) -> String {
        self.0 += 1;
        format!("${}", self.0)
    }
}

impl Shape<'_> {
    /// The table, schema-qualified: a `search_path` changed inside the transaction cannot
    /// redirect a generated statement to another schema's same-named relation.
    fn table_sql(&self) -> String {
        format!(
            "{}.{}",
            sql_ident(crate::model::TABLE_SCHEMA),
            sql_ident(&self.table.name)
        )
    }

    /// The relation reads come from: the table, or the masked view for a read tier.
    fn read_relation_sql(&self) -> String {
        match &self.tier {
            Some(tier) => tier.view_sql.clone(),
            None => self.table_sql(),
        }
    }

    fn role_type_sql(&self) -> String {
        qualified_type_sql(SqlType::Role, &self.model.settings.helper_schema)
    }

    /// Every column, the role enum as `role(name)`.
    fn column_list(&self, role: impl Fn(&str) -> String) -> String {
        self.columns
            .iter()
            .map(|c| {
                let name = sql_ident(&c.name);
                if c.ty == SqlType::Role {
                    role(&name)
                } else {
                    name
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `CASE WHEN .. WHEN .. END` with one `arm(label)` per role of the model (`label` a
    /// quoted literal).
    fn role_case(&self, arm: impl Fn(&str) -> String) -> String {
        let arms: Vec<String> = self
            .model
            .roles
            .iter()
            .map(|role| arm(&format!("'{}'", role.replace('\'', "''"))))
            .collect();
        format!("CASE {} END", arms.join(" "))
    }

    /// The SELECT list: every column, the role enum read as text.
    fn select_list(&self) -> String {
        self.column_list(|name| format!("{name}::pg_catalog.text AS {name}"))
    }

    /// The RETURNING list of a write: every column, the role enum read as text through a
    /// searched `CASE` over the model's roles instead of a cast. The cast (`role::text`) calls
    /// the enum's output function, which is STABLE, and Citus refuses non-IMMUTABLE functions
    /// in the RETURNING clause of a distributed table; comparing with an enum constant is
    /// IMMUTABLE. Same rows and text on PostgreSQL; a value the model does not know (an enum
    /// label added without regenerating) reads as NULL and fails to decode, never as another
    /// role.
    fn returning_list(&self) -> String {
        let role_type = self.role_type_sql();
        self.column_list(|name| {
            let case = self.role_case(|label| {
                format!("WHEN {name} = {label}::{role_type} THEN {label}::pg_catalog.text")
            });
            format!("{case} AS {name}")
        })
    }

    /// A role bound as text, turned into the role enum by comparing it with each of the
    /// model's labels: `CASE WHEN $n::text = 'viewer' THEN 'viewer'::role ... END`. Inside the
    /// update's `CASE` the plain cast (`$n::role`, the enum's STABLE input function) is refused
    /// by Citus ("non-IMMUTABLE functions are not allowed in CASE or COALESCE statements");
    /// this form is IMMUTABLE. A label the model does not know gives NULL, which the NOT NULL
    /// role column refuses: it never becomes another role.
    fn role_value_sql(&self, param: &str) -> String {
        let role_type = self.role_type_sql();
        let case = self.role_case(|label| {
            format!("WHEN {param}::pg_catalog.text = {label} THEN {label}::{role_type}")
        });
        format!("({case})")
    }

    /// A bound value for `column`, cast to the role enum when needed.
    fn value_sql(&self, column: &Column, param: &str) -> String {
        if column.ty == SqlType::Role {
            format!("{param}::{}", self.role_type_sql())
        } else {
            param.to_owned()
        }
    }

    /// `tenant_id = $1 AND project_id = ANY($2)`: the rows of the read scope.
    fn read_scope_sql(&self, params: &mut Params) -> String {
        let mut sql = format!("{} = {}", sql_ident(self.tenant_column), params.next());
        if let Some(project) = self.project_column {
            sql.push_str(&format!(
                " AND {} = ANY({})",
                sql_ident(project),
                params.next()
            ));
        }
        sql
    }

    /// `tenant_id = $1 AND project_id = $2`: the rows of the write scope's project.
    fn write_scope_sql(&self, params: &mut Params) -> String {
        let mut sql = format!("{} = {}", sql_ident(self.tenant_column), params.next());
        if let Some(project) = self.project_column {
            sql.push_str(&format!(" AND {} = {}", sql_ident(project), params.next()));
        }
        sql
    }

    fn key_sql(&self, key: &[Column], params: &mut Params) -> String {
        key.iter()
            .map(|c| {
                format!(
                    " AND {} = {}",
                    sql_ident(&c.name),
                    self.value_sql(c, &params.next())
                )
            })
            .collect()
    }

    fn order_sql(&self) -> String {
        self.cursor
            .iter()
            .map(|c| sql_ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// `get`: one row by key within the read scope. Ordered so that a key present in several
    /// of the scope's projects always yields the row of the lowest project id.
    pub(crate) fn get_sql(&self) -> String {
        let mut params = Params(0);
        let scope = self.read_scope_sql(&mut params);
        let key = self.key_sql(&self.read_key, &mut params);
        let order = if self.has_list() {
            format!(" ORDER BY {}", self.order_sql())
        } else {
            String::new()
        };
        format!(
            "SELECT {} FROM {} WHERE {scope}{key}{order} LIMIT 1",
            self.select_list(),
            self.read_relation_sql()
        )
    }

    /// `get` for a read scope of exactly one project: the project is `= $2`, not `= ANY($2)`.
    /// An array parameter makes PostgreSQL cost the generic plan for a guessed 10-element array,
    /// so it keeps re-planning the statement (with row-level security: the policies too) on
    /// every execution; with a scalar the cached generic plan is as cheap as a custom one and is
    /// reused. `None` for tables without a project column.
    pub(crate) fn get_in_project_sql(&self) -> Option<String> {
        self.project_column?;
        let mut params = Params(0);
        let scope = self.write_scope_sql(&mut params);
        let key = self.key_sql(&self.read_key, &mut params);
        Some(format!(
            "SELECT {} FROM {} WHERE {scope}{key} LIMIT 1",
            self.select_list(),
            self.read_relation_sql()
        ))
    }

    /// The type a parameter is cast to where PostgreSQL cannot infer it (`$n IS NULL`).
    fn param_type_sql(&self, column: &Column) -> String {
        match column.ty {
            SqlType::Role => qualified_type_sql(SqlType::Text, &self.model.settings.helper_schema),
            other => qualified_type_sql(other, &self.model.settings.helper_schema),
        }
    }

    fn filter_sql(&self, params: &mut Params) -> String {
        self.filter_columns
            .iter()
            .map(|c| {
                let param = params.next();
                format!(
                    " AND ({param}::{} IS NULL OR {} = {})",
                    self.param_type_sql(c),
                    sql_ident(&c.name),
                    self.value_sql(c, &param)
                )
            })
            .collect()
    }

    /// `list`, first page: a filtered page in key order.
    pub(crate) fn list_sql(&self) -> String {
        let mut params = Params(0);
        let scope = self.read_scope_sql(&mut params);
        let filters = self.filter_sql(&mut params);
        let limit = params.next();
        format!(
            "SELECT {} FROM {} WHERE {scope}{filters} ORDER BY {} LIMIT {limit}",
            self.select_list(),
            self.read_relation_sql(),
            self.order_sql(),
        )
    }

    /// `list`, a later page: the rows after the cursor. A one-project scope uses
    /// [`Self::list_after_in_project_sql`]. For a key order led by the project column (any
    /// scope), two branches that each start a btree scan at their first row, merged:
    /// the rest of the cursor's project (`project_id = $c AND id > $k`) and the first rows of
    /// the scope's later projects (`project_id > $c`), each limited to a page, then the page
    /// of their union. PostgreSQL positions a scan on a row comparison
    /// `(project_id, id) > (..)` next to the scope's `project_id = ANY (..)` only by the
    /// project, so that form walked the cursor's project from its start (BENCHMARKS.md,
    /// "Keyset pages"). Other key orders keep the row comparison (an index condition).
    pub(crate) fn list_after_sql(&self) -> String {
        let mut params = Params(0);
        let scope = self.read_scope_sql(&mut params);
        let filters = self.filter_sql(&mut params);
        let after: Vec<String> = self
            .cursor
            .iter()
            .map(|c| format!("{}::{}", params.next(), self.param_type_sql(c)))
            .collect();
        let limit = params.next();
        let select = |condition: &str| {
            format!(
                "SELECT {} FROM {} WHERE {scope}{filters} AND {condition} ORDER BY {} LIMIT {limit}",
                self.select_list(),
                self.read_relation_sql(),
                self.order_sql(),
            )
        };
        if !self.has_list_after_in_project() {
            return select(&format!("({}) > ({})", self.order_sql(), after.join(", ")));
        }
        let project = sql_ident(&self.cursor[0].name);
        let rest: Vec<String> = self.cursor[1..]
            .iter()
            .map(|c| sql_ident(&c.name))
            .collect();
        let rest_after = &after[1..];
        let in_project = if rest.len() == 1 {
            format!(
                "{project} = {} AND {} > {}",
                after[0], rest[0], rest_after[0]
            )
        } else {
            format!(
                "{project} = {} AND ({}) > ({})",
                after[0],
                rest.join(", "),
                rest_after.join(", ")
            )
        };
        let later = format!("{project} > {}", after[0]);
        format!(
            "SELECT * FROM (({}) UNION ALL ({})) AS page ORDER BY {} LIMIT {limit}",
            select(&in_project),
            select(&later),
            self.order_sql(),
        )
    }

    /// True when a later page within one project can seek: a project-owned table whose key
    /// order is the project column, then at least one key column.
    pub(crate) fn has_list_after_in_project(&self) -> bool {
        match (self.project_column, self.cursor.first()) {
            (Some(project), Some(first)) => first.name == project && self.cursor.len() > 1,
            _ => false,
        }
    }

    /// `list`, a later page of a one-project scope whose cursor is in that project: the
    /// project is `= $2` and the cursor's key columns follow it as a range (`id > $n`).
    /// PostgreSQL positions a btree scan on a row comparison only for its first column, so
    /// `(project_id, id) > (..)` next to `project_id = ..` still walks the project from its
    /// start; with the project an equality, `id > $n` starts the scan at the cursor.
    pub(crate) fn list_after_in_project_sql(&self) -> Option<String> {
        if !self.has_list_after_in_project() {
            return None;
        }
        let mut params = Params(0);
        let scope = self.write_scope_sql(&mut params);
        let filters = self.filter_sql(&mut params);
        let rest = &self.cursor[1..];
        let names: Vec<String> = rest.iter().map(|c| sql_ident(&c.name)).collect();
        let values: Vec<String> = rest
            .iter()
            .map(|c| format!("{}::{}", params.next(), self.param_type_sql(c)))
            .collect();
        let range = if rest.len() == 1 {
            format!("{} > {}", names.join(""), values.join(""))
        } else {
            format!("({}) > ({})", names.join(", "), values.join(", "))
        };
        let limit = params.next();
        Some(format!(
            "SELECT {} FROM {} WHERE {scope}{filters} AND {range} ORDER BY {} LIMIT {limit}",
            self.select_list(),
            self.read_relation_sql(),
            self.order_sql(),
        ))
    }

    /// `count`: the number of rows matching the filter.
    pub(crate) fn count_sql(&self) -> String {
        let mut params = Params(0);
        let scope = self.read_scope_sql(&mut params);
        let filters = self.filter_sql(&mut params);
        format!(
            "SELECT pg_catalog.count(*) FROM {} WHERE {scope}{filters}",
            self.read_relation_sql()
        )
    }

    fn insert_columns_sql(&self) -> String {
        let mut names: Vec<String> = vec![sql_ident(self.tenant_column)];
        names.extend(self.project_column.map(sql_ident));
        names.extend(self.new_columns.iter().map(|c| sql_ident(&c.name)));
        names.join(", ")
    }

    /// The inserted expression of a column: its value, or the default when the value is NULL.
    fn with_default(&self, column: &Column, value: String) -> String {
        match &column.default {
            Some(default) => format!("COALESCE({value}, {})", default_sql(default)),
            None => value,
        }
    }

    /// `insert`: one row into the write scope's project.
    pub(crate) fn insert_sql(&self) -> String {
        let mut params = Params(0);
        let mut values: Vec<String> = vec![params.next()];
        if self.project_column.is_some() {
            values.push(params.next());
        }
        for column in &self.new_columns {
            let param = params.next();
            let value = match (&column.default, column.ty) {
                // typed, so `COALESCE($n, '{}')` does not resolve to text without bind types
                (Some(_), ty) if ty != SqlType::Role => {
                    format!("{param}::{}", self.param_type_sql(column))
                }
                _ => self.value_sql(column, &param),
            };
            values.push(self.with_default(column, value));
        }
        format!(
            "INSERT INTO {} ({}) VALUES ({}) RETURNING {}",
            self.table_sql(),
            self.insert_columns_sql(),
            values.join(", "),
            self.returning_list()
        )
    }

    /// `insert_many`: every row in one statement, the columns sent as arrays and unnested
    /// (`COPY` is refused on tables with row-level security).
    pub(crate) fn insert_many_sql(&self) -> String {
        let mut params = Params(0);
        let mut values: Vec<String> = vec![params.next()];
        if self.project_column.is_some() {
            values.push(params.next());
        }
        let mut arrays = Vec::new();
        let mut aliases = Vec::new();
        let schema = &self.model.settings.helper_schema;
        for column in &self.new_columns {
            let name = sql_ident(&column.name);
            arrays.push(format!(
                "{}::{}",
                params.next(),
                sql_array_type(column.ty, schema)
            ));
            let value = self.value_sql(column, &format!("u.{name}"));
            values.push(self.with_default(column, value));
            aliases.push(name);
        }
        // `unnest` stays unqualified: with several arrays it is the grammar's `ROWS FROM`
        // shorthand, not a function call, and `pg_catalog.unnest(a, b)` does not exist.
        format!(
            "INSERT INTO {} ({}) SELECT {} FROM unnest({}) AS u({}) RETURNING {}",
            self.table_sql(),
            self.insert_columns_sql(),
            values.join(", "),
            arrays.join(", "),
            aliases.join(", "),
            self.returning_list()
        )
    }

    /// `update`: `SET col = CASE WHEN $flag THEN $value ELSE col END` for every patch column
    /// but the masked ones, so one static statement serves every patch (a masked column
    /// cannot be named on the right-hand side: [`Self::set_masked_sql`]).
    pub(crate) fn update_sql(&self, columns: &[Column]) -> String {
        let mut params = Params(0);
        let scope = self.write_scope_sql(&mut params);
        let key = self.key_sql(&self.write_key, &mut params);
        let sets: Vec<String> = columns
            .iter()
            .filter(|c| !self.is_masked(c))
            .map(|c| {
                let name = sql_ident(&c.name);
                let flag = params.next();
                let value = if c.ty == SqlType::Role {
                    self.role_value_sql(&params.next())
                } else {
                    self.value_sql(c, &params.next())
                };
                format!("{name} = CASE WHEN {flag} THEN {value} ELSE {name} END")
            })
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {scope}{key} RETURNING {}",
            self.table_sql(),
            sets.join(", "),
            self.returning_list()
        )
    }

    /// The update of one masked column: `SET col = $n` (the app role may write it but not
    /// read it, so the `CASE .. ELSE col` of [`Self::update_sql`] is not possible), run
    /// before the main update when the patch sets it.
    pub(crate) fn set_masked_sql(&self, column: &Column) -> String {
        let mut params = Params(0);
        let scope = self.write_scope_sql(&mut params);
        let key = self.key_sql(&self.write_key, &mut params);
        let value = self.value_sql(column, &params.next());
        format!(
            "UPDATE {} SET {} = {value} WHERE {scope}{key}",
            self.table_sql(),
            sql_ident(&column.name)
        )
    }

    /// `delete`: one row of the write scope's project.
    pub(crate) fn delete_sql(&self) -> String {
        let mut params = Params(0);
        let scope = self.write_scope_sql(&mut params);
        let key = self.key_sql(&self.write_key, &mut params);
        format!("DELETE FROM {} WHERE {scope}{key}", self.table_sql())
    }
}
