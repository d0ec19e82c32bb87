//! Which Kubernetes permissions a CR's author needs for what the CR asks: the rule users
//! already know is that seeing a pod's traffic, or running a program in its network
//! namespace, takes what `kubectl exec` into that pod takes.
//!
//! - Targets in the CR's own namespace: nothing beyond creating the CR there (granting
//!   `create snoopyjobs` in a namespace is granting captures of it).
//! - Targets in another namespace: `create pods/exec` there; a `namespaceSelector`:
//!   `create pods/exec` in every namespace (cluster-wide).
//! - `tool.exec`: `create pods/exec` in every target namespace, its own included.
//! - A Secret or PVC the CR names (in the operator's namespace): `get` on that object.
//! - A hostNetwork target pod (its traffic is the node's): `create pods/exec` cluster-wide
//!   (checked against the pods, by the webhook and again by the reconciler).
//!
//! The webhook asks each of these with a SubjectAccessReview as the requesting user.

use std::fmt;

use k8s_openapi::api::authorization::v1::ResourceAttributes;

use crate::plan::{Namespaces, Output, Plan, Tool};

/// One permission, as a SubjectAccessReview asks it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Permission {
    /// `create`, `get`.
    pub verb: &'static str,
    /// `pods`, `secrets`, `persistentvolumeclaims` (all in the core group).
    pub resource: &'static str,
    /// `exec`, or none.
    pub subresource: Option<&'static str>,
    /// The namespace; `None` = every namespace.
    pub namespace: Option<String>,
    /// One object, or none (any).
    pub name: Option<String>,
}

impl Permission {
    /// `create pods/exec` in `namespace` (every namespace when `None`).
    pub fn exec_in(namespace: Option<&str>) -> Self {
        Self {
            verb: "create",
            resource: "pods",
            subresource: Some("exec"),
            namespace: namespace.map(str::to_owned),
            name: None,
        }
    }

    fn get(resource: &'static str, namespace: &str, name: &str) -> Self {
        Self {
            verb: "get",
            resource,
            subresource: None,
            namespace: Some(namespace.to_owned()),
            name: Some(name.to_owned()),
        }
    }

    /// The SubjectAccessReview's `resourceAttributes`.
    pub fn attributes(&self) -> ResourceAttributes {
        ResourceAttributes {
            verb: Some(self.verb.into()),
            group: Some(String::new()),
            resource: Some(self.resource.into()),
            subresource: self.subresource.map(str::to_owned),
            namespace: self.namespace.clone(),
            name: self.name.clone(),
            ..Default::default()
        }
    }
}

impl fmt::Display for Permission {
    /// As `kubectl auth can-i` takes it: `create pods/exec in namespace b`,
    /// `get secrets/kafka-tls in namespace snoopy-operator`, `create pods/exec in every
    /// namespace`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.verb, self.resource)?;
        if let Some(sub) = self.subresource {
            write!(f, "/{sub}")?;
        }
        if let Some(name) = &self.name {
            write!(f, "/{name}")?;
        }
        match &self.namespace {
            Some(ns) => write!(f, " in namespace {ns}"),
            None => f.write_str(" in every namespace"),
        }
    }
}

/// What the author of a CR in `cr_namespace` needs for `plan`; `operator_namespace` holds
/// the Secrets and PVCs CRs name. Sorted, without repeats.
pub fn required(plan: &Plan, cr_namespace: &str, operator_namespace: &str) -> Vec<Permission> {
    let mut needed = Vec::new();
    let exec = matches!(plan.tool, Tool::Exec { .. });
    match &plan.namespaces {
        Namespaces::Named(ns) if ns != cr_namespace || exec => {
            needed.push(Permission::exec_in(Some(ns)));
        }
        Namespaces::Named(_) => {}
        Namespaces::Selector(_) => needed.push(Permission::exec_in(None)),
    }
    if let Output::Pvc(claim) = &plan.output {
        needed.push(Permission::get(
            "persistentvolumeclaims",
            operator_namespace,
            claim,
        ));
    }
    if let Some(kafka) = &plan.kafka {
        let secrets = kafka
            .tls
            .iter()
            .map(|t| &t.secret_name)
            .chain(kafka.sasl.iter().map(|s| &s.secret_name));
        for secret in secrets {
            needed.push(Permission::get("secrets", operator_namespace, secret));
        }
    }
    needed.sort();
    needed.dedup();
    needed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::fixtures::poc_plan;
    use crate::plan::{Kafka, KafkaSasl, KafkaTls};

    #[test]
    fn own_namespace_captures_need_nothing_more() {
        let plan = poc_plan();
        let Namespaces::Named(ns) = &plan.namespaces else {
            panic!("the PoC plan names its namespace")
        };
        assert_eq!(required(&plan, ns, "snoopy-operator"), vec![]);
    }

    #[test]
    fn other_namespaces_exec_and_references_each_need_their_permission() {
        let mut plan = poc_plan();
        plan.namespaces = Namespaces::Named("b".into());
        assert_eq!(
            required(&plan, "a", "op")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            ["create pods/exec in namespace b"]
        );
        plan.namespaces = Namespaces::Named("a".into());
        plan.tool = Tool::Exec {
            command: "iperf3".into(),
            args: vec![],
        };
        assert_eq!(
            required(&plan, "a", "op"),
            vec![Permission::exec_in(Some("a"))]
        );
        plan.namespaces = Namespaces::Selector(Default::default());
        plan.output = Output::Pvc("captures".into());
        plan.kafka = Some(Kafka {
            brokers: vec!["k:9093".into()],
            topic: "t".into(),
            tls: Some(KafkaTls {
                secret_name: "kafka".into(),
                ca_key: "ca.crt".into(),
                client: None,
            }),
            sasl: Some(KafkaSasl {
                mechanism: crate::crd::SaslMechanism::ScramSha512,
                secret_name: "kafka".into(),
                username_key: "u".into(),
                password_key: "p".into(),
            }),
        });
        assert_eq!(
            required(&plan, "a", "op")
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>(),
            [
                "create pods/exec in every namespace",
                "get persistentvolumeclaims/captures in namespace op",
                "get secrets/kafka in namespace op",
            ]
        );
        let attrs = Permission::exec_in(None).attributes();
        assert_eq!(
            (attrs.subresource.as_deref(), attrs.namespace),
            (Some("exec"), None)
        );
    }
}
