//! Network agents: one row per agent binary on a host, created by its first
//! report and refreshed by each heartbeat. An agent is alive while its last
//! heartbeat is at most `network.agent_down_time` seconds old.

use chrono::{NaiveDateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter};
use serde_json::Value;
use stratus_db::Db;

use crate::api::list::{ListParams, is_true};
use crate::entity::agent::{self, Column as C, Model as Agent};
use crate::error::{Result, bad};
use crate::store::query::{self, Kind, Table, field};

/// Neutron renders agents' times so (UTC, seconds, a space before the time).
pub const TIME_FORMAT: &str = "%Y-%m-%d %H:%M:%S";

pub const LINUX_BRIDGE_AGENT: &str = "Linux bridge agent";
pub const DHCP_AGENT: &str = "DHCP agent";
pub const L3_AGENT: &str = "L3 agent";

pub const TABLE: Table = Table {
    name: "agents",
    tag_type: "",
    fields: &[
        field("id", "id", Kind::Str),
        field("agent_type", "agent_type", Kind::Str),
        field("binary", "binary", Kind::Str),
        field("topic", "topic", Kind::Str),
        field("host", "host", Kind::Str),
        field("availability_zone", "availability_zone", Kind::Str),
        field("admin_state_up", "admin_state_up", Kind::Bool),
        field("created_at", "created_at", Kind::Str),
        field("started_at", "started_at", Kind::Str),
        field("heartbeat_timestamp", "heartbeat_timestamp", Kind::Str),
        field("description", "description", Kind::Str),
    ],
};

pub fn now() -> String {
    Utc::now().format(TIME_FORMAT).to_string()
}

/// The oldest heartbeat of a live agent.
fn cutoff(down_time: u64) -> String {
    let secs = i64::try_from(down_time).unwrap_or(i64::MAX / 2);
    (Utc::now() - chrono::Duration::seconds(secs)).format(TIME_FORMAT).to_string()
}

/// Is the agent alive (a heartbeat within `down_time` seconds)?
pub fn is_alive(a: &Agent, down_time: u64) -> bool {
    let Ok(hb) = NaiveDateTime::parse_from_str(&a.heartbeat_timestamp, TIME_FORMAT) else { return false };
    let age = Utc::now().naive_utc() - hb;
    age.num_seconds() <= i64::try_from(down_time).unwrap_or(i64::MAX)
}

/// A page of agents; `alive=true|false` filters on the heartbeat's age.
pub async fn list<Cn: ConnectionTrait>(conn: &Cn, p: &ListParams, down_time: u64) -> Result<(Vec<Agent>, bool)> {
    let mut p = p.clone();
    let mut cond = Condition::all();
    if let Some(vals) = p.take_filter("alive") {
        let mut any = Condition::any();
        for v in &vals {
            let l = v.to_ascii_lowercase();
            if !matches!(l.as_str(), "true" | "false" | "1" | "0" | "t" | "f" | "yes" | "no" | "on" | "off" | "y" | "n")
            {
                return Err(bad(format!("Invalid input for alive. Reason: '{v}' cannot be converted to boolean.")));
            }
            any = any.add(if is_true(v) {
                C::HeartbeatTimestamp.gte(cutoff(down_time))
            } else {
                C::HeartbeatTimestamp.lt(cutoff(down_time))
            });
        }
        cond = cond.add(any);
    }
    query::page(conn, &TABLE, agent::Entity::find().filter(cond), &p).await
}

pub async fn get<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<Option<Agent>> {
    Ok(agent::Entity::find_by_id(id.to_string()).one(conn).await?)
}

/// What an operator may change: `admin_state_up`, `description`.
pub async fn update<Cn: ConnectionTrait>(
    conn: &Cn,
    id: &str,
    admin_state_up: Option<bool>,
    description: Option<String>,
) -> Result<bool> {
    if admin_state_up.is_none() && description.is_none() {
        return Ok(get(conn, id).await?.is_some());
    }
    let mut q = agent::Entity::update_many().filter(C::Id.eq(id));
    if let Some(a) = admin_state_up {
        q = q.col_expr(C::AdminStateUp, Expr::value(a));
    }
    if let Some(d) = description {
        q = q.col_expr(C::Description, Expr::value(d));
    }
    // MySQL counts only changed rows: an update to the same values still has to find the row
    Ok(q.exec(conn).await?.rows_affected == 1 || get(conn, id).await?.is_some())
}

pub async fn delete<Cn: ConnectionTrait>(conn: &Cn, id: &str) -> Result<bool> {
    Ok(agent::Entity::delete_by_id(id.to_string()).exec(conn).await?.rows_affected > 0)
}

