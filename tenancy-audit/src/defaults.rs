//! `tenancy check --database-url`: PostgreSQL parses every column default of the model as a
//! value of the column's type, in one transaction that is always rolled back (nothing is
//! created; the database needs no generated schema).

use sqlx::PgPool;
use tenancy_core::model::Model;
use tenancy_core::sql::probes::{default_probes, DefaultProbe};

/// A default PostgreSQL refused, with its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefusedDefault {
    /// The default and its column.
    pub probe: DefaultProbe,
    /// What PostgreSQL said.
    pub message: String,
}

/// What [`probe_defaults`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DefaultsReport {
    /// How many defaults were parsed.
    pub probed: usize,
    /// The defaults PostgreSQL refused.
    pub refused: Vec<RefusedDefault>,
}

/// Lets PostgreSQL parse every default of `model` (`SELECT (<default>)::<type>`), each under
/// a savepoint, in a transaction that is rolled back. A refused default is a finding, not an
/// error; an error is a failure to talk to the database.
pub async fn probe_defaults(pool: &PgPool, model: &Model) -> Result<DefaultsReport, sqlx::Error> {
    let probes = default_probes(model);
    let mut report = DefaultsReport {
        probed: probes.len(),
        refused: Vec::new(),
    };
    let mut tx = pool.begin().await?;
    sqlx::raw_sql("SET LOCAL statement_timeout = '5s'")
        .execute(&mut *tx)
        .await?;
    for probe in probes {
        sqlx::raw_sql("SAVEPOINT tenancy_default_probe")
            .execute(&mut *tx)
            .await?;
        // The default is the model's, quoted by the SQL emitter exactly as in the migration.
        let query = sqlx::AssertSqlSafe(probe.query());
        match sqlx::raw_sql(query).execute(&mut *tx).await {
            Ok(_) => {
                sqlx::raw_sql("RELEASE SAVEPOINT tenancy_default_probe")
                    .execute(&mut *tx)
                    .await?;
            }
            Err(sqlx::Error::Database(e)) => {
                sqlx::raw_sql("ROLLBACK TO SAVEPOINT tenancy_default_probe")
                    .execute(&mut *tx)
                    .await?;
                report.refused.push(RefusedDefault {
                    probe,
                    message: e.message().to_owned(),
                });
            }
            Err(other) => return Err(other),
        }
    }
    tx.rollback().await?;
    Ok(report)
}
