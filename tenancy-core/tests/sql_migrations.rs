//! The PostgreSQL emitter: snapshots of the full SQL and explicit security properties.

#[path = "sql_fixtures.rs"]
mod fixtures;

use fixtures::*;
use tenancy_core::model::{Command, Model, OnDelete, SqlType, TableKind};
use tenancy_core::sql::{generate_migrations, GeneratedFile, Target};

/// Both migration files, concatenated with a marker line naming each file.
fn render(model: &Model, target: Target) -> String {
    generate_migrations(model, target)
        .iter()
        .map(|f| format!("==> {} <==\n{}", f.path.display(), f.contents))
        .collect::<Vec<_>>()
        .join("\n")
}

fn all_sql(model: &Model, target: Target) -> String {
    generate_migrations(model, target)
        .into_iter()
        .map(|f| f.contents)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every statement starting with `prefix` (up to its terminating `;`).
fn statements<'a>(sql: &'a str, prefix: &str) -> Vec<&'a str> {
    let mut out = Vec::new();
    let mut rest = sql;
    while let Some(start) = rest.find(prefix) {
        let from = &rest[start..];
        let end = from.find(';').map_or(from.len(), |e| e + 1);
        out.push(&from[..end]);
        rest = &from[end..];
    }
    out
}

/// A `CREATE TABLE name (` statement.
fn create_table<'a>(sql: &'a str, name: &str) -> &'a str {
    statements(sql, &format!("CREATE TABLE {name} ("))
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no CREATE TABLE {name}"))
}

fn global_and_scoped_tables() -> Model {
    let mut countries = table(
        "countries",
        TableKind::Global,
        "ISO countries, shared by all tenants.",
    );
    countries.columns = vec![col("code", SqlType::Text), col("name", SqlType::Text)];
    countries.primary_key = names(&["code"]);
    countries.rules = allow(&[Command::Select], "viewer");

    let mut customers = table("customers", TableKind::Scoped, "A customer of a project.");
    customers.columns = vec![
        uuid_id(),
        col("name", SqlType::Text),
        col("country_code", SqlType::Text),
    ];
    customers.primary_key = names(&["id"]);
    customers.foreign_keys = vec![fk(
        &["country_code"],
        "countries",
        &["code"],
        OnDelete::Restrict,
    )];
    customers.rules = [
        allow(&[Command::Select], "viewer"),
        allow(&[Command::Insert, Command::Update], "editor"),
    ]
    .concat();
    small_model(vec![countries, customers])
}

fn set_null_model() -> Model {
    let mut folders = table("folders", TableKind::Scoped, "A folder of notes.");
    folders.columns = vec![uuid_id(), col("title", SqlType::Text)];
    folders.primary_key = names(&["id"]);
    folders.rules = allow(&Command::ALL, "editor");

    let mut notes = table(
        "notes",
        TableKind::Scoped,
        "A note, optionally filed in a folder.",
    );
    notes.columns = vec![
        uuid_id(),
        opt("folder_id", SqlType::Uuid),
        col("body", SqlType::Text),
    ];
    notes.primary_key = names(&["id"]);
    notes.foreign_keys = vec![fk(&["folder_id"], "folders", &["id"], OnDelete::SetNull)];
    notes.rules = allow(&Command::ALL, "editor");
    small_model(vec![folders, notes])
}

fn select_only_model() -> Model {
    let mut audit = table(
        "audit_events",
        TableKind::Scoped,
        "What happened in a project; written by the platform, read by admins.",
    );
    audit.columns = vec![
        uuid_id(),
        col("action", SqlType::Text),
        dflt(
            "payload",
            SqlType::Jsonb,
            tenancy_core::model::DefaultValue::String("{}".into()),
        ),
        created_at(),
    ];
    audit.primary_key = names(&["id"]);
    audit.rules = allow(&[Command::Select], "admin");
    small_model(vec![audit])
}

#[test]
fn rag_model_snapshot() {
    insta::assert_snapshot!("sql_rag_postgres", render(&rag_model(), Target::Postgres));
}

#[test]
fn real_rag_policy_snapshot() {
    // policies/rag.tenancy through the DSL front end, as `tenancy generate` sees it
    let model = rag_model_from_dsl();
    insta::assert_snapshot!("sql_rag_policy_file", render(&model, Target::Postgres));
}

