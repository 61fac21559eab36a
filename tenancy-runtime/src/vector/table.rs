//! The model's description of a table with a vector column, from which every vector SQL
//! statement is built.

use std::fmt;
use std::marker::PhantomData;

use crate::error::Error;
use crate::role::{is_valid_identifier, Role};

/// The distance a vector column is searched by; it chooses the pgvector operator of the
/// searches and the operator class of the per-tenant HNSW indexes.
///
/// ```
/// use tenancy_runtime::vector::Distance;
/// assert_eq!(Distance::Cosine.operator(), "<=>");
/// assert_eq!(Distance::L2.operator_class(), "vector_l2_ops");
/// assert_eq!(Distance::InnerProduct.operator(), "<#>");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum Distance {
    /// Cosine distance, `1 - cos(a, b)` (`<=>`, `vector_cosine_ops`). The default.
    #[default]
    Cosine,
    /// Euclidean distance (`<->`, `vector_l2_ops`).
    L2,
    /// Negative inner product (`<#>`, `vector_ip_ops`): smaller is nearer, like the others.
    InnerProduct,
}

impl Distance {
    /// The pgvector operator: `<=>`, `<->` or `<#>`.
    pub const fn operator(self) -> &'static str {
        match self {
            Distance::Cosine => "<=>",
            Distance::L2 => "<->",
            Distance::InnerProduct => "<#>",
        }
    }

    /// The HNSW operator class: `vector_cosine_ops`, `vector_l2_ops` or `vector_ip_ops`.
    pub const fn operator_class(self) -> &'static str {
        match self {
            Distance::Cosine => "vector_cosine_ops",
            Distance::L2 => "vector_l2_ops",
            Distance::InnerProduct => "vector_ip_ops",
        }
    }

    /// The DSL spelling: `cosine`, `l2` or `inner_product`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Distance::Cosine => "cosine",
            Distance::L2 => "l2",
            Distance::InnerProduct => "inner_product",
        }
    }
}

impl fmt::Display for Distance {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A scoped table with a vector column, as the model declares it: the names and the
/// dimension every vector statement is built from. `tenancy generate` emits one per vector
/// column (a `const`); the table is keyed by `(tenant_id, project_id, <key_column>)`.
///
/// ```
/// use tenancy_runtime::vector::{Distance, VectorSpec};
/// const NOTES: VectorSpec = VectorSpec {
///     schema: "public",
///     table: "notes",
///     key_column: "id",
///     vector_column: "vec",
///     dimensions: 3,
///     distance: Distance::L2,
///     filter_columns: &["folder_id"],
///     per_tenant: false,
/// };
/// assert!(NOTES.validate().is_ok());
/// assert_eq!(NOTES.qualified_table(), "\"public\".\"notes\"");
/// assert_eq!(NOTES.catalog_name(), "public.notes");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct VectorSpec {
    /// Schema of the table (`public` for model tables).
    pub schema: &'static str,
    /// The table.
    pub table: &'static str,
    /// The key column within a project (the table's primary key is
    /// `(tenant_id, project_id, key_column)`).
    pub key_column: &'static str,
    /// The `vector(N)` column.
    pub vector_column: &'static str,
    /// `N` of `vector(N)`: embeddings of another length are refused before any SQL runs.
    pub dimensions: u32,
    /// The distance searches order by (and the per-tenant indexes are built for).
    pub distance: Distance,
    /// `uuid` columns a search may filter on by equality (the table's references to other
    /// tables); such a search is always exact.
    pub filter_columns: &'static [&'static str],
    /// `per tenant` in the model: the column is an unconstrained `vector`, each tenant's
    /// embedding model (name and dimension) is read from `<helper_schema>.vector_settings`,
    /// and [`dimensions`](Self::dimensions) is the dimension of tenants that chose none.
    pub per_tenant: bool,
}

impl VectorSpec {
    /// Checks that every name is a plain lowercase identifier and the dimension is in
    /// pgvector's range (1..=16000).
    pub fn validate(&self) -> Result<(), Error> {
        let names = [
            ("schema", self.schema),
            ("table", self.table),
            ("key_column", self.key_column),
            ("vector_column", self.vector_column),
        ];
        let filters = self.filter_columns.iter().map(|c| ("filter_columns", *c));
        for (what, name) in names.into_iter().chain(filters) {
            if !is_valid_identifier(name.as_bytes()) {
                return Err(Error::Misconfigured(format!(
                    "vector table {}: {what} {name:?} is not a lowercase identifier",
                    self.table
                )));
            }
        }
        if !(1..=16_000).contains(&self.dimensions) {
            return Err(Error::Misconfigured(format!(
                "vector table {}: dimensions {} not in 1..=16000",
                self.table, self.dimensions
            )));
        }
        Ok(())
    }

    /// `"schema"."table"`, for SQL text.
    pub fn qualified_table(&self) -> String {
        format!("{}.{}", quote_ident(self.schema), quote_ident(self.table))
    }

