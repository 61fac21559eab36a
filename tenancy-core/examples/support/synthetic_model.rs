//! The synthetic model both generator benchmarks time: `bench-isolation` (through
//! `#[path]`) and the `emit_timing` example. One copy, so their numbers are about the same text.

use std::fmt::Write as _;

/// The `.tenancy` text of a model with `tables` tables: the `tenancy` block and the three core
/// tables of `policies/rag.tenancy`, then scoped tables each referencing the previous one.
pub fn synthetic_model(tables: usize) -> String {
    let mut text = String::from(
        "tenancy {\n    owner_role = \"tenancy_owner\"\n    app_role = \"tenancy_app\"\n    \
         helper_schema = \"tenancy\"\n    roles = viewer < editor < admin < owner\n}\n\n\
         /// Tenants.\ntenants table tenants {\n    name text\n    slug text\n    \
         created_at timestamptz default now()\n\n    unique (slug)\n    allow select to viewer\n}\n\n\
         /// Projects.\nprojects table projects {\n    name text\n    slug text\n    \
         created_at timestamptz default now()\n\n    unique (slug)\n    allow select to viewer\n    \
         allow update to admin\n}\n\n\
         /// Memberships.\nmemberships table user_project_roles {\n    granted_by uuid?\n    \
         granted_at timestamptz default now()\n\n    allow select to viewer\n    \
         allow insert, update, delete to admin\n}\n",
    );
    for n in 0..tables.saturating_sub(3) {
        let parent = if n == 0 {
            String::new()
        } else {
            format!(
                "    parent_id uuid? references t_{:03}(id) on delete set null\n",
                n - 1
            )
        };
        // Writing into a String cannot fail.
        let _ = write!(
            text,
            "\n/// Synthetic table {n}.\nscoped table t_{n:03} {{\n    id uuid default gen_random_uuid()\n\
             {parent}    name text\n    amount integer default 0\n    note text?\n    \
             attributes jsonb default '{{}}'\n    created_at timestamptz default now()\n\n    \
             primary key (id)\n    index (created_at)\n\n    allow select to viewer\n    \
             allow insert, update to editor\n    allow delete to admin\n}}\n"
        );
    }
    text
}
