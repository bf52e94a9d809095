//! Neutron list requests as SQL, for any resource table: attribute filters
//! (`col IN (...)`), tag filters (subqueries on `tags`), sorting with the id as
//! the last key, and keyset paging from a marker (`(a, b, id) > (...)` spelled
//! out so that it runs on the three backends). A page is fetched with one row
//! more than the limit, so the caller knows whether a next page exists.
//!
//! Every sortable column is NOT NULL (resources store `''` or `0` instead of
//! NULL where Neutron shows null for an unset attribute that can be sorted on).

use sea_orm::sea_query::{Alias, Cond, Expr, Query, SimpleExpr};
use sea_orm::{
    ColumnTrait, ConnectionTrait, EntityTrait, Order, QueryFilter, QueryOrder, QuerySelect, Select, Statement,
    Value as SqlValue,
};

use crate::api::list::{ListParams, is_true};
use crate::error::{Result, bad};

/// How an attribute is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
}

/// An attribute of a resource that lists can filter and sort on.
#[derive(Clone, Copy, Debug)]
pub struct Field {
    /// The attribute's name in the API (`router:external`).
    pub api: &'static str,
    /// Its column.
    pub column: &'static str,
    pub kind: Kind,
    /// Whether `sort_key` may name it.
    pub sortable: bool,
}

pub const fn field(api: &'static str, column: &'static str, kind: Kind) -> Field {
    Field { api, column, kind, sortable: true }
}

/// A resource table as lists see it.
pub struct Table {
    /// The SQL table (`networks`).
    pub name: &'static str,
    /// Its type in the `tags` table (`network`); empty when it has no tags.
    pub tag_type: &'static str,
    pub fields: &'static [Field],
}

impl Table {
    pub fn field(&self, api: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.api == api)
    }
}

fn col(name: &str) -> SimpleExpr {
    Expr::col(Alias::new(name)).into()
}

/// A query-string value as a SQL value of the attribute's kind.
fn typed(f: &Field, v: &str) -> Result<SqlValue> {
    Ok(match f.kind {
        Kind::Str => SqlValue::from(v.to_string()),
        Kind::Bool => {
            let l = v.to_ascii_lowercase();
            if !matches!(l.as_str(), "true" | "false" | "1" | "0" | "t" | "f" | "yes" | "no" | "on" | "off" | "y" | "n")
            {
                return Err(bad(format!("Invalid input for {}. Reason: '{v}' cannot be converted to boolean.", f.api)));
            }
            SqlValue::from(is_true(v))
        }
        Kind::Int => SqlValue::from(
            v.trim()
                .parse::<i64>()
                .map_err(|_| bad(format!("Invalid input for {}. Reason: '{v}' is not an integer.", f.api)))?,
        ),
    })
}

/// The condition of `p`'s attribute and tag filters on `t` (unknown attributes: 400).
pub fn conditions(t: &Table, p: &ListParams) -> Result<Cond> {
    let mut cond = Cond::all();
    for (name, values) in &p.filters {
        let Some(f) = t.field(name) else {
            return Err(bad(format!("{name} is not a valid filter")));
        };
        let vals: Vec<SqlValue> = values.iter().map(|v| typed(f, v)).collect::<Result<_>>()?;
        cond = cond.add(Expr::col(Alias::new(f.column)).is_in(vals));
    }
    if t.tag_type.is_empty() {
        if !(p.tags_all.is_empty() && p.tags_any.is_empty() && p.not_tags_all.is_empty() && p.not_tags_any.is_empty()) {
            return Err(bad("tags is not a valid filter"));
        }
        return Ok(cond);
    }
    let tagged = |tags: &[String], all: bool| {
        let mut q = Query::select();
        q.column(Alias::new("resource_id"))
            .from(Alias::new("tags"))
            .and_where(Expr::col(Alias::new("resource_type")).eq(t.tag_type))
            .and_where(Expr::col(Alias::new("tag")).is_in(tags.iter().cloned()));
        if all {
            q.group_by_col(Alias::new("resource_id"))
                .and_having(Expr::expr(Expr::col(Alias::new("tag")).count_distinct()).eq(tags.len() as i64));
        }
        q.to_owned()
    };
    if !p.tags_all.is_empty() {
        cond = cond.add(Expr::col(Alias::new("id")).in_subquery(tagged(&p.tags_all, true)));
    }
    if !p.tags_any.is_empty() {
        cond = cond.add(Expr::col(Alias::new("id")).in_subquery(tagged(&p.tags_any, false)));
    }
    if !p.not_tags_all.is_empty() {
        cond = cond.add(Expr::col(Alias::new("id")).not_in_subquery(tagged(&p.not_tags_all, true)));
    }
    if !p.not_tags_any.is_empty() {
        cond = cond.add(Expr::col(Alias::new("id")).not_in_subquery(tagged(&p.not_tags_any, false)));
    }
    Ok(cond)
}