#[test]
fn rag_model_citus_snapshot() {
    insta::assert_snapshot!("sql_rag_citus", render(&rag_model(), Target::Citus));
}

#[test]
fn global_table_snapshot() {
    let sql = render(&global_and_scoped_tables(), Target::Postgres);
    // global: no RLS, plain FK from the scoped table
    let countries = create_table(&sql, "countries");
    assert!(countries.contains("PRIMARY KEY (code)"));
    assert!(!sql.contains("ALTER TABLE countries ENABLE ROW LEVEL SECURITY"));
    assert!(sql.contains("-- countries is global: no row-level security"));
    assert!(sql.contains("GRANT SELECT ON TABLE countries TO tenancy_app;"));
    assert!(create_table(&sql, "customers").contains(
        "FOREIGN KEY (country_code)\n    REFERENCES countries (code) ON DELETE RESTRICT"
    ));
    insta::assert_snapshot!("sql_global_table", sql);
}

#[test]
fn set_null_snapshot() {
    let sql = render(&set_null_model(), Target::Postgres);
    assert!(create_table(&sql, "notes").contains(
        "FOREIGN KEY (tenant_id, project_id, folder_id)\n    \
         REFERENCES folders (tenant_id, project_id, id) ON DELETE SET NULL (folder_id)"
    ));
    // the FK is not covered by the primary key: it gets its own index
    assert!(sql
        .contains("CREATE INDEX notes_folder_id_idx ON notes (tenant_id, project_id, folder_id);"));
    insta::assert_snapshot!("sql_set_null", sql);
}

#[test]
fn select_only_snapshot() {
    let sql = render(&select_only_model(), Target::Postgres);
    assert!(sql.contains("CREATE POLICY audit_events_select ON audit_events"));
    for command in ["insert", "update", "delete"] {
        assert!(!sql.contains(&format!("audit_events_{command}")));
    }
    assert!(sql.contains("GRANT SELECT ON TABLE audit_events TO tenancy_app;"));
    assert!(!sql.contains("GRANT UPDATE (id, action, payload, created_at) ON TABLE audit_events"));
    assert_eq!(
        statements(&sql, "GRANT ")
            .iter()
            .filter(|g| g.contains("audit_events"))
            .count(),
        1
    );
    insta::assert_snapshot!("sql_select_only", sql);
}

#[test]
fn citus_calls_helpers_directly() {
    let sql = render(&set_null_model(), Target::Citus);
    assert!(
        !sql.contains("(SELECT tenancy."),
        "Citus must not use sub-selects"
    );
    // Citus creates every policy as PERMISSIVE on the shards: the tenant check is part of
    // each policy, never a restrictive policy of its own.
    assert!(!sql.contains("AS RESTRICTIVE"), "{sql}");
    assert!(sql.contains(
        "USING (tenant_id = tenancy.current_tenant_id() AND (project_id = ANY (tenancy.project_ids('editor'))))"
    ));
    insta::assert_snapshot!("sql_set_null_citus", sql);
}

#[test]
fn citus_folds_the_tenant_boundary_into_every_policy() {
    let sql = all_sql(&rag_model(), Target::Citus);
    for policy in statements(&sql, "CREATE POLICY ") {
        assert!(policy.contains("AS PERMISSIVE"), "{policy}");
        assert!(
            policy.contains("tenant_id = tenancy.current_tenant_id() AND ")
                || policy.contains("ON tenants")
                    && policy.contains("(id = tenancy.current_tenant_id() AND "),
            "a Citus policy without the tenant check: {policy}"
        );
    }
    // The memberships table's writes keep the role ceiling.
    for policy in statements(&sql, "CREATE POLICY user_project_roles_") {
        if !policy.contains("FOR SELECT") {
            assert!(policy.contains("CASE role WHEN 'viewer'"), "{policy}");
        }
    }
}

