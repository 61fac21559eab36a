//! The seed file format: parsing with spans, and the checks that need no database.

use std::collections::HashSet;
use std::ops::Range;

use serde::Deserialize;
use tenancy_runtime::admin::{validate_slug, validate_text, AdminError};
use tenancy_runtime::UserId;
use toml::Spanned;
use uuid::Uuid;

use crate::SeedError;

/// A validated seed file: the tenants, their projects and the projects' members.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedFile {
    /// The file's name as given (used in error messages).
    pub path: String,
    /// The tenants, in file order.
    pub tenants: Vec<SeedTenant>,
}

/// A `[[tenant]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedTenant {
    /// Natural key.
    pub slug: String,
    /// Display name (used only when the tenant is created).
    pub name: String,
    /// Line of the entry.
    pub line: usize,
    /// The `[[tenant.project]]` entries.
    pub projects: Vec<SeedProject>,
}

/// A `[[tenant.project]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedProject {
    /// Natural key within the tenant.
    pub slug: String,
    /// Display name (used only when the project is created).
    pub name: String,
    /// Line of the entry.
    pub line: usize,
    /// The `[[tenant.project.member]]` entries.
    pub members: Vec<SeedMember>,
}

/// A `[[tenant.project.member]]` entry.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedMember {
    /// The user's id at the identity provider (there is no users table).
    pub user: UserId,
    /// The role to hold in the project.
    pub role: String,
    /// For display in the plan only; never stored in the database.
    pub email: Option<String>,
    /// Line of the entry.
    pub line: usize,
    /// Line of the `role` value.
    pub role_line: usize,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    tenant: Vec<Spanned<RawTenant>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTenant {
    slug: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    project: Vec<Spanned<RawProject>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProject {
    slug: Spanned<String>,
    name: Spanned<String>,
    #[serde(default)]
    member: Vec<Spanned<RawMember>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMember {
    user: Spanned<String>,
    role: Spanned<String>,
    #[serde(default)]
    email: Option<Spanned<String>>,
}

/// Turns byte offsets of one text into 1-based lines and columns.
struct Lines<'a> {
    path: &'a str,
    text: &'a str,
}

impl Lines<'_> {
    fn line(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        self.text.as_bytes()[..end]
            .iter()
            .filter(|b| **b == b'\n')
            .count()
            + 1
    }

    fn column(&self, span: &Range<usize>) -> usize {
        let end = span.start.min(self.text.len());
        let line_start = self.text.as_bytes()[..end]
            .iter()
            .rposition(|b| *b == b'\n')
            .map_or(0, |i| i + 1);
        self.text
            .get(line_start..end)
            .map_or(1, |prefix| prefix.chars().count() + 1)
    }

    fn error(&self, span: &Range<usize>, message: impl Into<String>) -> SeedError {
        SeedError::At {
            file: self.path.to_owned(),
            line: self.line(span),
            message: message.into(),
        }
    }

    fn admin(&self, span: &Range<usize>, error: AdminError) -> SeedError {
        self.error(span, error.to_string())
    }
}

