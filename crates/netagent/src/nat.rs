//! nftables through its JSON interface (`nft -j -f -`): a router's NAT
//! (SNAT to the gateway, floating IPs as DNAT + SNAT pairs, port
//! forwardings) inside its namespace, and the host's containment rule (no
//! forwarding between the external bridge and any other interface).

use serde_json::{Value, json};
use tokio::io::AsyncWriteExt;

/// A floating IP as the router's NAT needs it.
#[derive(Clone, Debug, PartialEq)]
pub struct FloatingNat {
    pub floating: String,
    pub fixed: String,
}

/// A port forwarding of a floating IP (no fixed IP of its own).
#[derive(Clone, Debug, PartialEq)]
pub struct Forward {
    pub floating: String,
    pub fwd: stratus_network::rpc::PortForwarding,
}

/// A range of equal length maps port to port up to this many ports; longer
/// ones (or one internal port) DNAT to the internal range as a whole.
const PORT_BY_PORT: u16 = 256;

/// Where a router namespace's metadata proxy listens: requests of its
/// guests to 169.254.169.254:80 are redirected there.
pub const METADATA_PORT: u16 = 9697;

/// The table a router's NAT lives in (inside its namespace).
pub const NAT_TABLE: &str = "stratus-nat";

fn eq(left: Value, right: Value) -> Value {
    json!({"match": {"op": "==", "left": left, "right": right}})
}
fn ne(left: Value, right: Value) -> Value {
    json!({"match": {"op": "!=", "left": left, "right": right}})
}
fn meta(key: &str) -> Value {
    json!({"meta": {"key": key}})
}
fn ip(field: &str) -> Value {
    json!({"payload": {"protocol": "ip", "field": field}})
}
fn rule(family: &str, table: &str, chain: &str, expr: Vec<Value>) -> Value {
    json!({"add": {"rule": {"family": family, "table": table, "chain": chain, "expr": expr}}})
}

/// The whole NAT of a router, replacing what was there in one transaction:
/// DNAT of each floating IP to its fixed address (prerouting, and output
/// for the namespace's own traffic), SNAT of each fixed address with a
/// floating IP to it, then (with `snat`) everything else leaving through the
/// gateway `gw_dev` to `gw_ip`. Port forwardings DNAT their floating IP's
/// external ports to the internal address and ports (the replies go back
/// through conntrack; the SNAT of the rest spares them).
pub fn router_nat(
    gw_dev: Option<&str>,
    gw_ip: Option<&str>,
    snat: bool,
    fips: &[FloatingNat],
    forwards: &[Forward],
) -> Value {
    let t = NAT_TABLE;
    let mut cmds = vec![
        json!({"add": {"table": {"family": "ip", "name": t}}}),
        json!({"delete": {"table": {"family": "ip", "name": t}}}),
        json!({"add": {"table": {"family": "ip", "name": t}}}),
    ];
    for (name, hook, prio) in
        [("prerouting", "prerouting", -100), ("output", "output", -100), ("postrouting", "postrouting", 100)]
    {
        cmds.push(json!({"add": {"chain": {"family": "ip", "table": t, "name": name, "type": "nat", "hook": hook, "prio": prio, "policy": "accept"}}}));
    }
    // the guests' metadata requests, to the namespace's proxy
    cmds.push(rule(
        "ip",
        t,
        "prerouting",
        vec![
            eq(ip("daddr"), json!("169.254.169.254")),
            eq(json!({"payload": {"protocol": "tcp", "field": "dport"}}), json!(80)),
            json!({"redirect": {"port": METADATA_PORT}}),
        ],
    ));
    for f in fips {
        for chain in ["prerouting", "output"] {
            cmds.push(rule(
                "ip",
                t,
                chain,
                vec![eq(ip("daddr"), json!(f.floating)), json!({"dnat": {"addr": f.fixed}})],
            ));
        }
    }
    for f in forwards {
        let p = &f.fwd;
        let (ext, int) = (p.external_port_end - p.external_port_start, p.internal_port_end - p.internal_port_start);
        let port_by_port = ext == int && ext < PORT_BY_PORT;
        let dport = json!({"payload": {"protocol": "th", "field": "dport"}});
        let mut one = |ext: Value, port: Value| {
            for chain in ["prerouting", "output"] {
                cmds.push(rule(
                    "ip",
                    t,
                    chain,
                    vec![
                        eq(ip("daddr"), json!(f.floating)),
                        eq(meta("l4proto"), json!(p.protocol)),
                        eq(dport.clone(), ext.clone()),
                        json!({"dnat": {"addr": p.internal_ip_address, "port": port}}),
                    ],
                ));
            }
        };
        if port_by_port {
            for i in 0..=ext {
                one(json!(p.external_port_start + i), json!(p.internal_port_start + i));
            }
        } else {
            let ports = |a: u16, b: u16| if a == b { json!(a) } else { json!({"range": [a, b]}) };
            one(ports(p.external_port_start, p.external_port_end), ports(p.internal_port_start, p.internal_port_end));
        }
    }
    if let Some(dev) = gw_dev {
        for f in fips {
            cmds.push(rule(
                "ip",
                t,
                "postrouting",
                vec![
                    eq(meta("oifname"), json!(dev)),
                    eq(ip("saddr"), json!(f.fixed)),
                    json!({"snat": {"addr": f.floating}}),
                ],
            ));
        }
        if snat && let Some(gw) = gw_ip {
            // what came in through a floating IP's DNAT keeps its source
            cmds.push(rule(
                "ip",
                t,
                "postrouting",
                vec![
                    eq(meta("oifname"), json!(dev)),
                    ne(json!({"ct": {"key": "status"}}), json!("dnat")),
                    json!({"snat": {"addr": gw}}),
                ],
            ));
        }
    }
    json!({"nftables": cmds})
}