#[test]
fn citus_distributes_the_tenant_tree_and_adds_foreign_keys_afterwards() {
    let sql = all_sql(&rag_model(), Target::Citus);
    // The tenants table is a reference table: its unique keys (a global slug) hold
    // cluster-wide. The projects table starts the colocation group.
    assert!(sql.contains("SELECT pg_catalog.create_reference_table('public.tenants');"));
    assert!(sql.contains(
        "SELECT pg_catalog.create_distributed_table('public.projects', 'tenant_id', colocate_with => 'none');"
    ));
    for table in ["user_project_roles", "documents", "chunks", "assertions"] {
        assert!(
            sql.contains(&format!(
                "SELECT pg_catalog.create_distributed_table('public.{table}', 'tenant_id', colocate_with => 'public.projects');"
            )),
            "{table} is not distributed"
        );
    }
    assert!(sql.contains("SELECT pg_catalog.create_reference_table('public.embedding_models');"));
    // No CREATE TABLE carries a foreign key: they are added once both sides are distributed.
    for table in statements(&sql, "CREATE TABLE ") {
        assert!(!table.contains("FOREIGN KEY"), "{table}");
    }
    let distributed = sql
        .find("create_distributed_table('public.chunks'")
        .unwrap_or(usize::MAX);
    let key = sql
        .find("ALTER TABLE chunks ADD CONSTRAINT chunks_document_id_fkey FOREIGN KEY")
        .unwrap_or(0);
    assert!(
        key > distributed,
        "the foreign key comes after the distribution"
    );
    // The Postgres target is untouched.
    assert!(!all_sql(&rag_model(), Target::Postgres).contains("create_distributed_table"));
}

#[test]
fn postgres_wraps_every_helper_call_in_a_select() {
    let sql = all_sql(&rag_model(), Target::Postgres);
    for policy in statements(&sql, "CREATE POLICY ") {
        // Helper calls only: the audit table's name `tenancy.audit_log` is not a call.
        let calls = policy.matches("tenancy.current_").count()
            + policy.matches("tenancy.project_ids(").count();
        let wrapped = policy.matches("(SELECT tenancy.").count();
        assert!(calls > 0, "policy without a context helper: {policy}");
        assert_eq!(calls, wrapped, "unwrapped helper call in {policy}");
    }
}

#[test]
fn file_paths_and_headers() {
    let files: Vec<GeneratedFile> = generate_migrations(&rag_model(), Target::Postgres);
    let paths: Vec<String> = files.iter().map(|f| f.path.display().to_string()).collect();
    assert_eq!(
        paths,
        [
            "migrations/0001_tenancy_core.sql",
            "migrations/0002_tables.sql"
        ]
    );
    for f in &files {
        assert!(f.contents.contains("GENERATED from policies/*.tenancy"));
        assert!(f.contents.contains("DO NOT EDIT"));
    }
    assert!(files[0]
        .contents
        .contains("CREATE EXTENSION IF NOT EXISTS vector;"));
    let no_vector = set_null_model();
    assert!(!all_sql(&no_vector, Target::Postgres).contains("EXTENSION"));
}

#[test]
fn output_is_deterministic() {
    for target in [Target::Postgres, Target::Citus] {
        let model = rag_model();
        assert_eq!(
            generate_migrations(&model, target),
            generate_migrations(&model, target)
        );
        // rule order inside a table (what a HashMap-based front end might produce) must not
        // change the output
        let mut shuffled = model.clone();
        for t in &mut shuffled.tables {
            t.rules.reverse();
            let half = t.rules.len() / 2;
            t.rules.rotate_left(half);
        }
        assert_eq!(
            generate_migrations(&model, target),
            generate_migrations(&shuffled, target)
        );
    }
}

#[test]
fn every_tenant_owned_table_enables_and_forces_rls() {
    let model = rag_model();
    let sql = all_sql(&model, Target::Postgres);
    for t in &model.tables {
        let enable = format!("ALTER TABLE {} ENABLE ROW LEVEL SECURITY;", t.name);
        let force = format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", t.name);
        let boundary = format!(
            "CREATE POLICY {}_tenant_boundary ON {}\n  AS RESTRICTIVE",
            t.name, t.name
        );
        let owned = t.kind.is_tenant_owned();
        assert_eq!(sql.contains(&enable), owned, "{enable}");
        assert_eq!(sql.contains(&force), owned, "{force}");
        assert_eq!(sql.contains(&boundary), owned, "{boundary}");
    }
}

