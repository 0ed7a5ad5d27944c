//! `group-set` and `group-get`: bandwidth groups (see [`crate::groups`]).
use super::keys::name;
use super::{code, Args, Protocol, RpcError};
use crate::groups::{GroupSetError, GroupSettings};
use crate::Shared;
use serde_json::{json, Map, Value};

/// `group-set`: creates or changes the group `name`; arguments left out
/// keep their value.
pub async fn set(shared: &Shared, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let n = a
        .str("name")?
        .ok_or_else(|| RpcError::params("name: missing"))?;
    let mut g = shared.groups.get_or_new(&shared.session, n);
    if let Some(v) = a.u64("speed_limit_down")? {
        g.speed_limit_down = v;
    }
    if let Some(v) = a.bool("speed_limit_down_enabled")? {
        g.speed_limit_down_enabled = v;
    }
    if let Some(v) = a.u64("speed_limit_up")? {
        g.speed_limit_up = v;
    }
    if let Some(v) = a.bool("speed_limit_up_enabled")? {
        g.speed_limit_up_enabled = v;
    }
    if let Some(v) = a.bool("honors_session_limits")? {
        g.honors_session_limits = v;
    }
    shared
        .groups
        .set(&shared.session, &shared.store, g)
        .await
        .map_err(|e| match e {
            GroupSetError::Group(e) => RpcError::params(e.to_string()),
            e => RpcError::new(code::SYSTEM_ERROR, e.to_string()),
        })?;
    Ok(Map::new())
}

/// `group-get`: the groups named by `group` (classic) or `name` (JSON-RPC),
/// a string or a list; every group when neither is given.
pub fn get(shared: &Shared, p: Protocol, a: &Args) -> Result<Map<String, Value>, RpcError> {
    let wanted: Option<Vec<String>> = match a.get("group").or_else(|| a.get("name")) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(v)) => Some(
            v.iter()
                .map(|x| x.as_str().map(str::to_owned))
                .collect::<Option<_>>()
                .ok_or_else(|| RpcError::params("group: expected names"))?,
        ),
        Some(_) => return Err(RpcError::params("group: expected a name or a list")),
    };
    let list: Vec<Value> = shared
        .groups
        .list(&shared.session)
        .into_iter()
        .filter(|g| wanted.as_ref().is_none_or(|w| w.contains(&g.name)))
        .map(|g| describe(p, &g))
        .collect();
    Ok(Map::from_iter([("group".to_owned(), Value::Array(list))]))
}

fn describe(p: Protocol, g: &GroupSettings) -> Value {
    json!({
        name(p, "honors_session_limits"): g.honors_session_limits,
        "name": g.name,
        name(p, "speed_limit_down"): g.speed_limit_down,
        name(p, "speed_limit_down_enabled"): g.speed_limit_down_enabled,
        name(p, "speed_limit_up"): g.speed_limit_up,
        name(p, "speed_limit_up_enabled"): g.speed_limit_up_enabled,
    })
}