/// An agent's report: create it on its first one (unique `(host, binary)`:
/// racing first reports make one row, the loser refreshes it), refresh its
/// heartbeat, type, topic, configurations and zone on every later one.
pub async fn report(
    db: &Db,
    host: &str,
    binary: &str,
    agent_type: &str,
    topic: &str,
    configurations: &Value,
    az: Option<&str>,
) -> Result<Agent> {
    let conf = configurations.to_string();
    let zone = az.unwrap_or_default().to_string();
    for _ in 0..3 {
        let t = now();
        let r = agent::Entity::update_many()
            .col_expr(C::HeartbeatTimestamp, Expr::value(t.clone()))
            .col_expr(C::AgentType, Expr::value(agent_type.to_string()))
            .col_expr(C::Topic, Expr::value(topic.to_string()))
            .col_expr(C::Configurations, Expr::value(conf.clone()))
            .col_expr(C::AvailabilityZone, Expr::value(zone.clone()))
            .filter(C::Host.eq(host))
            .filter(C::Binary.eq(binary))
            .exec(&db.write)
            .await?;
        // MySQL counts only changed rows: a report within the same second changes none
        let found = if r.rows_affected == 0 {
            agent::Entity::find().filter(C::Host.eq(host)).filter(C::Binary.eq(binary)).one(&db.write).await?
        } else {
            None
        };
        if let Some(a) = found {
            return Ok(a);
        }
        if r.rows_affected == 0 {
            let a = Agent {
                id: crate::store::new_id(),
                agent_type: agent_type.to_string(),
                binary: binary.to_string(),
                topic: topic.to_string(),
                host: host.to_string(),
                availability_zone: zone.clone(),
                admin_state_up: true,
                created_at: t.clone(),
                started_at: t.clone(),
                heartbeat_timestamp: t,
                description: String::new(),
                configurations: conf.clone(),
            };
            match agent::ActiveModel::from(a.clone()).insert(&db.write).await {
                Ok(_) => return Ok(a),
                // another report made it first: refresh that one
                Err(e) if stratus_db::is_unique_violation(&e) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        if let Some(a) =
            agent::Entity::find().filter(C::Host.eq(host)).filter(C::Binary.eq(binary)).one(&db.write).await?
        {
            return Ok(a);
        }
    }
    Err(anyhow::anyhow!("agent {binary} on {host}: report kept racing").into())
}

/// Zones and the resources agents serve in them, with whether any agent
/// there is up (Neutron's `_list_availability_zones`): DHCP agents serve
/// networks, L3 agents routers.
pub async fn availability_zones<Cn: ConnectionTrait>(conn: &Cn) -> Result<Vec<(String, &'static str, bool)>> {
    let mut out: Vec<(String, &'static str, bool)> = Vec::new();
    for a in agent::Entity::find().filter(C::AvailabilityZone.ne("")).all(conn).await? {
        let resource = match a.agent_type.as_str() {
            DHCP_AGENT => "network",
            L3_AGENT => "router",
            _ => continue,
        };
        match out.iter_mut().find(|(z, r, _)| *z == a.availability_zone && *r == resource) {
            Some(e) => e.2 |= a.admin_state_up,
            None => out.push((a.availability_zone.clone(), resource, a.admin_state_up)),
        }
    }
    out.sort();
    Ok(out)
}

/// The hosts of the L3 agents that may host routers: administratively up,
/// with a heartbeat within `down_time` seconds (ordered, one per host).
pub async fn l3_hosts<Cn: ConnectionTrait>(conn: &Cn, down_time: u64) -> Result<Vec<String>> {
    let mut hosts: Vec<String> = agent::Entity::find()
        .filter(C::AgentType.eq(L3_AGENT))
        .filter(C::AdminStateUp.eq(true))
        .filter(C::HeartbeatTimestamp.gte(cutoff(down_time)))
        .all(conn)
        .await?
        .into_iter()
        .map(|a| a.host)
        .collect();
    hosts.sort();
    hosts.dedup();
    Ok(hosts)
}

/// The L3 agent of `host`, if any.
pub async fn l3_agent_on<Cn: ConnectionTrait>(conn: &Cn, host: &str) -> Result<Option<Agent>> {
    Ok(agent::Entity::find().filter(C::AgentType.eq(L3_AGENT)).filter(C::Host.eq(host)).one(conn).await?)
}

/// The tunnel endpoint the Linux bridge agent of `host` reports
/// (`configurations.tunneling_ip`), if any.
pub async fn tunneling_ip<Cn: ConnectionTrait>(conn: &Cn, host: &str) -> Result<Option<String>> {
    let a =
        agent::Entity::find().filter(C::Host.eq(host)).filter(C::AgentType.eq(LINUX_BRIDGE_AGENT)).one(conn).await?;
    Ok(a.and_then(|a| serde_json::from_str::<Value>(&a.configurations).ok())
        .and_then(|c| c["tunneling_ip"].as_str().map(str::to_string))
        .filter(|s| !s.is_empty()))
}