#[test]
fn scope_columns_never_have_a_default() {
    let sql = all_sql(&rag_model(), Target::Postgres);
    let tables = statements(&sql, "CREATE TABLE ");
    // the model tables, the audit table and the signed context's key table
    assert_eq!(tables.len(), 12);
    for create in tables {
        // The audit table's project_id is NULL for tenant-wide events (tenant.create).
        let is_audit = create.starts_with("CREATE TABLE tenancy.audit_log");
        for line in create.lines() {
            let column = line.split_whitespace().next().unwrap_or("");
            if is_audit && column == "project_id" {
                assert_eq!(line.trim(), "project_id uuid,");
                continue;
            }
            if column == "tenant_id" || column == "project_id" {
                assert!(line.contains("uuid NOT NULL"), "{line}");
                assert!(!line.contains("DEFAULT"), "{line}");
            }
        }
    }
}

#[test]
fn foreign_keys_between_tenant_tables_include_the_tenant() {
    let model = rag_model();
    let sql = all_sql(&model, Target::Postgres);
    let mut checked = 0;
    for create in statements(&sql, "CREATE TABLE ") {
        for fk in create.split("FOREIGN KEY").skip(1) {
            let parent = fk
                .split("REFERENCES ")
                .nth(1)
                .and_then(|r| r.split_whitespace().next())
                .expect("REFERENCES");
            if model.table(parent).expect("parent").kind.is_tenant_owned() {
                let (local, remote) = fk.split_once("REFERENCES").expect("REFERENCES");
                assert!(local.contains("tenant_id"), "{fk}");
                let remote_cols = remote.split(')').next().unwrap_or("");
                assert!(
                    remote_cols.contains("tenant_id") || parent == "tenants",
                    "{fk}"
                );
                checked += 1;
            }
        }
    }
    // projects->tenants, memberships->projects, tenant memberships->tenants,
    // 5 scoped->projects, 4 declared
    assert_eq!(checked, 12);
    assert!(sql.contains(
        "FOREIGN KEY (tenant_id, project_id, document_id)\n    REFERENCES documents (tenant_id, project_id, id) ON DELETE CASCADE"
    ));
    assert!(sql.contains("ON DELETE SET NULL (chunk_id)"));
    assert!(sql.contains(
        "FOREIGN KEY (tenant_id, project_id)\n    REFERENCES projects (tenant_id, id) ON DELETE CASCADE"
    ));
}

#[test]
fn policies_never_read_a_table() {
    for target in [Target::Postgres, Target::Citus] {
        let sql = all_sql(&rag_model(), target);
        let policies = statements(&sql, "CREATE POLICY ");
        // 8 tenant-owned tables with a boundary each, plus one policy per rule, plus the
        // memberships table's role ceiling (insert, update, delete), plus the audit table's
        // boundary, select and insert, plus the tenant memberships table's boundary, 4 rules
        // and role ceiling (3). Citus folds boundary and ceiling into the rules' policies
        // (sql/citus.rs).
        let expected = match target {
            Target::Postgres => 8 + 1 + 2 + 4 + 4 + 4 + 3 + 3 + 4 + 3 + 3 + (1 + 4 + 3),
            Target::Citus => 8 + 1 + 2 + 4 + 4 + 4 + 3 + 3 + 4 + 3 + 3 - 8 - 3 - 1 + 4,
        };
        assert_eq!(policies.len(), expected);
        for policy in policies {
            assert!(!policy.to_uppercase().contains("FROM "), "{policy}");
            assert!(policy.contains("TO tenancy_app"), "{policy}");
        }
    }
}

