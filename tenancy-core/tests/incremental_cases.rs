//! The kinds of policy change the incremental migration generator supports, as edits of the
//! real `policies/rag.tenancy`. Shared by the snapshot tests (`incremental_diff.rs`) and the
//! live tests of `tenancy-migrate`, which apply each case on a real database.

#![allow(dead_code, clippy::expect_used, clippy::unwrap_used)]

use std::path::PathBuf;

use tenancy_core::dsl::{compile, SourceFile};
use tenancy_core::model::Model;

/// The real policy text.
pub fn base_policy() -> String {
    // Every crate of the workspace sits next to `policies/`.
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/rag/policies/rag.tenancy");
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// Compiles policy text into a model, panicking with the diagnostics on errors.
pub fn model_of(text: &str) -> Model {
    let sources = [SourceFile::new("rag.tenancy", text)];
    let (model, diagnostics) = compile(&sources);
    assert!(
        !diagnostics.has_errors(),
        "{}",
        diagnostics.render(&sources, false)
    );
    model.expect("model")
}

/// Replaces exactly one occurrence of `from` (the fixture must still match the policies).
pub fn replace_once(text: &str, from: &str, to: &str) -> String {
    assert_eq!(
        text.matches(from).count(),
        1,
        "the policy fixture no longer contains exactly one `{from}`"
    );
    text.replacen(from, to, 1)
}

/// One kind of change: a name, the edit, and whether it needs `--allow-data-loss`.
pub struct Case {
    /// Snapshot and test name.
    pub name: &'static str,
    /// Turns the base policy text into the changed one.
    pub edit: fn(&str) -> String,
    /// The change deletes data (dropped table or column).
    pub data_loss: bool,
    /// How many migration files the change produces.
    pub files: usize,
}

/// Every supported kind of change.
pub fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "new_rule",
            edit: |t| {
                replace_once(
                    t,
                    "    allow insert to viewer where asked_by = current_user\n    allow delete to admin\n",
                    "    allow insert to viewer where asked_by = current_user\n    allow update to editor\n    allow delete to admin\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "removed_rule",
            edit: |t| {
                replace_once(
                    t,
                    "    allow insert to viewer where asked_by = current_user\n    allow delete to admin\n",
                    "    allow insert to viewer where asked_by = current_user\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "changed_min_role",
            edit: |t| {
                replace_once(
                    t,
                    "    allow update to admin\n    allow delete to admin\n}\n\n/// A retrievable",
                    "    allow update to admin\n    allow delete to owner\n}\n\n/// A retrievable",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_nullable_column",
            edit: |t| {
                replace_once(
                    t,
                    "    source_uri text?\n",
                    "    source_uri text?\n    summary text?\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_not_null_column_with_default",
            edit: |t| {
                replace_once(
                    t,
                    "    token_count integer\n",
                    "    token_count integer\n    language text default 'en'\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_table",
            edit: |t| {
                format!(
                    "{t}\n/// A user's rating of a response.\n\
                     scoped table feedback {{\n\
                     \x20   id uuid default gen_random_uuid()\n\
                     \x20   response_id uuid references responses(id) on delete cascade\n\
                     \x20   rating smallint\n\
                     \x20   comment text?\n\
                     \x20   created_at timestamptz default now()\n\
                     \n\
                     \x20   primary key (id)\n\
                     \n\
                     \x20   allow select to viewer\n\
                     \x20   allow insert, update to viewer\n\
                     \x20   allow delete to admin\n\
                     }}\n"
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_index",
            edit: |t| {
                replace_once(
                    t,
                    "    primary key (id)\n    index (response_id)\n",
                    "    primary key (id)\n    index (response_id)\n    index (verdict, created_at)\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_unique_key",
            edit: |t| {
                replace_once(
                    t,
                    "    primary key (id)\n    index (asked_by)\n",
                    "    primary key (id)\n    unique (asked_by, created_at)\n    index (asked_by)\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "changed_default",
            edit: |t| {
                replace_once(
                    t,
                    "    verdict text default 'unverified'\n",
                    "    verdict text default 'pending'\n",
                )
            },
            data_loss: false,
            files: 1,
        },
        Case {
            name: "new_role_used_by_a_rule",
            edit: |t| {
                let t = replace_once(
                    t,
                    "roles = viewer < editor < admin < owner",
                    "roles = viewer < editor < reviewer < admin < owner",
                );
                replace_once(
                    &t,
                    "    claim text\n    verdict text default 'unverified'\n    score real?\n    created_at timestamptz default now()\n\n    primary key (id)\n    index (response_id)\n\n    allow select to viewer\n    allow insert, update to editor\n    allow delete to admin\n",
                    "    claim text\n    verdict text default 'unverified'\n    score real?\n    created_at timestamptz default now()\n\n    primary key (id)\n    index (response_id)\n\n    allow select to viewer\n    allow insert to editor\n    allow update to reviewer\n    allow delete to admin\n",
                )
            },
            data_loss: false,
            files: 2,
        },
        Case {
            name: "appended_role",
            edit: |t| {
                replace_once(
                    t,
                    "roles = viewer < editor < admin < owner",
                    "roles = viewer < editor < admin < owner < auditor",
                )
            },
            data_loss: false,
            // the enum value, then (after it commits) the role ceiling that names it
            files: 2,
        },
        Case {
            name: "dropped_column",
            edit: |t| replace_once(t, "    source_uri text?\n", ""),
            data_loss: true,
            files: 1,
        },
        Case {
            name: "dropped_table",
            edit: |t| {
                let start = t
                    .find("/// Embedding models known to the platform")
                    .expect("embedding_models in the fixture");
                let end = start + t[start..].find("\n}\n").expect("end of table") + 3;
                format!("{}{}", &t[..start], &t[end..])
            },
            data_loss: true,
            files: 1,
        },
    ]
}