/// The containment table of an external bridge (`inet contain-<bridge>`):
/// nothing is forwarded from the bridge to another interface, nor from
/// another interface to it (bridged traffic between the bridge's own ports
/// stays). One table per bridge, so two clouds on a machine never rewrite
/// each other's.
pub fn contain_table(bridge: &str) -> String {
    format!("contain-{bridge}")
}

pub fn containment(bridge: &str) -> Value {
    let t = contain_table(bridge);
    let t = t.as_str();
    let bridges = [bridge.to_string()];
    let mut cmds = vec![
        json!({"add": {"table": {"family": "inet", "name": t}}}),
        json!({"delete": {"table": {"family": "inet", "name": t}}}),
        json!({"add": {"table": {"family": "inet", "name": t}}}),
        json!({"add": {"chain": {"family": "inet", "table": t, "name": "forward", "type": "filter", "hook": "forward", "prio": -10, "policy": "accept"}}}),
    ];
    for b in bridges {
        cmds.push(rule(
            "inet",
            t,
            "forward",
            vec![eq(meta("iifname"), json!(b)), ne(meta("oifname"), json!(b)), json!({"drop": null})],
        ));
        cmds.push(rule(
            "inet",
            t,
            "forward",
            vec![eq(meta("oifname"), json!(b)), ne(meta("iifname"), json!(b)), json!({"drop": null})],
        ));
    }
    json!({"nftables": cmds})
}

