//! Reading `#[derive(TenantScoped)]` structs from Rust source files (the CLI's `--rust`).

use crate::dsl::SourceFile;

use super::{derive_table, table_to_dsl, DerivedTable};

/// Why Rust sources could not be turned into tables.
#[derive(Debug, thiserror::Error)]
#[error("{}", problems.join("\n"))]
pub struct DeriveSourceError {
    /// One line per problem: `file: struct `Name` (line N): message`, or a parse error.
    pub problems: Vec<String>,
}

/// True when `attrs` hold a `#[derive(...)]` naming `TenantScoped` (by any path).
fn derives_tenant_scoped(attrs: &[syn::Attribute]) -> bool {
    attrs
        .iter()
        .filter(|a| a.path().is_ident("derive"))
        .any(|a| {
            let mut found = false;
            let _ = a.parse_nested_meta(|meta| {
                if meta
                    .path
                    .segments
                    .last()
                    .is_some_and(|s| s.ident == "TenantScoped")
                {
                    found = true;
                }
                Ok(())
            });
            found
        })
}

/// Every `#[derive(TenantScoped)]` struct in `items` (inline modules included), in order.
fn collect_structs(items: &[syn::Item], out: &mut Vec<syn::DeriveInput>) {
    for item in items {
        match item {
            syn::Item::Struct(item) if derives_tenant_scoped(&item.attrs) => {
                out.push(syn::DeriveInput::from(item.clone()));
            }
            syn::Item::Mod(syn::ItemMod {
                content: Some((_, items)),
                ..
            }) => collect_structs(items, out),
            _ => {}
        }
    }
}

/// The 1-based line of `struct <name>` in `text`, if it can be found.
fn struct_line(text: &str, name: &str) -> Option<usize> {
    let needle = format!("struct {name}");
    text.lines()
        .position(|line| {
            line.find(&needle).is_some_and(|at| {
                let rest = &line[at + needle.len()..];
                !rest.starts_with(|c: char| c.is_alphanumeric() || c == '_')
            })
        })
        .map(|i| i + 1)
}

/// The tables of every `#[derive(TenantScoped)]` struct in one Rust source file, in
/// declaration order, built by the same code as the derive macro. Every problem in every
/// struct is reported.
pub fn tables_in_source(file: &SourceFile) -> Result<Vec<DerivedTable>, DeriveSourceError> {
    let parsed = syn::parse_file(&file.text).map_err(|error| DeriveSourceError {
        problems: vec![format!("{}: not valid Rust: {error}", file.name)],
    })?;
    let mut structs = Vec::new();
    collect_structs(&parsed.items, &mut structs);
    let mut tables = Vec::new();
    let mut problems = Vec::new();
    for input in &structs {
        match derive_table(input) {
            Ok(table) => tables.push(table),
            Err(error) => {
                let name = input.ident.to_string();
                let at = match struct_line(&file.text, &name) {
                    Some(line) => format!("{}:{line}", file.name),
                    None => file.name.clone(),
                };
                for error in error {
                    problems.push(format!("{at}: struct `{name}`: {error}"));
                }
            }
        }
    }
    if problems.is_empty() {
        Ok(tables)
    } else {
        Err(DeriveSourceError { problems })
    }
}

/// Turns Rust source files into policy sources: one `.tenancy` text per
/// `#[derive(TenantScoped)]` struct ([`table_to_dsl`]), named `<file>:<line> (struct Name)`
/// so that a diagnostic on it says which struct it is about. Compile them after the
/// `tenancy { }` block and the core tables (`crate::dsl::compile`) to get the merged,
/// validated model; tables keep the order of the files and of the structs in each file.
pub fn derived_policy_sources(rust: &[SourceFile]) -> Result<Vec<SourceFile>, DeriveSourceError> {
    let mut out = Vec::new();
    let mut problems = Vec::new();
    for file in rust {
        match tables_in_source(file) {
            Ok(tables) => {
                for derived in &tables {
                    let name = derived.struct_ident.to_string();
                    let at = match struct_line(&file.text, &name) {
                        Some(line) => format!("{}:{line}", file.name),
                        None => file.name.clone(),
                    };
                    out.push(SourceFile::new(
                        format!("{at} (struct {name})"),
                        table_to_dsl(&derived.table),
                    ));
                }
            }
            Err(error) => problems.extend(error.problems),
        }
    }
    if problems.is_empty() {
        Ok(out)
    } else {
        Err(DeriveSourceError { problems })
    }
}
