//! Hand-built models for the SQL and explain tests: `rag_model()` mirrors
//! policies/rag.tenancy; `small_model()` builds a core plus a few focused tables.
//!
//! Other test files include this one with `#[path = "sql_fixtures.rs"] mod fixtures;`.
//! Compiled on its own it checks that the hand-built RAG model is what the DSL front end
//! produces from policies/rag.tenancy.
#![allow(dead_code)]

use tenancy_core::condition::{CompareOp, Condition, Operand, Stamp, StampValue, StampWhen};
use tenancy_core::model::{
    Column, Command, DefaultValue, ForeignKey, Index, IndexMethod, Model, OnDelete, Rule, Settings,
    SqlType, Table, TableKind,
};

/// A column; `nullable` is `type?` in the DSL.
pub fn col(name: &str, ty: SqlType) -> Column {
    Column {
        name: name.to_owned(),
        ty,
        nullable: false,
        default: None,
        doc: None,
        distance: None,
        per_tenant: false,
        stamp: None,
    }
}

/// A nullable column.
pub fn opt(name: &str, ty: SqlType) -> Column {
    Column {
        nullable: true,
        ..col(name, ty)
    }
}

/// A column with a default.
pub fn dflt(name: &str, ty: SqlType, default: DefaultValue) -> Column {
    Column {
        default: Some(default),
        ..col(name, ty)
    }
}

/// `created_at timestamptz default now()`
pub fn created_at() -> Column {
    dflt("created_at", SqlType::Timestamptz, DefaultValue::Now)
}

/// `id uuid default gen_random_uuid()`
pub fn uuid_id() -> Column {
    dflt("id", SqlType::Uuid, DefaultValue::GenRandomUuid)
}

/// Strings from string slices.
pub fn names(cols: &[&str]) -> Vec<String> {
    cols.iter().map(|c| (*c).to_owned()).collect()
}

/// An empty table of the given kind.
pub fn table(name: &str, kind: TableKind, doc: &str) -> Table {
    Table {
        name: name.to_owned(),
        kind,
        doc: Some(doc.to_owned()),
        columns: vec![],
        primary_key: vec![],
        unique_keys: vec![],
        foreign_keys: vec![],
        indexes: vec![],
        rules: vec![],
    }
}

/// A column the database stamps, with its doc comment.
pub fn stamped(name: &str, ty: SqlType, value: StampValue, when: StampWhen, doc: &str) -> Column {
    Column {
        stamp: Some(Stamp { value, when }),
        doc: Some(doc.to_owned()),
        ..col(name, ty)
    }
}

/// `<column> = current_user`
pub fn is_caller(column: &str) -> Condition {
    Condition::Compare {
        left: Operand::Column(column.to_owned()),
        op: CompareOp::Eq,
        right: Operand::CurrentUser,
    }
}

/// `allow <commands> to <role>`
pub fn allow(commands: &[Command], role: &str) -> Vec<Rule> {
    commands
        .iter()
        .map(|c| Rule {
            command: *c,
            min_role: role.to_owned(),
            condition: None,
            columns: None,
        })
        .collect()
}

/// A declared foreign key.
pub fn fk(cols: &[&str], parent: &str, target: &[&str], on_delete: OnDelete) -> ForeignKey {
    ForeignKey {
        columns: names(cols),
        table: parent.to_owned(),
        target_columns: names(target),
        on_delete,
    }
}

/// A btree index.
pub fn btree(cols: &[&str]) -> Index {
    Index {
        columns: names(cols),
        method: IndexMethod::BTree,
    }
}

/// Rules sorted in canonical command order (what a validated model holds).
fn canonical(mut rules: Vec<Rule>) -> Vec<Rule> {
    rules.sort_by_key(|r| r.command);
    rules
}

use Command::{Delete, Insert, Select, Update};

/// The three core tables of policies/rag.tenancy.
pub fn rag_core_tables() -> Vec<Table> {
    let mut tenants = table(
        "tenants",
        TableKind::Tenants,
        "One customer organisation. Rows are visible only inside their own tenant.",
    );
    tenants.columns = vec![
        col("name", SqlType::Text),
        col("slug", SqlType::Text),
        created_at(),
    ];
    tenants.unique_keys = vec![names(&["slug"])];
    tenants.rules = allow(&[Select], "viewer");

    let mut projects = table(
        "projects",
        TableKind::Projects,
        "A product of a tenant; every tenant-owned row belongs to exactly one project.",
    );
    projects.columns = vec![
        col("name", SqlType::Text),
        col("slug", SqlType::Text),
        opt("description", SqlType::Text),
        created_at(),
    ];
    projects.unique_keys = vec![names(&["slug"])];
    projects.rules = canonical([allow(&[Select], "viewer"), allow(&[Update], "admin")].concat());

    let mut memberships = table(
        "user_project_roles",
        TableKind::Memberships,
        "Who holds which role in which project.",
    );
    memberships.columns = vec![
        Column {
            nullable: true,
            ..stamped(
                "granted_by",
                SqlType::Uuid,
                StampValue::CurrentUser,
                StampWhen::Update,
                "Who granted the current role: the database writes the caller's user id (none when an\n\
                 operator grants it without a request context).",
            )
        },
        Column {
            stamp: Some(Stamp {
                value: StampValue::Now,
                when: StampWhen::Update,
            }),
            ..col("granted_at", SqlType::Timestamptz)
        },
    ];
    memberships.rules = canonical(
        [
            allow(&[Select], "viewer"),
            allow(&[Insert, Update, Delete], "admin"),
        ]
        .concat(),
    );
    vec![tenants, projects, memberships]
}