#[test]
fn grants_follow_the_rules_and_never_include_dangerous_privileges() {
    let model = rag_model();
    let sql = all_sql(&model, Target::Postgres);
    for grant in statements(&sql, "GRANT ") {
        for forbidden in ["TRUNCATE", "REFERENCES", "TRIGGER", "ALL"] {
            assert!(!grant.contains(forbidden), "{grant}");
        }
        if grant.starts_with("GRANT UPDATE (") {
            let cols = grant.split(')').next().unwrap_or("");
            assert!(!cols.contains("tenant_id"), "{grant}");
            assert!(!cols.contains("project_id"), "{grant}");
        }
    }
    for t in &model.tables {
        assert!(sql.contains(&format!("REVOKE ALL ON TABLE {} FROM PUBLIC;", t.name)));
        assert!(sql.contains(&format!("REVOKE ALL ON TABLE {} FROM tenancy_app;", t.name)));
    }
    assert!(sql.contains("GRANT SELECT, INSERT, DELETE ON TABLE queries TO tenancy_app;"));
    assert!(!sql.contains("GRANT UPDATE (id, asked_by"));
    assert!(sql.contains("GRANT SELECT ON TABLE tenants TO tenancy_app;"));
    assert!(sql.contains("GRANT UPDATE (name, slug, description, created_at) ON TABLE projects"));
    assert!(sql.contains("GRANT UPDATE (role) ON TABLE user_project_roles TO tenancy_app;"));
}

#[test]
fn core_policies_have_their_special_forms() {
    let sql = all_sql(&rag_model(), Target::Postgres);
    assert!(sql.contains("USING (id = (SELECT tenancy.current_tenant_id()))"));
    assert!(sql.contains(
        "USING (pg_catalog.cardinality((SELECT tenancy.project_ids('viewer'))::uuid[]) > 0)"
    ));
    assert!(sql.contains(
        "USING (project_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]) OR user_id = (SELECT tenancy.current_user_id()))"
    ));
    // projects: a member of the project, or of the whole tenant (tenant-wide roles)
    assert!(sql.contains(
        "USING ((id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]) OR tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[])))"
    ));
    assert!(sql.contains("CONSTRAINT projects_id_check CHECK (id <> tenant_id)"));
    // tenant memberships: the caller's tenant-wide role, listed as the tenant id
    assert!(sql.contains(
        "USING (tenant_id = ANY ((SELECT tenancy.project_ids('admin'))::uuid[]) OR user_id = (SELECT tenancy.current_user_id()))"
    ));
    assert!(sql.contains(
        "WITH CHECK (CASE role WHEN 'viewer' THEN COALESCE(tenant_id = ANY ((SELECT tenancy.project_ids('viewer'))::uuid[]), false)"
    ));
    assert!(sql.contains(
        "CREATE INDEX user_project_roles_user_id_idx ON user_project_roles (tenant_id, user_id);"
    ));
}

