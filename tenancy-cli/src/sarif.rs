//! `tenancy audit --format sarif`: the report as a SARIF 2.1.0 log whose findings point at
//! the declarations in the policy files (`tenancy_audit::sarif`).

use std::path::Path;

use tenancy_audit::sarif::{to_sarif, PolicyIndex};
use tenancy_audit::Report;

/// Prints `report` as SARIF; the policy files under `policies` locate the findings (a
/// directory that cannot be read only leaves them without a location).
pub fn print(report: &Report, policies: &Path) {
    let files: Vec<(String, String)> = tenancy_core::dsl::read_dir(policies)
        .unwrap_or_default()
        .into_iter()
        .map(|f| (f.name, f.text))
        .collect();
    println!("{}", to_sarif(report, &PolicyIndex::new(&files)));
}