/// Apply a JSON document with `nft -j -f -`, in namespace `ns` when given.
pub async fn apply(ns: Option<&str>, doc: &Value) -> anyhow::Result<()> {
    let mut c = match ns {
        Some(ns) => {
            let mut c = tokio::process::Command::new("ip");
            c.args(["netns", "exec", ns, "nft", "-j", "-f", "-"]);
            c
        }
        None => {
            let mut c = tokio::process::Command::new("nft");
            c.args(["-j", "-f", "-"]);
            c
        }
    };
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::null()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().map_err(|e| anyhow::anyhow!("nft: {e}"))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(doc.to_string().as_bytes()).await?;
    }
    let out = child.wait_with_output().await?;
    if !out.status.success() {
        anyhow::bail!(
            "nft{}: {}",
            ns.map(|n| format!(" in {n}")).unwrap_or_default(),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// Delete a table (nothing when it is not there).
pub async fn delete_table(ns: Option<&str>, family: &str, table: &str) -> anyhow::Result<()> {
    let doc = json!({"nftables": [
        {"add": {"table": {"family": family, "name": table}}},
        {"delete": {"table": {"family": family, "name": table}}},
    ]});
    apply(ns, &doc).await
}

/// Announce `addr` on `dev` of namespace `ns` with gratuitous ARP (three
/// unsolicited replies a second apart, as Neutron's L3 agent sends), so
/// neighbours that cached another MAC for it (a floating IP that moved
/// between routers) update. In the background: nothing waits for it, and a
/// missing `arping` only costs a warning.
pub fn announce(ns: &str, dev: &str, addr: std::net::Ipv4Addr) {
    let (ns, dev) = (ns.to_string(), dev.to_string());
    tokio::spawn(async move {
        let out = tokio::process::Command::new("ip")
            .args(["netns", "exec", &ns, "arping", "-U", "-c", "3", "-I", &dev, &addr.to_string()])
            .stdin(std::process::Stdio::null())
            .output()
            .await;
        match out {
            // arping -U exits 1: no replies are expected to unsolicited ARP
            Ok(o) if o.status.code().is_some_and(|c| c <= 1) => {}
            Ok(o) => {
                tracing::warn!(%ns, %dev, %addr, err = %String::from_utf8_lossy(&o.stderr).trim(), "gratuitous ARP failed")
            }
            Err(e) => tracing::warn!(%ns, %dev, %addr, error = %e, "gratuitous ARP: no arping"),
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_router_nats_floating_ips_both_ways_and_snats_the_rest() {
        let fips = vec![FloatingNat { floating: "203.0.113.10".into(), fixed: "198.18.1.5".into() }];
        let doc = router_nat(Some("qg-x"), Some("203.0.113.3"), true, &fips, &[]);
        let cmds = doc["nftables"].as_array().cloned().unwrap_or_default();
        let rules: Vec<&Value> = cmds.iter().filter_map(|c| c["add"].get("rule")).collect();
        assert_eq!(rules.len(), 5, "{doc}");
        assert_eq!(rules[0]["expr"][2]["redirect"]["port"], METADATA_PORT);
        assert_eq!(rules[1]["expr"][1]["dnat"]["addr"], "198.18.1.5");
        assert_eq!(rules[3]["expr"][2]["snat"]["addr"], "203.0.113.10");
        assert_eq!(rules[4]["expr"][2]["snat"]["addr"], "203.0.113.3");
        // without SNAT only the floating IPs' pairs
        let doc = router_nat(Some("qg-x"), Some("203.0.113.3"), false, &fips, &[]);
        assert_eq!(
            doc["nftables"].as_array().map(|c| c.iter().filter(|c| c["add"].get("rule").is_some()).count()),
            Some(4)
        );
    }

    #[test]
    fn port_forwardings_dnat_port_by_port_or_to_a_range() {
        let fwd = |e: (u16, u16), i: (u16, u16)| Forward {
            floating: "203.0.113.20".into(),
            fwd: stratus_network::rpc::PortForwarding {
                protocol: "tcp".into(),
                internal_ip_address: "198.18.1.6".into(),
                external_port_start: e.0,
                external_port_end: e.1,
                internal_port_start: i.0,
                internal_port_end: i.1,
            },
        };
        let dnats = |doc: &Value| -> Vec<(Value, Value)> {
            doc["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(|c| c["add"].get("rule"))
                .filter(|r| r["chain"] == "prerouting" && r["expr"][3]["dnat"].is_object())
                .map(|r| (r["expr"][2]["match"]["right"].clone(), r["expr"][3]["dnat"]["port"].clone()))
                .collect()
        };
        // one port; a range of three, port by port
        let doc =
            router_nat(Some("qg-x"), None, false, &[], &[fwd((2222, 2222), (22, 22)), fwd((8000, 8002), (80, 82))]);
        assert_eq!(
            dnats(&doc),
            vec![
                (json!(2222), json!(22)),
                (json!(8000), json!(80)),
                (json!(8001), json!(81)),
                (json!(8002), json!(82))
            ]
        );
        let s = doc.to_string();
        assert!(s.contains(r#""addr":"198.18.1.6""#) && s.contains(r#""right":"tcp""#), "{s}");
        // a range onto one port
        let doc = router_nat(Some("qg-x"), None, false, &[], &[fwd((9000, 9010), (22, 22))]);
        assert_eq!(dnats(&doc), vec![(json!({"range": [9000, 9010]}), json!(22))]);
    }

    #[test]
    fn containment_drops_both_directions_per_bridge() {
        let doc = containment("br-ex");
        let s = doc.to_string();
        assert_eq!(s.matches("\"drop\"").count(), 2, "{s}");
        assert!(s.contains("\"hook\":\"forward\""));
    }
}