#[test]
fn roles_are_created_idempotently_with_forced_attributes() {
    let sql = all_sql(&rag_model(), Target::Postgres);
    assert!(sql.contains(
        "IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles WHERE rolname = 'tenancy_app')"
    ));
    assert!(sql.contains(
        "ALTER ROLE tenancy_owner NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;"
    ));
    // The app role is a NOLOGIN group role when the migration creates it; its LOGIN attribute
    // is never forced either way (an existing deployment that logs in as it keeps working),
    // and the application connects as a member login role (`tenancy login-role create`).
    assert!(sql.contains("CREATE ROLE tenancy_app NOLOGIN;"));
    assert!(!sql.contains("CREATE ROLE tenancy_app LOGIN"));
    assert!(sql.contains(
        "ALTER ROLE tenancy_app NOSUPERUSER NOBYPASSRLS NOINHERIT NOCREATEDB NOCREATEROLE NOREPLICATION;"
    ));
    assert!(sql.contains("REVOKE tenancy_owner FROM tenancy_app;"));
    assert!(sql.contains(
        "CREATE TYPE tenancy.project_role AS ENUM ('viewer', 'editor', 'admin', 'owner');"
    ));
    for f in [
        "current_tenant_id()",
        "current_user_id()",
        "project_ids(tenancy.project_role)",
    ] {
        assert!(sql.contains(&format!("REVOKE ALL ON FUNCTION tenancy.{f} FROM PUBLIC;")));
        assert!(sql.contains(&format!(
            "GRANT EXECUTE ON FUNCTION tenancy.{f} TO tenancy_app;"
        )));
        assert!(sql.contains(&format!(
            "ALTER FUNCTION tenancy.{f} OWNER TO tenancy_owner;"
        )));
    }
    // The three helpers have no SET clause (PostgreSQL cannot inline a function that has
    // one); every type and function in them is schema-qualified. The only SET clauses are the
    // operator's key installer's, which no statement of the application calls, and the
    // keep-top-role trigger function's (a trigger is never inlined). The stamp trigger
    // functions have none either: a SET search_path there would make the context helper they
    // call plan again on every call.
    assert_eq!(sql.matches("SET search_path").count(), 2);
    assert!(sql.contains(
        "CREATE OR REPLACE FUNCTION tenancy.keep_top_role()\n  RETURNS trigger\n  LANGUAGE plpgsql\n  SET search_path = pg_catalog, pg_temp\n"
    ));
    assert!(sql.contains(
        "CREATE FUNCTION tenancy.install_context_key(key_id text, secret bytea)\n  RETURNS void\n  LANGUAGE plpgsql\n  SET search_path = pg_catalog, pg_temp\n"
    ));
    // All three read the claims the signed context's verifier returns (contract 3), each as
    // a single inlinable SQL expression.
    assert_eq!(
        sql.matches("pg_catalog.split_part(tenancy.context_claims(), ';', ")
            .count(),
        3
    );
    assert!(!sql.contains("pg_catalog.current_setting('tenancy.context', true), ';'"));
    // The three helpers and context_contract().
    assert_eq!(sql.matches("  LANGUAGE sql\n").count(), 4);
    // The verifier and the installer are PL/pgSQL SECURITY DEFINER without a SET clause.
    for f in ["context_claims()", "install_context(token pg_catalog.text)"] {
        let at = sql
            .find(&format!("CREATE FUNCTION tenancy.{f}"))
            .unwrap_or_else(|| panic!("{f} missing"));
        let head: String = sql[at..].lines().take(6).collect::<Vec<_>>().join("\n");
        assert!(
            head.contains("LANGUAGE plpgsql") && head.contains("SECURITY DEFINER"),
            "{head}"
        );
        assert!(!head.contains("SET search_path"), "{head}");
    }
    assert!(sql.contains("'')::pg_catalog.uuid\n$$;"));
    assert!(sql.contains("'{}')::pg_catalog.uuid[]\n$$;"));
    // Field 3 + rank: the model's roles in order, least privileged first.
    assert!(sql.contains(
        "CASE min_role\n        WHEN 'viewer' THEN 3\n        WHEN 'editor' THEN 4\n        \
         WHEN 'admin' THEN 5\n        WHEN 'owner' THEN 6\n      END"
    ));
}

#[test]
fn custom_settings_rename_everything() {
    let mut model = set_null_model();
    model.settings.helper_schema = "authz".into();
    model.settings.app_role = "web".into();
    model.settings.owner_role = "web_owner".into();
    let sql = all_sql(&model, Target::Postgres);
    assert!(sql.contains("current_setting('authz.context', true)"));
    assert!(!sql.contains("'tenancy.context'"));
    assert!(sql.contains("(SELECT authz.project_ids('editor'))::uuid[]"));
    assert!(sql.contains("TO web\n"));
    assert!(!sql.contains("tenancy."));
    assert!(!sql.contains("tenancy_app"));
}

#[test]
fn long_names_are_cut_to_postgres_limit() {
    let long = "a_table_with_a_really_quite_extraordinarily_long_name_indeed";
    let mut t = table(long, TableKind::Scoped, "long");
    t.columns = vec![uuid_id(), col("another_long_column_name", SqlType::Text)];
    t.primary_key = names(&["id"]);
    t.unique_keys = vec![names(&["another_long_column_name"])];
    t.rules = allow(&[Command::Select], "viewer");
    let sql = all_sql(&small_model(vec![t]), Target::Postgres);
    for word in sql.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')) {
        assert!(word.len() <= 63, "identifier too long: {word}");
    }
    // the policy names were cut too, and stay distinct
    let policies = statements(&sql, &format!("CREATE POLICY {}", &long[..40]));
    assert_eq!(policies.len(), 2);
    assert_ne!(policies[0].lines().next(), policies[1].lines().next());
}

#[test]
fn memberships_without_a_select_rule_still_read_own_rows() {
    let mut model = set_null_model();
    for t in &mut model.tables {
        if t.kind == TableKind::Memberships {
            t.rules.retain(|r| r.command != Command::Select);
        }
    }
    let sql = all_sql(&model, Target::Postgres);
    assert!(sql.contains(
        "FOR SELECT\n  TO tenancy_app\n  USING (user_id = (SELECT tenancy.current_user_id()));"
    ));
    assert!(
        sql.contains("GRANT SELECT, INSERT, DELETE ON TABLE user_project_roles TO tenancy_app;")
    );
}