    /// `schema.table`: the table's key in the catalog (`vector_tiers.table_name`) and the
    /// text `to_regclass` resolves.
    pub fn catalog_name(&self) -> String {
        format!("{}.{}", self.schema, self.table)
    }

    /// The name (without schema) of a partial HNSW index on this table for a random `token`:
    /// `<table>_<column>_hnsw_<16 hex digits of the token>`. The maintenance draws the token at
    /// random when it promotes a tenant and keeps the name in the catalog, so the name says
    /// nothing about the tenant (it used to carry the tenant's UUID, readable by every role in
    /// `pg_indexes`). When `<table>_<column>` is longer than 25 bytes it is cut to 16 and
    /// followed by 8 hex digits of its hash, so the name stays within PostgreSQL's 63 bytes and
    /// distinct per table and column.
    ///
    /// ```
    /// use tenancy_runtime::vector::{Distance, VectorSpec};
    /// let spec = VectorSpec {
    ///     schema: "public", table: "notes", key_column: "id", vector_column: "vec",
    ///     dimensions: 3, distance: Distance::Cosine, filter_columns: &[], per_tenant: false,
    /// };
    /// assert_eq!(spec.index_name_for_token(0xab), "notes_vec_hnsw_00000000000000ab");
    /// ```
    pub fn index_name_for_token(&self, token: u64) -> String {
        let base = format!("{}_{}", self.table, self.vector_column);
        let base = if base.len() <= 25 {
            base
        } else {
            let cut: String = base.chars().take(16).collect();
            format!("{cut}_{:08x}", fnv1a(base.as_bytes()))
        };
        format!("{base}_hnsw_{token:016x}")
    }
}

/// 32-bit FNV-1a (stable across builds and platforms, unlike `DefaultHasher`).
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5u32, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// `"name"` with embedded quotes doubled.
pub(crate) fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// The marker of a [`VectorTable`]'s types (no data; `fn() -> ...` keeps it `Send`, `Sync`
/// and covariant whatever the types).
type Markers<Read, Update, Key> = PhantomData<fn() -> (Read, Update, Key)>;

/// A [`VectorSpec`] with the model's types: `Read` is the role the table's SELECT rule
/// requires, `Update` the role its UPDATE rule requires ([`NoUpdateRule`] when the model
/// allows no update, so no scope can write embeddings through the gateway), `Key` the Rust
/// type of the key column. `tenancy generate` emits one per vector column as a `const`.
pub struct VectorTable<Read: Role, Update: Role, Key> {
    /// The names and dimension.
    pub spec: VectorSpec,
    types: Markers<Read, Update, Key>,
}

impl<Read: Role, Update: Role, Key> VectorTable<Read, Update, Key> {
    /// The typed table for `spec` (a `const fn`, for generated constants).
    pub const fn new(spec: VectorSpec) -> Self {
        Self {
            spec,
            types: PhantomData,
        }
    }
}

impl<Read: Role, Update: Role, Key> Clone for VectorTable<Read, Update, Key> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<Read: Role, Update: Role, Key> Copy for VectorTable<Read, Update, Key> {}

impl<Read: Role, Update: Role, Key> fmt::Debug for VectorTable<Read, Update, Key> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VectorTable")
            .field("spec", &self.spec)
            .field("read_role", &Read::NAME)
            .field("update_role", &Update::NAME)
            .finish()
    }
}

/// The `Update` role of a [`VectorTable`] whose model allows no UPDATE: no scope proves it
/// (it is no model role), so [`VectorGateway::set_embeddings`](super::VectorGateway) does not
/// compile for that table. Write such a table's embeddings with the generated repository's
/// `insert`.
#[derive(Clone, Copy, Debug)]
pub enum NoUpdateRule {}

impl Role for NoUpdateRule {
    const NAME: &'static str = "";
    const RANK: u8 = u8::MAX;
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: VectorSpec = VectorSpec {
        schema: "public",
        table: "a_rather_long_table_name",
        key_column: "id",
        vector_column: "vec_column",
        dimensions: 8,
        distance: Distance::InnerProduct,
        filter_columns: &["parent_id"],
        per_tenant: false,
    };

    #[test]
    fn long_index_names_stay_within_63_bytes_and_differ_per_column() {
        let name = SPEC.index_name_for_token(u64::MAX);
        assert!(name.len() <= 63, "{name}");
        assert!(name.starts_with("a_rather_long_ta_"), "{name}");
        let other = VectorSpec {
            vector_column: "vec_column2",
            ..SPEC
        };
        assert_ne!(other.index_name_for_token(u64::MAX), name);
    }

    #[test]
    fn validation_refuses_names_that_are_not_plain_identifiers() {
        assert!(SPEC.validate().is_ok());
        for bad in [
            VectorSpec {
                table: "x\"; drop",
                ..SPEC
            },
            VectorSpec {
                filter_columns: &["Parent"],
                ..SPEC
            },
            VectorSpec {
                dimensions: 0,
                ..SPEC
            },
        ] {
            assert!(matches!(bad.validate(), Err(Error::Misconfigured(_))));
        }
    }
}
