//! Resolving names the way the pod would: its `/etc/hosts`, then its `/etc/resolv.conf`
//! (nameservers, search list, `ndots`), as glibc and musl do.

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use snoopy_capture::filter::files::Hosts;

/// The resolver configuration of a pod (or of the host, as a fallback).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvConf {
    /// Where it was read from.
    pub source: PathBuf,
    /// Nameservers, in order (port 53).
    pub nameservers: Vec<SocketAddr>,
    /// Search domains.
    pub search: Vec<String>,
    /// Names with at least this many dots are tried as given first.
    pub ndots: usize,
    /// `/etc/hosts` of the same root, read as glibc reads it.
    pub hosts: Hosts,
}

impl ResolvConf {
    /// Reads `ROOT/etc/resolv.conf` and `ROOT/etc/hosts` (missing files mean defaults: the
    /// local nameserver, no search list, no hosts).
    pub fn read(root: &Path) -> Self {
        let source = root.join("etc/resolv.conf");
        let text = std::fs::read_to_string(&source).unwrap_or_default();
        let hosts = std::fs::read_to_string(root.join("etc/hosts")).unwrap_or_default();
        let mut conf = Self::parse(&text, &hosts);
        conf.source = source;
        conf
    }

    /// Parses resolv.conf and hosts text.
    pub fn parse(resolv: &str, hosts: &str) -> Self {
        let mut conf = ResolvConf {
            source: PathBuf::new(),
            nameservers: Vec::new(),
            search: Vec::new(),
            ndots: 1,
            hosts: Hosts::parse(hosts),
        };
        for line in resolv.lines() {
            let line = line.split(['#', ';']).next().unwrap_or("");
            let mut words = line.split_whitespace();
            match words.next() {
                Some("nameserver") => {
                    if let Some(ip) = words.next().and_then(|w| w.parse::<IpAddr>().ok()) {
                        conf.nameservers.push(SocketAddr::new(ip, 53));
                    }
                }
                // The last of `search` / `domain` wins, as in glibc.
                Some("search") | Some("domain") => {
                    conf.search = words.map(|w| w.trim_end_matches('.').to_string()).collect();
                }
                Some("options") => {
                    for option in words {
                        if let Some(n) = option.strip_prefix("ndots:").and_then(|n| n.parse().ok())
                        {
                            conf.ndots = usize::min(n, 15);
                        }
                    }
                }
                _ => {}
            }
        }
        if conf.nameservers.is_empty() {
            conf.nameservers
                .push(SocketAddr::from(([127, 0, 0, 1], 53)));
        }
        conf
    }

    /// The addresses `/etc/hosts` gives `name`, in file order.
    pub fn in_hosts(&self, name: &str) -> Vec<IpAddr> {
        self.hosts.lookup(name.trim_end_matches('.'))
    }

    /// The fully qualified names to query for `name`, in order: a name ending in `.` as
    /// is; a name with at least `ndots` dots as is, then with each search domain; others
    /// with each search domain first, then as is.
    pub fn candidates(&self, name: &str) -> Vec<String> {
        if let Some(absolute) = name.strip_suffix('.') {
            return vec![absolute.to_string()];
        }
        let searched = self.search.iter().map(|d| format!("{name}.{d}"));
        let dots = name.matches('.').count();
        if dots >= self.ndots {
            std::iter::once(name.to_string()).chain(searched).collect()
        } else {
            searched.chain(std::iter::once(name.to_string())).collect()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KUBE: &str = "search shop.svc.cluster.local svc.cluster.local cluster.local\nnameserver 10.96.0.10\noptions ndots:5\n";

    #[test]
    fn parses_a_kubernetes_resolv_conf() {
        let c = ResolvConf::parse(
            KUBE,
            "127.0.0.1 localhost\n10.244.0.7 web-0.web web-0 # pod\n",
        );
        assert_eq!(c.nameservers, vec!["10.96.0.10:53".parse().unwrap()]);
        assert_eq!(c.ndots, 5);
        assert_eq!(c.search.len(), 3);
        assert_eq!(
            c.in_hosts("WEB-0"),
            vec!["10.244.0.7".parse::<IpAddr>().unwrap()]
        );
    }

    #[test]
    fn search_order_follows_ndots() {
        let c = ResolvConf::parse(KUBE, "");
        assert_eq!(
            c.candidates("db"),
            [
                "db.shop.svc.cluster.local",
                "db.svc.cluster.local",
                "db.cluster.local",
                "db"
            ]
        );
        assert_eq!(c.candidates("example.com."), ["example.com"]);
        let few = ResolvConf::parse("search corp\noptions ndots:1", "");
        assert_eq!(few.candidates("a.b"), ["a.b", "a.b.corp"]);
    }

    #[test]
    fn defaults_to_the_local_nameserver() {
        let c = ResolvConf::parse("", "");
        assert_eq!(c.nameservers, vec!["127.0.0.1:53".parse().unwrap()]);
        assert_eq!(c.ndots, 1);
    }
}