/// The sort keys of `p` as `(column, kind, ascending)`, the id last.
fn sort_keys(t: &Table, p: &ListParams) -> Result<Vec<(&'static str, Kind, bool)>> {
    let mut keys = Vec::new();
    for (name, asc) in &p.sorts {
        let f = t
            .field(name)
            .filter(|f| f.sortable)
            .ok_or_else(|| bad(format!("Attribute '{name}' is not supported for sorting.")))?;
        if f.column != "id" && !keys.iter().any(|(c, _, _): &(&str, Kind, bool)| *c == f.column) {
            keys.push((f.column, f.kind, *asc));
        }
    }
    let id_asc = keys.first().map(|k| k.2).unwrap_or(true);
    keys.push(("id", Kind::Str, id_asc));
    Ok(keys)
}

/// One page of `select` (already narrowed to what the caller may see) under
/// `p`'s filters, sort and marker: the rows in the requested order, and
/// whether more lie beyond them. A marker that names no visible row: 404-free
/// as Neutron, the page simply starts at the beginning.
pub async fn page<E, C>(conn: &C, t: &Table, select: Select<E>, p: &ListParams) -> Result<(Vec<E::Model>, bool)>
where
    E: EntityTrait,
    C: ConnectionTrait,
{
    let cond = conditions(t, p)?;
    let keys = sort_keys(t, p)?;
    let mut q = select.filter(cond);
    // the direction rows are read in: reversed for page_reverse, then flipped back
    let forward = |asc: bool| if p.page_reverse { !asc } else { asc };
    if let Some(m) = &p.marker
        && let Some(vals) = marker_values(conn, t, &keys, m).await?
    {
        q = q.filter(after(&keys, &vals, &forward));
    }
    for (c, _, asc) in &keys {
        q = q.order_by(col(c), if forward(*asc) { Order::Asc } else { Order::Desc });
    }
    if let Some(l) = p.limit {
        q = q.limit(l + 1);
    }
    let mut rows = q.all(conn).await?;
    let more = p.limit.is_some_and(|l| rows.len() as u64 > l);
    if let Some(l) = p.limit {
        rows.truncate(l as usize);
    }
    if p.page_reverse {
        rows.reverse();
    }
    Ok((rows, more))
}

/// The sort-key values of the marker row, if it exists.
async fn marker_values<C: ConnectionTrait>(
    conn: &C,
    t: &Table,
    keys: &[(&'static str, Kind, bool)],
    marker: &str,
) -> Result<Option<Vec<SqlValue>>> {
    let mut q = Query::select();
    for (c, _, _) in keys {
        q.column(Alias::new(*c));
    }
    q.from(Alias::new(t.name)).and_where(Expr::col(Alias::new("id")).eq(marker));
    let backend = conn.get_database_backend();
    let stmt: Statement = backend.build(&q);
    let Some(row) = conn.query_one(stmt).await? else { return Ok(None) };
    let mut out = Vec::new();
    for (i, (_, kind, _)) in keys.iter().enumerate() {
        out.push(match kind {
            Kind::Str => SqlValue::from(row.try_get_by_index::<String>(i)?),
            Kind::Int => SqlValue::from(row.try_get_by_index::<i64>(i)?),
            Kind::Bool => SqlValue::from(row.try_get_by_index::<bool>(i)?),
        });
    }
    Ok(Some(out))
}

/// Rows strictly after the marker in the reading order:
/// `k1 > v1 OR (k1 = v1 AND k2 > v2) OR ...` (with `<` for descending keys).
fn after(keys: &[(&'static str, Kind, bool)], vals: &[SqlValue], forward: &dyn Fn(bool) -> bool) -> Cond {
    let mut any = Cond::any();
    for i in 0..keys.len() {
        let mut all = Cond::all();
        for (j, (c, _, _)) in keys.iter().enumerate().take(i) {
            all = all.add(Expr::col(Alias::new(*c)).eq(vals[j].clone()));
        }
        let (c, _, asc) = keys[i];
        let e = Expr::col(Alias::new(c));
        all = all.add(if forward(asc) { e.gt(vals[i].clone()) } else { e.lt(vals[i].clone()) });
        any = any.add(all);
    }
    any
}

/// `select` narrowed to `id IN (...)` (helper for resources that filter by id lists).
pub fn with_ids<E: EntityTrait>(select: Select<E>, id_col: impl ColumnTrait, ids: Vec<String>) -> Select<E> {
    select.filter(id_col.is_in(ids))
}