/// The model of policies/rag.tenancy, built by hand.
pub fn rag_model() -> Model {
    let mut tables = rag_core_tables();
    let mut tenant_memberships = table(
        "tenant_user_roles",
        TableKind::TenantMemberships,
        "Who holds a role in every project of a tenant (an organisation's administrators, an\n\
         auditor who reads everything): the role counts in each project of the tenant, those\n\
         created later included.",
    );
    tenant_memberships.columns = vec![
        Column {
            nullable: true,
            ..stamped(
                "granted_by",
                SqlType::Uuid,
                StampValue::CurrentUser,
                StampWhen::Update,
                "Who granted the current role (none when an operator grants it).",
            )
        },
        Column {
            stamp: Some(Stamp {
                value: StampValue::Now,
                when: StampWhen::Update,
            }),
            ..col("granted_at", SqlType::Timestamptz)
        },
    ];
    tenant_memberships.rules = canonical(allow(&[Select, Insert, Update, Delete], "admin"));
    tables.push(tenant_memberships);

    let mut documents = table(
        "documents",
        TableKind::Scoped,
        "A source document ingested into a project.",
    );
    documents.columns = vec![
        uuid_id(),
        col("title", SqlType::Text),
        opt("source_uri", SqlType::Text),
        dflt(
            "mime_type",
            SqlType::Text,
            DefaultValue::String("text/plain".into()),
        ),
        col("content_hash", SqlType::Text),
        dflt(
            "metadata",
            SqlType::Jsonb,
            DefaultValue::String("{}".into()),
        ),
        stamped(
            "created_by",
            SqlType::Uuid,
            StampValue::CurrentUser,
            StampWhen::Insert,
            "Who ingested it: the database writes the caller's user id on insert.",
        ),
        Column {
            stamp: Some(Stamp {
                value: StampValue::Now,
                when: StampWhen::Insert,
            }),
            ..col("created_at", SqlType::Timestamptz)
        },
        Column {
            stamp: Some(Stamp {
                value: StampValue::Now,
                when: StampWhen::Update,
            }),
            ..col("updated_at", SqlType::Timestamptz)
        },
    ];
    documents.primary_key = names(&["id"]);
    documents.unique_keys = vec![names(&["content_hash"])];
    documents.indexes = vec![btree(&["created_at"])];
    documents.rules = canonical(
        [
            vec![Rule {
                command: Select,
                min_role: "viewer".to_owned(),
                condition: None,
                columns: Some(names(&[
                    "title",
                    "mime_type",
                    "content_hash",
                    "metadata",
                    "created_by",
                    "created_at",
                    "updated_at",
                ])),
            }],
            allow(&[Select], "editor"),
            allow(&[Insert], "editor"),
            vec![Rule {
                command: Update,
                min_role: "editor".to_owned(),
                condition: Some(is_caller("created_by")),
                columns: Some(vec!["title".to_owned(), "metadata".to_owned()]),
            }],
            allow(&[Update], "admin"),
            allow(&[Delete], "admin"),
        ]
        .concat(),
    );

    let mut chunks = table(
        "chunks",
        TableKind::Scoped,
        "A retrievable slice of a document, with its embedding.",
    );
    chunks.columns = vec![
        uuid_id(),
        col("document_id", SqlType::Uuid),
        col("ordinal", SqlType::Integer),
        col("content", SqlType::Text),
        col("token_count", SqlType::Integer),
        opt("embedding", SqlType::Vector(384)),
        created_at(),
    ];
    chunks.primary_key = names(&["id"]);
    chunks.unique_keys = vec![names(&["document_id", "ordinal"])];
    chunks.foreign_keys = vec![fk(
        &["document_id"],
        "documents",
        &["id"],
        OnDelete::Cascade,
    )];
    chunks.rules = canonical(
        [
            allow(&[Select], "viewer"),
            allow(&[Insert, Update, Delete], "editor"),
        ]
        .concat(),
    );

    let mut queries = table(
        "queries",
        TableKind::Scoped,
        "A question asked against a project's corpus.",
    );
    queries.columns = vec![
        uuid_id(),
        stamped(
            "asked_by",
            SqlType::Uuid,
            StampValue::CurrentUser,
            StampWhen::Insert,
            "Who asked: the database writes the caller's user id on insert.",
        ),
        col("query_text", SqlType::Text),
        dflt("top_k", SqlType::Integer, DefaultValue::Integer(10)),
        created_at(),
    ];
    queries.primary_key = names(&["id"]);
    queries.indexes = vec![btree(&["asked_by"])];
    queries.rules = canonical(
        [
            vec![Rule {
                command: Select,
                min_role: "viewer".to_owned(),
                condition: Some(is_caller("asked_by")),
                columns: None,
            }],
            allow(&[Select], "editor"),
            vec![Rule {
                command: Insert,
                min_role: "viewer".to_owned(),
                condition: Some(is_caller("asked_by")),
                columns: None,
            }],
            allow(&[Delete], "admin"),
        ]
        .concat(),
    );

    let mut responses = table(
        "responses",
        TableKind::Scoped,
        "A generated answer to a query.",
    );
    responses.columns = vec![
        uuid_id(),
        col("query_id", SqlType::Uuid),
        col("answer_text", SqlType::Text),
        col("model", SqlType::Text),
        dflt("prompt_tokens", SqlType::Integer, DefaultValue::Integer(0)),
        dflt(
            "completion_tokens",
            SqlType::Integer,
            DefaultValue::Integer(0),
        ),
        opt("latency_ms", SqlType::Integer),
        created_at(),
    ];
    responses.primary_key = names(&["id"]);
    responses.foreign_keys = vec![fk(&["query_id"], "queries", &["id"], OnDelete::Cascade)];
    responses.rules = canonical(
        [
            allow(&[Select], "viewer"),
            allow(&[Insert], "editor"),
            allow(&[Delete], "admin"),
        ]
        .concat(),
    );

    let mut assertions = table(
        "assertions",
        TableKind::Scoped,
        "A checked claim in a response: which chunk supports it and the verdict.",
    );
    assertions.columns = vec![
        uuid_id(),
        col("response_id", SqlType::Uuid),
        opt("chunk_id", SqlType::Uuid),
        col("claim", SqlType::Text),
        dflt(
            "verdict",
            SqlType::Text,
            DefaultValue::String("unverified".into()),
        ),
        opt("score", SqlType::Real),
        created_at(),
    ];
    assertions.primary_key = names(&["id"]);
    assertions.foreign_keys = vec![
        fk(&["response_id"], "responses", &["id"], OnDelete::Cascade),
        fk(&["chunk_id"], "chunks", &["id"], OnDelete::SetNull),
    ];
    assertions.indexes = vec![btree(&["response_id"])];
    assertions.rules = canonical(
        [
            allow(&[Select], "viewer"),
            allow(&[Insert, Update], "editor"),
            allow(&[Delete], "admin"),
        ]
        .concat(),
    );

    let mut embedding_models = table(
        "embedding_models",
        TableKind::Global,
        "Embedding models known to the platform, shared by every tenant.",
    );
    embedding_models.columns = vec![
        col("name", SqlType::Text),
        col("dimensions", SqlType::Integer),
        created_at(),
    ];
    embedding_models.primary_key = names(&["name"]);
    embedding_models.rules = allow(&[Select], "viewer");

    tables.extend([
        documents,
        chunks,
        queries,
        responses,
        assertions,
        embedding_models,
    ]);
    Model {
        settings: Settings::default(),
        roles: names(&["viewer", "editor", "admin", "owner"]),
        tables,
        adoption: None,
    }
}

