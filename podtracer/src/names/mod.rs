//! Names as the pod resolves them, for filters (`capture --pod web 'host db'`) and probes.
//!
//! A filter on a pod is written with the pod's names: `db` is `db.shop.svc.cluster.local`
//! to a pod of namespace `shop`, and its `/etc/hosts` may say more. So a name is looked up
//! as glibc in the pod would: the pod's `/etc/hosts` (through `/proc/PID/root`), then
//! DNS — A and AAAA queries to the nameservers of the pod's `/etc/resolv.conf`, through
//! its search list as `ndots` says, sent from inside the pod's network namespace (where
//! the cluster DNS is reachable). Ethernet host and network names come from the same
//! root's `/etc/ethers` and `/etc/networks`. Files read from disk (`read`, `capture -r`)
//! use the node's own files and nameservers.
//!
//! The view is opened at the first name the filter uses, so a filter without names costs
//! nothing (no runtime query, no file read), and each name is looked up once.

pub mod dns;
pub mod resolv;

use std::collections::HashMap;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use snoopy_capture::filter::files::{Files, getaddrinfo_order};
use snoopy_capture::filter::{LookupError, Resolve};
use snoopy_netns::Namespace;

use self::dns::{Answer, QueryError, QueryType};
use self::resolv::ResolvConf;
use crate::target::TargetArgs;

/// How long one name may take in DNS, all candidates and servers together.
const DNS_BUDGET: Duration = Duration::from_secs(6);
/// How long one query waits for its answer (glibc's default is 5 s; a filter is compiled
/// while the user waits).
const QUERY_TIMEOUT: Duration = Duration::from_secs(2);

/// Where names are looked up: a root directory's files, and the namespace DNS queries
/// leave from.
struct View {
    /// `/proc/PID/root` of a pod's process, or `/`.
    root: PathBuf,
    /// Why the root is not the pod's, when it is not (said in errors).
    note: Option<String>,
    conf: ResolvConf,
    files: Files,
    /// `None`: this process's own namespace.
    namespace: Option<Namespace>,
}

type Opener = Box<dyn Fn() -> Result<View> + Send + Sync>;

/// A [`Resolve`] for the compiler that looks names up as a pod (or the node) would.
pub struct Names {
    open: Opener,
    view: OnceLock<Result<View, String>>,
    hosts: Mutex<HashMap<String, Result<Vec<IpAddr>, LookupError>>>,
}

impl std::fmt::Debug for Names {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Names")
            .field(
                "root",
                &self.view.get().map(|v| v.as_ref().map(|v| &v.root)),
            )
            .finish_non_exhaustive()
    }
}

impl Names {
    fn lazy(open: impl Fn() -> Result<View> + Send + Sync + 'static) -> Self {
        Names {
            open: Box::new(open),
            view: OnceLock::new(),
            hosts: Mutex::default(),
        }
    }

    /// Names as the target sees them: `--pid` and `--pod` through the process's root and
    /// network namespace; `--netns` (no process, so no files of the pod) and `-l` (pods
    /// that may differ) through the node's files, with DNS from the target's namespace
    /// for `--netns`.
    pub fn of_target(target: &TargetArgs) -> Self {
        let target = target.clone();
        Names::lazy(move || {
            if target.selector.is_some() {
                return View::open(
                    PathBuf::from("/"),
                    Some("the node's: with -l the pods' own files may differ".to_string()),
                    None,
                );
            }
            let namespace = target.resolve_one()?.namespace;
            match target.process()? {
                Some(pid) => View::open(
                    PathBuf::from(format!("/proc/{pid}/root")),
                    None,
                    Some(namespace),
                ),
                None => View::open(
                    PathBuf::from("/"),
                    Some(
                        "the node's: --netns names no process, so no files of the pod".to_string(),
                    ),
                    Some(namespace),
                ),
            }
        })
    }

    /// Names as this machine resolves them (its `/etc` files and nameservers), for packets
    /// read from files.
    pub fn of_host() -> Self {
        Names::lazy(|| View::open(PathBuf::from("/"), None, None))
    }

    fn view(&self) -> Result<&View, LookupError> {
        self.view
            .get_or_init(|| (self.open)().map_err(|e| format!("{e:#}")))
            .as_ref()
            .map_err(|e| {
                LookupError(format!(
                    "could not open the view names are resolved in: {e}"
                ))
            })
    }
}

impl View {
    fn open(root: PathBuf, note: Option<String>, namespace: Option<Namespace>) -> Result<View> {
        let files = Files::read(&root)
            .with_context(|| format!("reading the files of {}", root.display()))?;
        Ok(View {
            conf: ResolvConf::read(&root),
            files,
            root,
            note,
            namespace,
        })
    }

    fn etc(&self, file: &str) -> String {
        let path = self.root.join("etc").join(file).display().to_string();
        match &self.note {
            Some(note) => format!("{path} ({note})"),
            None => path,
        }
    }

    /// `/etc/hosts`, then DNS from the view's namespace.
    fn host(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let mut addrs = self.conf.in_hosts(name);
        if !addrs.is_empty() {
            getaddrinfo_order(&mut addrs);
            return Ok(addrs);
        }
        let conf = &self.conf;
        let answer = match &self.namespace {
            Some(ns) => snoopy_netns::in_namespace(ns, || lookup(name, conf)).map_err(|e| {
                LookupError(format!(
                    "entering the target's network namespace for DNS: {e}"
                ))
            })?,
            None => lookup(name, conf),
        };
        answer.map_err(|tried| {
            LookupError(format!(
                "not in {}; DNS ({}): {}",
                self.etc("hosts"),
                conf.source.display(),
                tried.join("; ")
            ))
        })
    }
}