#[test]
fn citus_emulates_set_null_between_distributed_tables_with_a_trigger() {
    // Citus refuses ON DELETE SET NULL (also the column-list form) on a key holding the
    // distribution column: the key is created without the action and a trigger on the
    // referenced table clears the declared column.
    let sql = all_sql(&set_null_model(), Target::Citus);
    assert!(!sql.contains("SET NULL"), "{sql}");
    assert!(sql.contains(
        "ALTER TABLE notes ADD CONSTRAINT notes_folder_id_fkey FOREIGN KEY (tenant_id, project_id, folder_id)\n    REFERENCES folders (tenant_id, project_id, id);"
    ), "{sql}");
    assert!(sql.contains(
        "  UPDATE public.notes SET folder_id = NULL\n    WHERE tenant_id = OLD.tenant_id AND project_id = OLD.project_id AND folder_id = OLD.id;"
    ), "{sql}");
    assert!(sql.contains(
        "CREATE TRIGGER notes_folder_id_set_null BEFORE DELETE ON public.folders\n  FOR EACH ROW EXECUTE FUNCTION tenancy.notes_folder_id_set_null();"
    ), "{sql}");
    // The PostgreSQL target keeps the declarative action.
    assert!(all_sql(&set_null_model(), Target::Postgres).contains("ON DELETE SET NULL (folder_id)"));
}

#[test]
fn citus_validator_refuses_what_citus_cannot_distribute_with_a_fix() {
    // A global table (a reference table) that references a scoped (distributed) table.
    let mut model = global_and_scoped_tables();
    let customers = model
        .tables
        .iter()
        .find(|t| t.name == "customers")
        .cloned()
        .unwrap_or_else(|| panic!("no customers"));
    let mut countries = model
        .tables
        .iter()
        .find(|t| t.name == "countries")
        .cloned()
        .unwrap_or_else(|| panic!("no countries"));
    countries.columns.push(opt("customer_id", SqlType::Uuid));
    countries.foreign_keys = vec![fk(
        &["customer_id"],
        "customers",
        &["id"],
        OnDelete::Restrict,
    )];
    model.tables.retain(|t| t.name != "countries");
    model.tables.push(countries);
    let problems = tenancy_core::sql::citus_problems(&model);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(
        text.starts_with("table `countries` cannot be distributed on Citus"),
        "{text}"
    );
    assert!(
        text.contains("cannot reference a distributed table"),
        "{text}"
    );
    assert!(
        text.contains("= help: make `countries` a scoped table"),
        "{text}"
    );
    assert!(tenancy_core::output::generate_all(&model, Target::Citus).is_err());
    assert!(customers.kind == TableKind::Scoped);
    // The RAG-like models with a global unique key on the tenants table and SET NULL between
    // scoped tables are accepted.
    assert!(tenancy_core::sql::citus_problems(&rag_model()).is_empty());
    assert!(tenancy_core::sql::citus_problems(&set_null_model()).is_empty());
    // The SET NULL trigger runs with the deleter's rights: a deleter of folders who may not
    // update notes is refused, with the fix.
    let mut model = set_null_model();
    for table in &mut model.tables {
        if table.name == "notes" {
            table.rules.retain(|r| r.command != Command::Update);
        }
    }
    let problems = tenancy_core::sql::citus_problems(&model);
    assert_eq!(problems.len(), 1, "{problems:?}");
    let text = problems[0].to_string();
    assert!(text.contains("with the deleting caller's rights"), "{text}");
    assert!(
        text.contains("= help: allow `editor` to select and `update (folder_id)` on `notes`"),
        "{text}"
    );
}

