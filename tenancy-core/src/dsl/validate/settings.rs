//! The `tenancy` block (settings and roles), table names and the core table kinds.

use super::*;

impl<'a> Checker<'_, 'a> {
    /// Rule: exactly one `tenancy` block in the model; settings are known, given once and
    /// valid SQL names; `roles` is given once, with at least two distinct roles.
    pub(super) fn check_tenancy_blocks(&mut self, files: &[File]) -> Option<Settings> {
        let blocks: Vec<_> = files.iter().flat_map(|f| f.tenancy_blocks.iter()).collect();
        let Some(first) = blocks.first() else {
            self.error(
                Diagnostic::global_error("no `tenancy` block")
                    .with_note("the `tenancy` block declares the project roles every rule refers to")
                    .with_help(
                        "add one to any policy file, for example:\n\n    tenancy {\n        roles = viewer < editor < admin\n    }",
                    ),
            );
            return None;
        };
        for extra in &blocks[1..] {
            self.error(
                Diagnostic::error(
                    "duplicate `tenancy` block",
                    extra.span,
                    "second `tenancy` block",
                )
                .with_secondary(first.span, "first declared here")
                .with_help("merge the settings into one block"),
            );
        }
        let mut settings = Settings::default();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for setting in &first.settings {
            let key = setting.key.name.as_str();
            if !SETTING_NAMES.contains(&key) {
                let mut d = Diagnostic::error(
                    format!("unknown setting `{key}`"),
                    setting.key.span,
                    "not a `tenancy` setting",
                );
                d = match suggest(key, &SETTING_NAMES) {
                    Some(s) => d.with_help(format!("did you mean `{s}`?")),
                    None => d.with_help(
                        "the settings are `owner_role`, `app_role`, `helper_schema`, \
                         `python_package` and `roles`",
                    ),
                };
                self.error(d);
                continue;
            }
            if let Some(prev) = seen.insert(key, setting.key.span) {
                self.error(
                    Diagnostic::error(
                        format!("duplicate setting `{key}`"),
                        setting.key.span,
                        "set again here",
                    )
                    .with_secondary(prev, "first set here"),
                );
                continue;
            }
            if key == "python_package" {
                if self.check_python_package(&setting.value, setting.value_span) {
                    settings.python_package = Some(setting.value.clone());
                }
                continue;
            }
            self.check_identifier(
                &setting.value,
                setting.value_span,
                key.trim_end_matches("_role"),
            );
            let value = setting.value.clone();
            match key {
                "owner_role" => settings.owner_role = value,
                "app_role" => settings.app_role = value,
                _ => settings.helper_schema = value,
            }
        }
        if settings.owner_role == settings.app_role {
            let span = first
                .settings
                .iter()
                .rev()
                .find(|s| s.key.name == "app_role" || s.key.name == "owner_role")
                .map_or(first.span, |s| s.value_span);
            self.error(
                Diagnostic::error(
                    "`owner_role` and `app_role` are the same role",
                    span,
                    "the application would own the tables and bypass row-level security",
                )
                .with_help("use two different roles"),
            );
        }
        self.check_roles(first);
        Some(settings)
    }

    /// Rule: `python_package` is a plain lower-case Python identifier (`[a-z_][a-z0-9_]*`) and
    /// not a Python keyword: it is the import name of the generated package.
    fn check_python_package(&mut self, name: &str, span: Span) -> bool {
        if crate::python::is_package_name(name) {
            return true;
        }
        let suggestion: String = name
            .to_lowercase()
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let suggestion = match suggestion.chars().next() {
            Some(c) if c.is_ascii_digit() => format!("_{suggestion}"),
            None => "tenancy_models".to_owned(),
            _ => suggestion,
        };
        let suggestion = if crate::python::is_package_name(&suggestion) {
            suggestion
        } else {
            format!("{suggestion}_db")
        };
        self.error(
            Diagnostic::error(
                format!("invalid Python package name `{name}`"),
                span,
                "the import name of the generated Python package",
            )
            .with_note("it must match `[a-z_][a-z0-9_]*` and not be a Python keyword")
            .with_help(format!("write `\"{suggestion}\"`")),
        );
        false
    }

    /// Rule: `roles = a < b ...` appears once, with at least two distinct valid names.
    pub(super) fn check_roles(&mut self, block: &crate::dsl::ast::TenancyBlock) {
        let Some(decl) = block.roles.first() else {
            self.error(
                Diagnostic::error(
                    "the `tenancy` block declares no roles",
                    block.span,
                    "`roles` missing in this block",
                )
                .with_help("add the roles, lowest first: `roles = viewer < editor < admin`"),
            );
            return;
        };
        for extra in &block.roles[1..] {
            self.error(
                Diagnostic::error("duplicate `roles` setting", extra.span, "set again here")
                    .with_secondary(decl.span, "first set here"),
            );
        }
        let mut names: Vec<String> = Vec::new();
        let mut seen: HashMap<&str, Span> = HashMap::new();
        for role in &decl.roles {
            if let Some(prev) = seen.insert(role.name.as_str(), role.span) {
                self.error(
                    Diagnostic::error(
                        format!("duplicate role `{}`", role.name),
                        role.span,
                        "declared again here",
                    )
                    .with_secondary(prev, "first declared here")
                    .with_help("each role appears once, lowest first"),
                );
                continue;
            }
            self.check_identifier(&role.name, role.span, "role");
            names.push(role.name.clone());
        }
        if decl.roles.len() < 2 {
            self.error(
                Diagnostic::error(
                    "fewer than two roles",
                    decl.span,
                    "at least two roles are needed",
                )
                .with_note(
                    "rules say which role a command needs; with one role there is nothing to order",
                )
                .with_help("declare them lowest first: `roles = viewer < editor < admin`"),
            );
        }
        self.roles = Some(names);
    }

    // ---- tables -------------------------------------------------------------------

    /// Rule: table names are valid SQL names and unique across all files.
    pub(super) fn check_table_names(&mut self, decls: &[&'a TableDecl]) {
        for decl in decls {
            let name = decl.name.name.as_str();
            if let Some(first) = self.tables.get(name) {
                let first_span = first.name.span;
                self.error(
                    Diagnostic::error(
                        format!("duplicate table `{name}`"),
                        decl.name.span,
                        "declared again here",
                    )
                    .with_secondary(first_span, "first declared here")
                    .with_help("rename one of them or merge the declarations"),
                );
                continue;
            }
            self.check_identifier(name, decl.name.span, "table");
            self.tables.insert(name, decl);
        }
    }

    /// Rule: exactly one `tenants`, one `projects` and one `memberships` table; at most one
    /// `tenant_memberships` table.
    pub(super) fn check_core_kinds(&mut self, decls: &[&TableDecl]) {
        for kind in [
            TableKind::Tenants,
            TableKind::Projects,
            TableKind::Memberships,
            TableKind::TenantMemberships,
        ] {
            let of_kind: Vec<&&TableDecl> = decls.iter().filter(|d| d.kind == Some(kind)).collect();
            let keyword = kind.keyword();
            match of_kind.split_first() {
                None if kind == TableKind::TenantMemberships => {}
                None => {
                    let example = match kind {
                        TableKind::Memberships => "memberships table memberships {\n        allow select to viewer\n    }".to_owned(),
                        _ => format!("{keyword} table {keyword} {{\n        name text\n        allow select to viewer\n    }}"),
                    };
                    self.error(
                        Diagnostic::global_error(format!("no `{keyword}` table"))
                            .with_note("the tenancy core needs one tenants, one projects and one memberships table")
                            .with_help(format!("declare it, for example:\n\n    {example}")),
                    );
                }
                Some((first, rest)) => {
                    for extra in rest {
                        self.error(
                            Diagnostic::error(
                                format!("more than one `{keyword}` table"),
                                extra.kind_span,
                                format!("second `{keyword}` table"),
                            )
                            .with_secondary(first.kind_span, "first one here")
                            .with_help(format!(
                                "a model has exactly one `{keyword}` table; declare the other one as `scoped` or `global`"
                            )),
                        );
                    }
                }
            }
        }
    }
}
