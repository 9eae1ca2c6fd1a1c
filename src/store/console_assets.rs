//! The console's asset table: one page of the columns the table shows (not the API's whole
//! `view`), with the filters and sort orders the page offers, and the filter's total. Each page
//! is one query over indexed columns plus one count, so it stays fast with many assets.

use sqlx::FromRow;

use super::{Filter, Store};
use crate::model::{AssetState, Mac};

/// A row of the console's asset table.
#[derive(Debug, Clone, FromRow)]
pub struct AssetListRow {
    pub id: String,
    pub hostname: String,
    pub state: String,
    /// JSON array, as stored.
    pub macs: String,
    /// JSON array, as stored.
    pub tags: String,
    pub bmc_address: Option<String>,
    pub cluster_id: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AssetSort {
    #[default]
    Hostname,
    State,
    Created,
    Updated,
}

impl AssetSort {
    pub const ALL: [AssetSort; 4] = [AssetSort::Hostname, AssetSort::State, AssetSort::Created, AssetSort::Updated];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetSort::Hostname => "hostname",
            AssetSort::State => "state",
            AssetSort::Created => "created",
            AssetSort::Updated => "updated",
        }
    }

    pub fn parse(s: &str) -> Option<AssetSort> {
        AssetSort::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The ORDER BY for this key; ties are broken by the (unique) hostname, so pages never
    /// overlap.
    fn order_sql(self, descending: bool) -> String {
        let dir = if descending { "DESC" } else { "ASC" };
        match self {
            AssetSort::Hostname => format!("a.hostname {dir}"),
            AssetSort::State => format!("a.state {dir}, a.hostname {dir}"),
            AssetSort::Created => format!("a.created_at {dir}, a.id {dir}"),
            AssetSort::Updated => format!("a.updated_at {dir}, a.hostname {dir}"),
        }
    }
}

/// Cluster membership filter.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterFilter {
    /// A member of any cluster.
    Any,
    /// In no cluster.
    None,
    /// A member of this cluster.
    Cluster(String),
}

#[derive(Debug, Clone, Default)]
pub struct AssetListQuery {
    pub state: Option<AssetState>,
    pub tag: Option<String>,
    pub mac: Option<Mac>,
    /// Part of the hostname.
    pub hostname: Option<String>,
    /// Part of the BMC address.
    pub bmc_address: Option<String>,
    pub has_bmc: Option<bool>,
    pub cluster: Option<ClusterFilter>,
    pub sort: AssetSort,
    pub descending: bool,
}

/// `s` for a LIKE pattern, its wildcards taken literally (escape character `\`).
fn like_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

impl AssetListQuery {
    /// The bound conditions and the constant ones (which take no value).
    fn filter(&self) -> (Filter, Vec<&'static str>) {
        let mut f = Filter::default();
        let mut fixed = Vec::new();
        if let Some(s) = self.state {
            f.push("a.state = {}", s.as_str());
        }
        if let Some(t) = &self.tag {
            f.push("a.id IN (SELECT asset_id FROM asset_tags WHERE tag = {})", t.clone());
        }
        if let Some(m) = self.mac {
            f.push("a.id IN (SELECT asset_id FROM asset_macs WHERE mac = {})", m.to_string());
        }
        if let Some(h) = &self.hostname {
            f.push("a.hostname LIKE {} ESCAPE '\\'", format!("%{}%", like_escape(&h.to_ascii_lowercase())));
        }
        if let Some(b) = &self.bmc_address {
            f.push("a.bmc_address LIKE {} ESCAPE '\\'", format!("%{}%", like_escape(b)));
        }
        match self.has_bmc {
            Some(true) => fixed.push("a.bmc_address IS NOT NULL"),
            Some(false) => fixed.push("a.bmc_address IS NULL"),
            None => {}
        }
        match &self.cluster {
            Some(ClusterFilter::Any) => fixed.push("m.cluster_id IS NOT NULL"),
            Some(ClusterFilter::None) => fixed.push("m.cluster_id IS NULL"),
            Some(ClusterFilter::Cluster(id)) => f.push("m.cluster_id = {}", id.clone()),
            None => {}
        }
        (f, fixed)
    }
}

impl Store {
    /// One page of the console's asset table and the filter's total.
    pub async fn console_asset_page(
        &self,
        q: &AssetListQuery,
        limit: i64,
        offset: i64,
    ) -> Result<(Vec<AssetListRow>, i64), sqlx::Error> {
        let (filter, fixed) = q.filter();
        let bound = filter.where_sql();
        let mut conditions: Vec<&str> = bound.strip_prefix("WHERE ").into_iter().collect();
        conditions.extend(fixed);
        let w = if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let n = filter.next_placeholder();
        let from = "FROM assets a LEFT JOIN cluster_members m ON m.asset_id = a.id";
        let sql = format!(
            "SELECT a.id, a.hostname, a.state, a.macs, a.tags, a.bmc_address, m.cluster_id, a.created_at, a.updated_at \
             {from} {w} ORDER BY {} LIMIT ${n} OFFSET ${}",
            q.sort.order_sql(q.descending),
            n + 1
        );
        let rows = filter
            .bind_all(sqlx::query_as::<_, AssetListRow>(sqlx::AssertSqlSafe(sql)))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        let count = format!("SELECT COUNT(*) {from} {w}");
        let total: i64 =
            filter.bind_scalar(sqlx::query_scalar(sqlx::AssertSqlSafe(count))).fetch_one(&self.pool).await?;
        Ok((rows, total))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(like_escape("web_1%"), "web\\_1\\%");
        assert_eq!(AssetSort::parse("updated"), Some(AssetSort::Updated));
        assert_eq!(AssetSort::parse("nope"), None);
    }
}