impl SeedFile {
    /// Parses and checks `text` (the contents of `path`): the TOML syntax, the known keys, the
    /// slugs, names and user ids, and that no tenant, project or member appears twice. Every
    /// error names `path:line`. Roles are checked against the database when the seed is
    /// applied.
    pub fn parse(path: &str, text: &str) -> Result<SeedFile, SeedError> {
        let lines = Lines { path, text };
        let raw: RawFile = toml::from_str(text).map_err(|error| match error.span() {
            Some(span) => SeedError::At {
                file: path.to_owned(),
                line: lines.line(&span),
                message: format!(
                    "{} (column {})",
                    error.message().trim_end(),
                    lines.column(&span)
                ),
            },
            None => SeedError::File {
                file: path.to_owned(),
                message: error.message().trim_end().to_owned(),
            },
        })?;

        let mut tenants = Vec::new();
        let mut tenant_slugs = HashSet::new();
        for tenant in raw.tenant {
            let tenant_span = tenant.span();
            let tenant = tenant.into_inner();
            validate_slug("tenant", tenant.slug.get_ref())
                .map_err(|e| lines.admin(&tenant.slug.span(), e))?;
            validate_text("tenant name", tenant.name.get_ref())
                .map_err(|e| lines.admin(&tenant.name.span(), e))?;
            if !tenant_slugs.insert(tenant.slug.get_ref().clone()) {
                return Err(lines.error(
                    &tenant.slug.span(),
                    format!("tenant `{}` appears twice", tenant.slug.get_ref()),
                ));
            }
            let mut projects = Vec::new();
            let mut project_slugs = HashSet::new();
            for project in tenant.project {
                let project_span = project.span();
                let project = project.into_inner();
                validate_slug("project", project.slug.get_ref())
                    .map_err(|e| lines.admin(&project.slug.span(), e))?;
                validate_text("project name", project.name.get_ref())
                    .map_err(|e| lines.admin(&project.name.span(), e))?;
                if !project_slugs.insert(project.slug.get_ref().clone()) {
                    return Err(lines.error(
                        &project.slug.span(),
                        format!(
                            "project `{}` appears twice in tenant `{}`",
                            project.slug.get_ref(),
                            tenant.slug.get_ref()
                        ),
                    ));
                }
                let mut members = Vec::new();
                let mut users = HashSet::new();
                for member in project.member {
                    let member_span = member.span();
                    let member = member.into_inner();
                    let user = Uuid::parse_str(member.user.get_ref()).map_err(|_| {
                        lines.error(
                            &member.user.span(),
                            format!(
                                "user {:?} is not a UUID (user ids come from the identity provider)",
                                member.user.get_ref()
                            ),
                        )
                    })?;
                    if !users.insert(user) {
                        return Err(lines.error(
                            &member.user.span(),
                            format!(
                                "user {user} appears twice in project `{}/{}`",
                                tenant.slug.get_ref(),
                                project.slug.get_ref()
                            ),
                        ));
                    }
                    if !tenancy_runtime::is_valid_role_name(member.role.get_ref()) {
                        return Err(lines.error(
                            &member.role.span(),
                            format!("role {:?} is not a role name", member.role.get_ref()),
                        ));
                    }
                    let email = match member.email {
                        Some(email) => {
                            validate_text("email", email.get_ref())
                                .map_err(|e| lines.admin(&email.span(), e))?;
                            Some(email.into_inner())
                        }
                        None => None,
                    };
                    members.push(SeedMember {
                        user: UserId::new(user),
                        role_line: lines.line(&member.role.span()),
                        role: member.role.into_inner(),
                        email,
                        line: lines.line(&member_span),
                    });
                }
                projects.push(SeedProject {
                    slug: project.slug.into_inner(),
                    name: project.name.into_inner(),
                    line: lines.line(&project_span),
                    members,
                });
            }
            tenants.push(SeedTenant {
                slug: tenant.slug.into_inner(),
                name: tenant.name.into_inner(),
                line: lines.line(&tenant_span),
                projects,
            });
        }
        Ok(SeedFile {
            path: path.to_owned(),
            tenants,
        })
    }

    /// Reads and parses the file at `path`.
    pub fn read(path: &std::path::Path) -> Result<SeedFile, SeedError> {
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| SeedError::File {
            file: name.clone(),
            message: format!("cannot read it: {error}"),
        })?;
        Self::parse(&name, &text)
    }

    /// Numbers of tenants, projects and memberships the file declares.
    pub fn counts(&self) -> crate::Counts {
        let projects = self.tenants.iter().flat_map(|t| &t.projects);
        crate::Counts {
            tenants: self.tenants.len(),
            projects: projects.clone().count(),
            memberships: projects.map(|p| p.members.len()).sum(),
        }
    }
}