impl Resolve for Names {
    fn host(&self, name: &str) -> Result<Vec<IpAddr>, LookupError> {
        let mut answers = self.hosts.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(answer) = answers.get(name) {
            return answer.clone();
        }
        let answer = self.view().and_then(|view| view.host(name));
        answers.insert(name.to_string(), answer.clone());
        answer
    }

    fn ether(&self, name: &str) -> Result<Option<[u8; 6]>, LookupError> {
        let view = self.view()?;
        match view.files.ethers.lookup(name) {
            Some(mac) => Ok(Some(mac)),
            None => Err(LookupError(format!("not in {}", view.etc("ethers")))),
        }
    }

    fn network(&self, name: &str) -> Result<Option<u32>, LookupError> {
        let view = self.view()?;
        match view.files.networks.lookup(name) {
            Some(net) => Ok(Some(net)),
            None => Err(LookupError(format!("not in {}", view.etc("networks")))),
        }
    }
}

/// DNS as glibc's `getaddrinfo` does it: each name of the search list in turn (as `ndots`
/// orders them), A and AAAA, each nameserver until one answers; the first name with an
/// address wins. Runs in the caller's namespace. The error lists what was tried.
pub fn lookup(name: &str, conf: &ResolvConf) -> Result<Vec<IpAddr>, Vec<String>> {
    let deadline = Instant::now() + DNS_BUDGET;
    let mut tried = Vec::new();
    for candidate in conf.candidates(name) {
        let mut found = Vec::new();
        let mut empty = 0;
        for qtype in [QueryType::A, QueryType::Aaaa] {
            match ask(&candidate, qtype, conf, deadline, &mut tried) {
                Some(Answer::Addresses(addrs)) => found.extend(addrs),
                Some(Answer::Empty) => empty += 1,
                // The name does not exist: no use asking for its other type.
                Some(Answer::NxDomain) => break,
                _ => {}
            }
        }
        if !found.is_empty() {
            getaddrinfo_order(&mut found);
            return Ok(found);
        }
        if empty == 2 {
            tried.push(format!("{candidate}: no A or AAAA record"));
        }
    }
    Err(tried)
}

/// One question to each nameserver in turn until one answers (with anything, NXDOMAIN
/// included); what went wrong on the way is noted in `tried`.
fn ask(
    candidate: &str,
    qtype: QueryType,
    conf: &ResolvConf,
    deadline: Instant,
    tried: &mut Vec<String>,
) -> Option<Answer> {
    let kind = match qtype {
        QueryType::A => "A",
        QueryType::Aaaa => "AAAA",
    };
    for &server in &conf.nameservers {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            tried.push(format!(
                "{candidate} {kind}: out of time ({DNS_BUDGET:?} a name)"
            ));
            return None;
        }
        let until = Instant::now() + left.min(QUERY_TIMEOUT);
        let why = match dns::query(server, candidate, qtype, until) {
            Ok(Answer::NxDomain) => {
                tried.push(format!("{candidate}: NXDOMAIN from {server}"));
                return Some(Answer::NxDomain);
            }
            Ok(answer @ (Answer::Addresses(_) | Answer::Empty)) => return Some(answer),
            Ok(Answer::ServFail) => "SERVFAIL".to_string(),
            Ok(Answer::Refused) => "REFUSED".to_string(),
            Ok(Answer::Other(code)) => format!("response code {code}"),
            Err(QueryError::Timeout) => format!("no answer within {:?}", left.min(QUERY_TIMEOUT)),
            Err(QueryError::PortClosed) => "port 53 closed".to_string(),
            Err(QueryError::Unreachable) => "unreachable".to_string(),
            Err(QueryError::Io(e)) => e.to_string(),
            Err(QueryError::Malformed(why)) => format!("malformed response: {why}"),
        };
        tried.push(format!("{candidate} {kind}: {why} from {server}"));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A view with a hosts file and a nameserver that cannot be asked (no DNS leaves a
    /// unit test: the address is in TEST-NET-1 and the namespace is never entered, the
    /// hosts file answers first).
    fn view(hosts: &str) -> View {
        View {
            root: PathBuf::from("/proc/4242/root"),
            note: None,
            conf: ResolvConf::parse("nameserver 192.0.2.53\n", hosts),
            files: Files::default(),
            namespace: None,
        }
    }

    #[test]
    fn the_pods_hosts_file_answers_first_in_getaddrinfos_order() {
        let v = view("10.0.0.7 db\nfd00::7 db\n");
        assert_eq!(
            v.host("db").unwrap(),
            vec![
                "fd00::7".parse::<IpAddr>().unwrap(),
                "10.0.0.7".parse().unwrap()
            ]
        );
    }

    #[test]
    fn unknown_ether_and_network_names_say_which_file_was_read() {
        let names = Names::lazy(|| Ok(view("")));
        let e = names.ether("gw").unwrap_err();
        assert_eq!(e.0, "not in /proc/4242/root/etc/ethers");
        let e = names.network("corp").unwrap_err();
        assert_eq!(e.0, "not in /proc/4242/root/etc/networks");
    }

    #[test]
    fn a_view_that_cannot_open_says_why() {
        let names = Names::lazy(|| anyhow::bail!("no pod web/shop on this node"));
        let e = names.host("db").unwrap_err();
        assert!(e.0.contains("no pod web/shop on this node"), "{e}");
    }
}
