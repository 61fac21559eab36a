//! Prometheus metrics of the HTTP layer.

use std::collections::HashMap;
use std::sync::Mutex;

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry, TextEncoder,
};

use hmac::Mac;

use crate::TenantId;

/// The `tenant` label of a tenant: the first 16 hex digits of HMAC-SHA256 under the metrics'
/// label key, so whoever can scrape `/metrics` does not learn tenant ids; an operator who holds
/// the key (or asks [`HttpMetrics::tenant_label`]) can map a label back to its tenant.
fn keyed_label(key: &[u8], tenant: TenantId) -> String {
    let Ok(mut mac) = hmac::Hmac::<sha2::Sha256>::new_from_slice(key) else {
        return OTHER_TENANTS.to_owned();
    };
    mac.update(tenant.as_uuid().as_bytes());
    mac.finalize().into_bytes()[..8]
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Why a request was refused (the `reason` label of `tenancy_http_refused_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalReason {
    /// A token problem (401); the string is [`super::AuthFailure::reason`].
    Token(&'static str),
    /// The user is not a member of the addressed tenant, or it does not exist (404).
    UnknownTenant,
    /// The user holds no role in the addressed project, or it does not exist (404).
    UnknownProject,
    /// The user's role is too low for the operation (403).
    RoleTooLow,
}

impl RefusalReason {
    /// The label value.
    pub fn label(self) -> &'static str {
        match self {
            RefusalReason::Token(reason) => reason,
            RefusalReason::UnknownTenant => "unknown_tenant",
            RefusalReason::UnknownProject => "unknown_project",
            RefusalReason::RoleTooLow => "role_too_low",
        }
    }
}

/// Label used for requests that addressed no (authorized) tenant.
const NO_TENANT: &str = "none";
/// Label shared by every tenant outside the busiest N.
const OTHER_TENANTS: &str = "other";

/// Keeps the label set of the latency histogram bounded: the `capacity` tenants with the most
/// requests get their own label; a tenant that overtakes the least busy labelled one replaces
/// it (whose series is removed); everybody else is `other`.
struct TenantLabels {
    capacity: usize,
    counts: HashMap<TenantId, u64>,
    labelled: Vec<TenantId>,
}

/// Upper bound on tenants whose request counts are tracked for ranking (memory bound).
const MAX_TRACKED_TENANTS: usize = 100_000;

impl TenantLabels {
    /// The tenant of one more request, and the tenant whose series must be removed; `None` for
    /// the shared `other` label.
    fn label_for(&mut self, tenant: TenantId) -> (Option<TenantId>, Option<TenantId>) {
        if self.counts.len() >= MAX_TRACKED_TENANTS && !self.counts.contains_key(&tenant) {
            return (None, None);
        }
        let count = {
            let entry = self.counts.entry(tenant).or_insert(0);
            *entry += 1;
            *entry
        };
        if self.labelled.contains(&tenant) {
            return (Some(tenant), None);
        }
        if self.labelled.len() < self.capacity {
            self.labelled.push(tenant);
            return (Some(tenant), None);
        }
        let least = self
            .labelled
            .iter()
            .enumerate()
            .min_by_key(|(_, t)| self.counts.get(t).copied().unwrap_or(0))
            .map(|(i, t)| (i, *t, self.counts.get(t).copied().unwrap_or(0)));
        match least {
            Some((index, evicted, evicted_count)) if count > evicted_count => {
                self.labelled[index] = tenant;
                (Some(tenant), Some(evicted))
            }
            _ => (None, None),
        }
    }
}

/// The layer's metrics; [`HttpMetrics::render`] gives the Prometheus text format.
pub struct HttpMetrics {
    registry: Registry,
    refused: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    tenants: IntGauge,
    projects: IntGauge,
    pool_connections: IntGauge,
    pool_idle: IntGauge,
    pool_max: IntGauge,
    labels: Mutex<TenantLabels>,
    label_key: Vec<u8>,
}

impl std::fmt::Debug for HttpMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpMetrics").finish_non_exhaustive()
    }
}

impl HttpMetrics {
    /// Metrics whose latency histogram names at most `busiest_tenants` tenants individually.
    pub fn new(busiest_tenants: usize) -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let refused = IntCounterVec::new(
            Opts::new(
                "tenancy_http_refused_total",
                "Requests refused by the tenancy layer, by reason (401 token problems, 404 unknown tenant/project, 403 role too low).",
            ),
            &["reason"],
        )?;
        let latency = HistogramVec::new(
            HistogramOpts::new(
                "tenancy_http_request_duration_seconds",
                "Request latency by tenant (the busiest tenants by a keyed hash of their id, the rest as `other`, unauthenticated as `none`).",
            ),
            &["tenant"],
        )?;
        let errors = IntCounterVec::new(
            Opts::new(
                "tenancy_http_errors_total",
                "Error answers by status and code (e.g. 503 unavailable, 503 timeout, 413 payload_too_large).",
            ),
            &["status", "code"],
        )?;
        let tenants = IntGauge::new("tenancy_tenants", "Number of tenants.")?;
        let projects = IntGauge::new("tenancy_projects", "Number of projects.")?;
        let pool_connections = IntGauge::new(
            "tenancy_db_pool_connections",
            "Open connections of the application database pool.",
        )?;
        let pool_idle = IntGauge::new(
            "tenancy_db_pool_idle_connections",
            "Idle connections of the application database pool.",
        )?;
        let pool_max = IntGauge::new(
            "tenancy_db_pool_max_connections",
            "Maximum connections of the application database pool.",
        )?;
        registry.register(Box::new(refused.clone()))?;
        registry.register(Box::new(latency.clone()))?;
        registry.register(Box::new(errors.clone()))?;
        registry.register(Box::new(tenants.clone()))?;
        registry.register(Box::new(projects.clone()))?;
        registry.register(Box::new(pool_connections.clone()))?;
        registry.register(Box::new(pool_idle.clone()))?;
        registry.register(Box::new(pool_max.clone()))?;
        let mut label_key = uuid::Uuid::new_v4().as_bytes().to_vec();
        label_key.extend_from_slice(uuid::Uuid::new_v4().as_bytes());
        Ok(Self {
            registry,
            refused,
            errors,
            latency,
            tenants,
            projects,
            pool_connections,
            pool_idle,
            pool_max,
            labels: Mutex::new(TenantLabels {
                capacity: busiest_tenants,
                counts: HashMap::new(),
                labelled: Vec::new(),
            }),
            label_key,
        })
    }

    /// The same metrics with `key` as the tenant label key (default: 32 random bytes per
    /// process, so labels change when the process restarts; set one to keep them stable).
    pub fn with_label_key(mut self, key: &[u8]) -> Self {
        self.label_key = key.to_vec();
        self
    }

    /// The `tenant` label `tenant`'s latency series carries when it is among the busiest.
    pub fn tenant_label(&self, tenant: TenantId) -> String {
        keyed_label(&self.label_key, tenant)
    }

    /// Counts one error answer by status and code (done by [`super::trace_requests`]).
    pub fn record_error(&self, status: u16, code: &str) {
        self.errors
            .with_label_values(&[&status.to_string(), code])
            .inc();
    }

    /// Counts one refused request.
    pub fn record_refusal(&self, reason: RefusalReason) {
        self.refused.with_label_values(&[reason.label()]).inc();
    }

    /// Records one request's latency under its tenant's bounded label.
    pub fn observe_request(&self, tenant: Option<TenantId>, seconds: f64) {
        let label = match tenant {
            None => NO_TENANT.to_owned(),
            Some(tenant) => {
                let (labelled, evicted) = match self.labels.lock() {
                    Ok(mut labels) => labels.label_for(tenant),
                    Err(_) => (None, None),
                };
                if let Some(evicted) = evicted {
                    let _ = self
                        .latency
                        .remove_label_values(&[&self.tenant_label(evicted)]);
                }
                labelled.map_or_else(|| OTHER_TENANTS.to_owned(), |t| self.tenant_label(t))
            }
        };
        self.latency.with_label_values(&[&label]).observe(seconds);
    }

    /// Sets the tenant and project counts (read by the service at scrape time).
    pub fn set_entity_counts(&self, tenants: i64, projects: i64) {
        self.tenants.set(tenants);
        self.projects.set(projects);
    }

    /// Sets the pool usage gauges from a sqlx pool.
    pub fn set_pool_usage(&self, pool: &sqlx::PgPool) {
        self.pool_connections.set(i64::from(pool.size()));
        self.pool_idle
            .set(i64::try_from(pool.num_idle()).unwrap_or(i64::MAX));
        self.pool_max
            .set(i64::from(pool.options().get_max_connections()));
    }

    /// Everything in the Prometheus text exposition format.
    pub fn render(&self) -> String {
        let mut buffer = Vec::new();
        if TextEncoder::new()
            .encode(&self.registry.gather(), &mut buffer)
            .is_err()
        {
            return String::new();
        }
        String::from_utf8(buffer).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::new(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn latency_labels_stay_bounded_and_follow_the_busiest() {
        let metrics = HttpMetrics::new(2).unwrap();
        for n in 1..=50 {
            metrics.observe_request(Some(tenant(n)), 0.01);
        }
        // Tenant 7 becomes the busiest: it takes a label.
        for _ in 0..5 {
            metrics.observe_request(Some(tenant(7)), 0.01);
        }
        metrics.observe_request(None, 0.01);
        let text = metrics.render();
        let labels: std::collections::BTreeSet<&str> = text
            .lines()
            .filter(|l| l.starts_with("tenancy_http_request_duration_seconds_count"))
            .filter_map(|l| l.split("tenant=\"").nth(1))
            .filter_map(|l| l.split('"').next())
            .collect();
        assert!(labels.len() <= 4, "{labels:?}");
        assert!(labels.contains("other"));
        assert!(labels.contains("none"));
        assert!(
            labels.contains(metrics.tenant_label(tenant(7)).as_str()),
            "{labels:?}"
        );
        // No label holds a tenant id.
        for n in 1..=50 {
            assert!(!text.contains(&tenant(n).to_string()), "tenant {n} exposed");
        }
        let stable = HttpMetrics::new(2).unwrap().with_label_key(b"k");
        assert_eq!(
            stable.tenant_label(tenant(7)),
            HttpMetrics::new(2)
                .unwrap()
                .with_label_key(b"k")
                .tenant_label(tenant(7))
        );
        assert_eq!(stable.tenant_label(tenant(7)).len(), 16);
    }

    #[test]
    fn refusals_are_counted_by_reason() {
        let metrics = HttpMetrics::new(5).unwrap();
        metrics.record_refusal(RefusalReason::RoleTooLow);
        metrics.record_refusal(RefusalReason::RoleTooLow);
        metrics.record_refusal(RefusalReason::Token("expired_token"));
        let text = metrics.render();
        assert!(text.contains("tenancy_http_refused_total{reason=\"role_too_low\"} 2"));
        assert!(text.contains("tenancy_http_refused_total{reason=\"expired_token\"} 1"));
    }
}
