//! Reading `#[derive(TenantScoped)]` structs from Rust source files (the CLI's `--rust`).

use crate::dsl::ast;
use crate::dsl::{Diagnostics, SourceFile};
use crate::model::Model;

use super::spans::SpanMap;
use super::{attrs, derive_table, DerivedTable, Errors};

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

/// The merged model of `policies` and every `#[derive(TenantScoped)]` struct in the Rust
/// files `rust`: each struct is read into a table declaration spanned on its Rust tokens,
/// and the declarations are validated together with the parsed policy files by the one DSL
/// validator (references, roles, cycles and every table rule). Tables keep the order of the
/// files and of the structs in each file, after the policies' tables.
///
/// Returns the model (only without errors), the diagnostics and the sources to render them
/// with ([`Diagnostics::render`]): the policy files, then the Rust files, so a problem in a
/// derived table is shown on the Rust line that declares it. Misuse of the attributes
/// themselves (syntax, field types) is a [`DeriveSourceError`], every problem at once.
pub fn compile_with_rust(
    policies: &[SourceFile],
    rust: &[SourceFile],
) -> Result<(Option<Model>, Diagnostics, Vec<SourceFile>), DeriveSourceError> {
    let mut sources = policies.to_vec();
    let mut built = Vec::new();
    let mut problems = Vec::new();
    for file in rust {
        let index = sources.len();
        sources.push(file.clone());
        let parsed = match syn::parse_file(&file.text) {
            Ok(parsed) => parsed,
            Err(error) => {
                problems.push(format!("{}: not valid Rust: {error}", file.name));
                continue;
            }
        };
        let mut structs = Vec::new();
        collect_structs(&parsed.items, &mut structs);
        let mut spans = SpanMap::located(index, &file.text);
        let mut tables = Vec::new();
        for input in &structs {
            let mut errors = Errors::default();
            let table = attrs::build(input, &mut errors, &mut spans);
            match (errors.finish(), table) {
                (Ok(()), Some(table)) => tables.push(table.decl),
                (Ok(()), None) => {}
                (Err(error), _) => {
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
        built.push(ast::File {
            tables,
            ..ast::File::default()
        });
    }
    if !problems.is_empty() {
        return Err(DeriveSourceError { problems });
    }
    let (model, diagnostics) = crate::dsl::compile_with(policies, built);
    Ok((model, diagnostics, sources))
}