/// The RAG core tables (roles viewer < editor < admin < owner) plus `tables`.
pub fn small_model(tables: Vec<Table>) -> Model {
    let mut all = rag_core_tables();
    all.extend(tables);
    Model {
        settings: Settings::default(),
        roles: names(&["viewer", "editor", "admin", "owner"]),
        tables: all,
        adoption: None,
    }
}

/// policies/rag.tenancy compiled by the DSL front end.
pub fn rag_model_from_dsl() -> Model {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../examples/rag/policies/rag.tenancy"
    );
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|err| panic!("cannot read policies/rag.tenancy: {err}"));
    let (model, diagnostics) =
        tenancy_core::dsl::compile(&[tenancy_core::dsl::SourceFile::new("rag.tenancy", text)]);
    model.unwrap_or_else(|| panic!("policies/rag.tenancy does not compile: {diagnostics:?}"))
}

#[test]
fn hand_built_rag_model_matches_the_dsl() {
    let from_dsl = rag_model_from_dsl();
    let by_hand = rag_model();
    assert_eq!(from_dsl.settings, by_hand.settings);
    assert_eq!(from_dsl.roles, by_hand.roles);
    let names = |m: &Model| m.tables.iter().map(|t| t.name.clone()).collect::<Vec<_>>();
    assert_eq!(names(&from_dsl), names(&by_hand));
    for (dsl_table, hand_table) in from_dsl.tables.iter().zip(&by_hand.tables) {
        assert_eq!(dsl_table, hand_table, "table {}", hand_table.name);
    }
}
