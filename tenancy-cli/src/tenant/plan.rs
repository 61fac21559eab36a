//! Which tables a tenant's data lives in, read from the model: every tenant-owned table in
//! dependency order, its columns, the column that names the tenant and the row order.

use tenancy_core::model::{Model, Table, TableKind};

/// One tenant-owned table as the lifecycle commands see it.
#[derive(Debug, Clone)]
pub struct TablePlan {
    /// The table's name (schema `public`, or [`schema`](Self::schema)).
    pub name: String,
    /// The helper schema for the generated tables that hold tenant rows outside the model's
    /// tables (`vector_settings`, the tenant's embedding models); `None` for model tables.
    pub schema: Option<String>,
    /// What the table is to the tenancy layer.
    pub kind: TableKind,
    /// Every column as created (generated ones first), with its DSL type.
    pub columns: Vec<PlanColumn>,
    /// The column holding the tenant id (`id` on the tenants table).
    pub tenant_column: String,
    /// The column holding the project id (`id` on projects), `None` on the tenants table.
    pub project_column: Option<String>,
    /// `ORDER BY` of an export: the primary key.
    pub order_by: String,
}

/// One column of a [`TablePlan`].
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PlanColumn {
    /// The column's name.
    pub name: String,
    /// Its type as the DSL spells it (`uuid`, `vector(384)`, `role`, ...).
    #[serde(rename = "type")]
    pub ty: String,
    /// Whether it accepts NULL.
    pub nullable: bool,
}

/// Every tenant-owned table of `model`, parents before children; with a `per tenant` vector
/// column also the tenant's embedding settings, right after the tenants table (the rows of
/// the vector tables must find their tenant's dimension when they are imported).
pub fn tables(model: &Model) -> Vec<TablePlan> {
    let mut plans: Vec<TablePlan> = model
        .tables_in_dependency_order()
        .into_iter()
        .filter_map(plan)
        .collect();
    if tenancy_core::sql::vector_settings::uses_settings(model) {
        let at = plans
            .iter()
            .position(|p| p.kind == TableKind::Tenants)
            .map_or(0, |i| i + 1);
        plans.insert(at, settings_plan(&model.settings.helper_schema));
    }
    plans
}

/// `<helper_schema>.vector_settings` (sql/vector_settings.rs in tenancy-core).
fn settings_plan(helper_schema: &str) -> TablePlan {
    let column = |name: &str, ty: &str| PlanColumn {
        name: name.to_owned(),
        ty: ty.to_owned(),
        nullable: false,
    };
    TablePlan {
        name: tenancy_core::sql::vector_settings::SETTINGS_TABLE.to_owned(),
        schema: Some(helper_schema.to_owned()),
        kind: TableKind::Scoped,
        columns: vec![
            column("tenant_id", "uuid"),
            column("table_name", "text"),
            column("column_name", "text"),
            column("model", "text"),
            column("dimensions", "integer"),
            column("version", "integer"),
            column("changed_at", "timestamptz"),
        ],
        tenant_column: "tenant_id".to_owned(),
        project_column: None,
        order_by: "table_name, column_name".to_owned(),
    }
}

fn plan(table: &Table) -> Option<TablePlan> {
    let scope = table.scope_columns()?;
    let columns: Vec<PlanColumn> = table
        .all_columns()
        .iter()
        .map(|c| PlanColumn {
            name: c.name.clone(),
            ty: c.ty.dsl_name(),
            nullable: c.nullable,
        })
        .collect();
    // Every tenant table has a primary key (the validator requires one of scoped tables), so
    // two exports of the same rows are the same bytes.
    let order: Vec<String> = table
        .effective_primary_key()
        .iter()
        .map(|c| ident(c))
        .collect();
    Some(TablePlan {
        name: table.name.clone(),
        schema: None,
        kind: table.kind,
        columns,
        tenant_column: scope.tenant.to_owned(),
        project_column: scope.project.map(str::to_owned),
        order_by: order.join(", "),
    })
}

impl TablePlan {
    /// The table's name, quoted (schema-qualified for a helper table).
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", ident(schema), ident(&self.name)),
            None => ident(&self.name),
        }
    }

    /// The file the export writes this table into (`<schema>.<table>.jsonl` for a helper
    /// table, so it cannot meet a model table's file).
    pub fn file_name(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{schema}.{}.jsonl", self.name),
            None => format!("{}.jsonl", self.name),
        }
    }

    /// A SQL expression that turns one row (alias `t`) into its JSON Lines text: a jsonb
    /// object of every column (types without a JSON form, `vector`, become their text).
    pub fn json_expression(&self) -> String {
        // jsonb_build_object takes at most 100 arguments: join groups of 40 columns with ||.
        let groups: Vec<String> = self
            .columns
            .chunks(40)
            .map(|group| {
                let pairs: Vec<String> = group
                    .iter()
                    .map(|c| format!("{}, t.{}", literal(&c.name), ident(&c.name)))
                    .collect();
                format!("jsonb_build_object({})", pairs.join(", "))
            })
            .collect();
        format!("({})::text", groups.join(" || "))
    }

    /// `SELECT <json line> FROM <table> t WHERE <tenant column> = $1 ORDER BY <key>`.
    pub fn export_query(&self) -> String {
        format!(
            "SELECT {} FROM {} t WHERE t.{} = $1 ORDER BY {}",
            self.json_expression(),
            self.quoted(),
            ident(&self.tenant_column),
            self.order_by
        )
    }

    /// The column list, quoted and comma-separated.
    pub fn column_list(&self) -> String {
        self.columns
            .iter()
            .map(|c| ident(&c.name))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// A quoted SQL identifier.
pub fn ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// A SQL string literal.
pub fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}
