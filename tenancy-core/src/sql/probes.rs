//! The defaults of a model as queries PostgreSQL can parse: `tenancy check --database-url`
//! runs each in a rolled-back transaction, so a default the static checks let through
//! (`dsl::validate::defaults`) is still refused before a migration would be.

use super::ident::ident;
use crate::model::{Model, SqlType};

/// One column default, as the migration writes it, with the query that makes PostgreSQL
/// parse it as a value of the column's type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DefaultProbe {
    /// The table.
    pub table: String,
    /// The column.
    pub column: String,
    /// The default, in SQL (as in `DEFAULT ...`).
    pub default_sql: String,
    /// The column's SQL type.
    pub type_sql: String,
}

impl DefaultProbe {
    /// `SELECT (<default>)::<type>`: parses and evaluates the default as the column's type.
    pub fn query(&self) -> String {
        format!("SELECT ({})::{}", self.default_sql, self.type_sql)
    }
}

/// Every column default of `model`, in table and column order. Columns whose type only
/// exists once the migrations ran (the role enum, pgvector's `vector`) take no default and
/// are skipped.
pub fn default_probes(model: &Model) -> Vec<DefaultProbe> {
    let schema = ident(&model.settings.helper_schema);
    let mut out = Vec::new();
    for table in &model.tables {
        for column in &table.columns {
            let Some(default) = &column.default else {
                continue;
            };
            if matches!(column.ty, SqlType::Role | SqlType::Vector(_)) {
                continue;
            }
            out.push(DefaultProbe {
                table: table.name.clone(),
                column: column.name.clone(),
                default_sql: default.to_sql(),
                type_sql: column.ty.sql_name(&schema),
            });
        }
    }
    out
}