#[test]
fn citus_distributes_the_tables_an_incremental_migration_creates() {
    use tenancy_core::output::{generate, ExistingOutput, GenerateOptions};
    use tenancy_core::snapshot::SNAPSHOT_FILE;
    let mut model = select_only_model();
    for table in &mut model.tables {
        if table.kind == TableKind::Tenants {
            table.unique_keys.clear();
        }
    }
    let first = generate(
        &model,
        Target::Citus,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap_or_else(|e| panic!("baseline: {e}"));
    let existing = ExistingOutput {
        snapshot: first
            .iter()
            .find(|f| f.path.as_path() == std::path::Path::new(SNAPSHOT_FILE))
            .map(|f| f.contents.clone()),
        migrations: first
            .iter()
            .filter(|f| f.path.starts_with("migrations"))
            .cloned()
            .collect(),
    };
    // Unchanged model: nothing new, accepted.
    assert!(generate(&model, Target::Citus, &existing, GenerateOptions::default()).is_ok());
    let mut grown = model.clone();
    let mut extra = grown
        .tables
        .iter()
        .find(|t| t.kind == TableKind::Scoped)
        .cloned()
        .unwrap_or_else(|| panic!("no scoped table"));
    extra.name = "extra_events".to_owned();
    grown.tables.push(extra);
    let files = generate(&grown, Target::Citus, &existing, GenerateOptions::default())
        .unwrap_or_else(|e| panic!("the incremental Citus migration: {e}"));
    let migration = files
        .iter()
        .find(|f| {
            f.path.starts_with("migrations")
                && !existing.migrations.iter().any(|e| e.path == f.path)
        })
        .unwrap_or_else(|| panic!("no new migration"));
    let text = &migration.contents;
    assert!(
        text.contains("SET LOCAL citus.enable_unsafe_triggers = on;"),
        "{text}"
    );
    assert!(text.contains("CREATE TABLE extra_events ("), "{text}");
    assert!(
        text.contains(
            "SELECT pg_catalog.create_distributed_table('public.extra_events', 'tenant_id', colocate_with => 'public.projects');"
        ),
        "{text}"
    );
    let distributed = text
        .find("create_distributed_table('public.extra_events'")
        .unwrap_or(usize::MAX);
    let key = text
        .find("ALTER TABLE extra_events ADD CONSTRAINT extra_events_tenant_id_project_id_fkey")
        .unwrap_or(0);
    assert!(key > distributed, "{text}");
    // The PostgreSQL target generates the same change.
    let mut pg_first = generate(
        &model,
        Target::Postgres,
        &ExistingOutput::default(),
        GenerateOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    pg_first.retain(|f| !f.path.starts_with("src"));
    let pg_existing = ExistingOutput {
        snapshot: pg_first
            .iter()
            .find(|f| f.path.as_path() == std::path::Path::new(SNAPSHOT_FILE))
            .map(|f| f.contents.clone()),
        migrations: pg_first
            .iter()
            .filter(|f| f.path.starts_with("migrations"))
            .cloned()
            .collect(),
    };
    assert!(generate(
        &grown,
        Target::Postgres,
        &pg_existing,
        GenerateOptions::default()
    )
    .is_ok());
}

#[test]
fn citus_incremental_set_null_on_an_existing_table_is_a_trigger() {
    use tenancy_core::sql::diff::incremental_migrations;
    let mut before = set_null_model();
    for table in &mut before.tables {
        for fk in &mut table.foreign_keys {
            fk.on_delete = OnDelete::NoAction;
        }
    }
    let after = set_null_model();
    let added = incremental_migrations(&before, &after, Target::Citus, Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let text: String = added.iter().map(|m| m.contents.as_str()).collect();
    assert!(!text.contains("SET NULL ("), "{text}");
    assert!(
        text.contains("CREATE TRIGGER notes_folder_id_set_null BEFORE DELETE ON public.folders"),
        "{text}"
    );
    let removed = incremental_migrations(&after, &before, Target::Citus, Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let text: String = removed.iter().map(|m| m.contents.as_str()).collect();
    assert!(
        text.contains("DROP TRIGGER IF EXISTS notes_folder_id_set_null ON public.folders;"),
        "{text}"
    );
    // PostgreSQL keeps the declarative action.
    let pg = incremental_migrations(&before, &after, Target::Postgres, Default::default())
        .unwrap_or_else(|e| panic!("{e}"));
    let text: String = pg.iter().map(|m| m.contents.as_str()).collect();
    assert!(text.contains("ON DELETE SET NULL (folder_id)"), "{text}");
    assert!(!text.contains("CREATE TRIGGER"), "{text}");
}
