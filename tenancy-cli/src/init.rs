//! `tenancy init`: scaffolds a new project (policy file with the core, the generated folder,
//! a README section) and refuses to overwrite anything.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

/// `tenancy init` arguments.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// Directory of the project (created when missing).
    #[arg(long, default_value = ".", value_name = "DIR")]
    pub dir: PathBuf,
    /// Name of the policy file (`policies/<NAME>.tenancy`), `[a-z][a-z0-9_]*`.
    #[arg(long, default_value = "app", value_name = "NAME")]
    pub name: String,
    /// A checkout of the tenancy repository: the repository crate then depends on its
    /// `tenancy-runtime` by path instead of by version.
    #[arg(long, value_name = "DIR")]
    pub tenancy_path: Option<PathBuf>,
}

/// The manifest of the generated repository crate (`generated/Cargo.toml`), which
/// `tenancy generate` never overwrites. `runtime` is the `tenancy-runtime` dependency.
fn crate_manifest(name: &str, runtime: &str) -> String {
    format!(
        r#"# The repositories `tenancy generate` writes into src/ (do not edit src/ by hand).
# This manifest is yours: tenancy generate never touches it.
[package]
name = "{name}-tenancy"
version = "0.1.0"
edition = "2021"
publish = false

[lib]
path = "src/lib.rs"

[dependencies]
tenancy-runtime = {runtime}
chrono = {{ version = "0.4", default-features = false, features = ["clock", "serde", "std"] }}
pgvector = {{ version = "0.4", features = ["sqlx", "serde"] }}
serde = {{ version = "1", features = ["derive"] }}
serde_json = "1"
uuid = {{ version = "1", features = ["v4", "serde"] }}
# No sqlx here: the repositories use the runtime's (`tenancy_runtime::sqlx`).
"#
    )
}

/// The policy file `init` writes: the settings block and the three core tables, with an
/// example scoped table left commented out.
const POLICY: &str = r#"// Policies of this project: `tenancy check` validates them, `tenancy generate` turns them
// into generated/migrations (SQL with row-level security) and the repository crate.
// Language reference: docs/dsl.md of the tenancy repository.

tenancy {
    owner_role = "tenancy_owner"
    app_role = "tenancy_app"
    helper_schema = "tenancy"
    roles = viewer < editor < admin < owner
}

/// One customer organisation. Rows are visible only inside their own tenant.
tenants table tenants {
    name text
    slug text
    created_at timestamptz default now()

    unique (slug)
    allow select to viewer
}

/// A product of a tenant; every tenant-owned row belongs to exactly one project.
projects table projects {
    name text
    slug text
    created_at timestamptz default now()

    unique (slug)
    allow select to viewer
    allow update to admin
}

/// Who holds which role in which project.
memberships table user_project_roles {
    granted_by uuid?
    granted_at timestamptz default now()

    allow select to viewer
    allow insert, update, delete to admin
}

// Your tables: every scoped table gets tenant_id and project_id, keys and indexes led by
// them, and row-level security from its rules. For example:
//
// /// A note in a project.
// scoped table notes {
//     id uuid default gen_random_uuid()
//     body text
//     created_at timestamptz default now()
//
//     primary key (id)
//     allow select to viewer
//     allow insert, update to editor
//     allow delete to admin
// }
"#;

/// The README section `init` writes next to the policies.
const README_SECTION: &str = r#"## Tenant isolation (tenancy)

The tables and their access rules live in `policies/*.tenancy`; `generated/` is written by
`tenancy generate` and committed (review its diff like code).

```sh
tenancy check                                   # every policy error at once
tenancy generate                                # generated/migrations + the repository crate
tenancy generate --check                        # in CI: fails when generated/ is stale
tenancy migrate apply --database-url $ADMIN_URL # apply the migrations (owner or superuser)
tenancy key install --kid k1 --generate --out context.key --database-url $ADMIN_URL
tenancy login-role create myapp --password-file app.password --database-url $ADMIN_URL
tenancy audit --database-url $ADMIN_URL         # the live database against the policies
```

The application connects as that login role (`myapp`, a member of the NOLOGIN group role
`tenancy_app`; never the owner, never a superuser), gets its signing key from `TENANCY_CONTEXT_KEY_FILE=context.key`, builds
its pool with `tenancy_runtime::pool::connect` and calls `Tenancy::check()` at startup.
"#;

/// Writes the scaffold below `args.dir`; nothing is written when any of its files exists.
pub fn run(args: &InitArgs) -> Result<Vec<PathBuf>> {
    let valid_name = args
        .name
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_lowercase() || (i > 0 && (b.is_ascii_digit() || b == b'_')));
    if args.name.is_empty() || !valid_name {
        bail!(
            "the policy file name {:?} does not match [a-z][a-z0-9_]*",
            args.name
        );
    }
    let runtime = match &args.tenancy_path {
        Some(checkout) => {
            let runtime = checkout.join("tenancy-runtime");
            if !runtime.join("Cargo.toml").is_file() {
                bail!(
                    "{} is not a tenancy checkout (no tenancy-runtime/Cargo.toml)",
                    checkout.display()
                );
            }
            let absolute = fs::canonicalize(&runtime)
                .with_context(|| format!("could not resolve {}", runtime.display()))?;
            format!("{{ path = {:?} }}", absolute.display().to_string())
        }
        None => format!("\"{}\"", env!("CARGO_PKG_VERSION")),
    };
    let manifest = crate_manifest(&args.name, &runtime);
    let files = [
        (
            args.dir
                .join("policies")
                .join(format!("{}.tenancy", args.name)),
            POLICY.to_owned(),
        ),
        (
            args.dir
                .join("generated")
                .join("migrations")
                .join(".gitkeep"),
            String::new(),
        ),
        (args.dir.join("TENANCY.md"), README_SECTION.to_owned()),
        (args.dir.join("generated").join("Cargo.toml"), manifest),
    ];
    if let Some((existing, _)) = files.iter().find(|(path, _)| path.exists()) {
        bail!(
            "{} already exists; tenancy init writes only into a project without it (nothing was written)",
            existing.display()
        );
    }
    let policies = args.dir.join("policies");
    if policies.is_dir() && has_policy_files(&policies)? {
        bail!(
            "{} already holds policy files; tenancy init does not add a second core (nothing was written)",
            policies.display()
        );
    }
    let mut written = Vec::new();
    for (path, contents) in files {
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("could not create {}", parent.display()))?;
        }
        fs::write(&path, &contents)
            .with_context(|| format!("could not write {}", path.display()))?;
        written.push(path);
    }
    Ok(written)
}

/// Whether `dir` holds a `*.tenancy` file.
fn has_policy_files(dir: &Path) -> Result<bool> {
    for entry in fs::read_dir(dir).with_context(|| format!("could not read {}", dir.display()))? {
        let path = entry?.path();
        if path.extension().is_some_and(|e| e == "tenancy") {
            return Ok(true);
        }
    }
    Ok(false)
}
