//! The admission webhook, served by the operator for both kinds, on create and update.
//!
//! `/mutate` (a MutatingWebhookConfiguration, `failurePolicy: Fail`) runs the operator's
//! full validation, asks a SubjectAccessReview as the requesting user for every permission
//! the CR needs ([`crate::access`]), refuses hostNetwork targets unless the user may `create
//! pods/exec` in every namespace, and stamps what it checked ([`crate::stamp`]). A refusal
//! names the missing permission, so `kubectl apply` shows it.
//!
//! `/validate` (a ValidatingWebhookConfiguration) runs last and refuses an object whose spec
//! no longer matches its stamp (another mutating webhook changed it after ours).
//!
//! Updates that leave the spec as it was (finalizers, labels, the operator's own patches)
//! pass without a check and keep the stamp they had: an annotation edit cannot raise a CR's
//! rights, and an unstamped CR stays unstamped (fail-closed rules) until its author
//! re-applies it.

pub mod certs;
pub mod server;

use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::authentication::v1::UserInfo;
use k8s_openapi::api::authorization::v1::{SubjectAccessReview, SubjectAccessReviewSpec};
use kube::api::{Api, PostParams};
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview, Operation};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::access::{self, Permission};
use crate::controller::{CaptureResource, targets};
use crate::crd::{SnoopyJob, Tcpdump};
use crate::plan::Authorization;
use crate::settings::Settings;
use crate::stamp::{ANNOTATION, StampKey, Subject};

/// The longest a CR's validation (its filter's compilation) may take at admission; the
/// apiserver gives the webhook 10 s in all.
pub const VALIDATION_TIMEOUT: Duration = Duration::from_secs(5);

/// What the webhook handlers share.
pub struct Webhook {
    /// The operator's client (SubjectAccessReviews, pod lists).
    pub client: Client,
    /// The admin's settings (the same as the reconciler's).
    pub settings: Arc<Settings>,
    /// The stamp key (the same as the reconciler's).
    pub key: StampKey,
}

/// Which webhook answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// Validate, check permissions, stamp.
    Mutate,
    /// Refuse what no longer matches its stamp.
    Validate,
}

impl Webhook {
    /// Answers one AdmissionReview.
    pub async fn review(
        &self,
        review: AdmissionReview<DynamicObject>,
        stage: Stage,
    ) -> AdmissionReview<DynamicObject> {
        let req: AdmissionRequest<DynamicObject> = match review.try_into() {
            Ok(req) => req,
            Err(e) => return AdmissionResponse::invalid(e.to_string()).into_review(),
        };
        let response = match req.kind.kind.as_str() {
            "SnoopyJob" => self.admit::<SnoopyJob>(&req, stage).await,
            "Tcpdump" => self.admit::<Tcpdump>(&req, stage).await,
            other => AdmissionResponse::from(&req).deny(format!(
                "snoopy-operator's webhook does not handle kind {other}"
            )),
        };
        response.into_review()
    }

    async fn admit<K: CaptureResource>(
        &self,
        req: &AdmissionRequest<DynamicObject>,
        stage: Stage,
    ) -> AdmissionResponse {
        let response = AdmissionResponse::from(req);
        if !matches!(req.operation, Operation::Create | Operation::Update) {
            return response;
        }
        let kind = K::kind(&()).to_string();
        let Some(object) = &req.object else {
            return response.deny("the request carries no object");
        };
        let cr: K = match typed(object) {
            Ok(cr) => cr,
            Err(e) => return response.deny(format!("not a valid {kind}: {e}")),
        };
        // Being deleted: only the finalizer changes now; never stand in its way.
        if cr.meta().deletion_timestamp.is_some() {
            return response;
        }
        let stamp = cr.annotations().get(ANNOTATION).cloned();
        let old: Option<K> = req.old_object.as_ref().and_then(|o| typed(o).ok());
        if let Some(old) = &old
            && old.spec_json() == cr.spec_json()
        {
            let kept = old.annotations().get(ANNOTATION).cloned();
            return match stage {
                Stage::Mutate if kept != stamp => set_stamp(response, &cr, kept),
                _ => response,
            };
        }
        let namespace = req
            .namespace
            .clone()
            .or_else(|| cr.namespace())
            .unwrap_or_default();
        let spec = cr.spec_json();
        let subject = Subject {
            kind: &kind,
            namespace: &namespace,
            spec_json: &spec,
        };
        if stage == Stage::Validate {
            return match self.key.verify(stamp.as_deref(), subject) {
                Ok(_) => response,
                Err(e) => response.deny(format!(
                    "{kind} {namespace}/{}: {e}; Snoopy's mutating webhook stamps every spec it checked, so another admission webhook changed this one after it",
                    req.name
                )),
            };
        }
        let user = req.user_info.username.clone().unwrap_or_default();
        match self.check(cr, &req.user_info, &namespace).await {
            Ok(cluster_wide_exec) => {
                let issued = jiff::Timestamp::now().to_string();
                let value = self.key.sign(subject, &user, cluster_wide_exec, &issued);
                set_stamp(response, object, Some(value))
            }
            Err(why) => response.deny(why.to_string()),
        }
    }

    /// Validates `cr` and checks `user`'s permissions for it; whether the user may `create
    /// pods/exec` in every namespace, or why the CR is refused.
    async fn check<K: CaptureResource>(
        &self,
        cr: K,
        user: &UserInfo,
        namespace: &str,
    ) -> Result<bool, Refusal> {
        let name = user.username.as_deref().unwrap_or("(no user name)");
        // Planned as if authorized: the permissions are what is checked next. On a blocking
        // thread, bounded: a filter's compilation is the costly part.
        let settings = self.settings.clone();
        let validation = tokio::task::spawn_blocking(move || {
            cr.plan(
                &settings,
                &Authorization::Checked {
                    user: String::new(),
                    cluster_wide_exec: true,
                },
            )
        });
        let mut plan = match tokio::time::timeout(VALIDATION_TIMEOUT, validation).await {
            Ok(Ok(Ok(plan))) => plan,
            Ok(Ok(Err(invalid))) => return Err(Refusal::Invalid(invalid)),
            Ok(Err(e)) => {
                return Err(Refusal::Unavailable(format!(
                    "validating the spec failed: {e}"
                )));
            }
            Err(_) => return Err(Refusal::TooSlow),
        };
        let needed = access::required(&plan, namespace, &self.settings.namespace);
        let mut missing = Vec::new();
        for permission in &needed {
            if !self.can(user, permission).await? {
                missing.push(permission.clone());
            }
        }
        if !missing.is_empty() {
            return Err(Refusal::Missing {
                user: name.to_owned(),
                missing,
            });
        }
        let everywhere = Permission::exec_in(None);
        let cluster_wide = needed.contains(&everywhere) || self.can(user, &everywhere).await?;
        if !cluster_wide {
            plan.host_network = false;
            let found = targets::find(&self.client, &plan).await.map_err(|e| {
                Refusal::Unavailable(format!("listing the target pods failed: {e}"))
            })?;
            if let Some(first) = found.host_network_refused.iter().next() {
                return Err(Refusal::HostNetwork {
                    user: name.to_owned(),
                    pod: first.clone(),
                });
            }
        }
        Ok(cluster_wide)
    }

    /// Whether `user` may do `permission` (a SubjectAccessReview); an error (fail closed)
    /// when the API server cannot say.
    async fn can(&self, user: &UserInfo, permission: &Permission) -> Result<bool, Refusal> {
        let review = SubjectAccessReview {
            spec: SubjectAccessReviewSpec {
                user: user.username.clone(),
                groups: user.groups.clone(),
                uid: user.uid.clone(),
                extra: user.extra.clone(),
                resource_attributes: Some(permission.attributes()),
                ..Default::default()
            },
            ..Default::default()
        };
        let answer = Api::<SubjectAccessReview>::all(self.client.clone())
            .create(&PostParams::default(), &review)
            .await
            .map_err(|e| {
                Refusal::Unavailable(format!("asking the API server whether the user may {permission} failed (create subjectaccessreviews): {e}"))
            })?;
        Ok(answer
            .status
            .is_some_and(|s| s.allowed && !s.denied.unwrap_or(false)))
    }
}

/// Why the webhook refuses a CR (the text `kubectl apply` shows).
#[derive(Debug, thiserror::Error)]
pub enum Refusal {
    /// The spec is invalid: the condition the reconciler would set.
    #[error("{}: {}", .0.reason, .0.message)]
    Invalid(crate::plan::Invalid),
    /// Validating took longer than [`VALIDATION_TIMEOUT`].
    #[error("InvalidFilter: validating the spec took longer than {} s (the filter's compilation); simplify the filter", VALIDATION_TIMEOUT.as_secs())]
    TooSlow,
    /// The user lacks permissions the CR needs.
    #[error("NotAuthorized: {user} may not {}; what a Snoopy CR sees or runs in a pod takes what kubectl exec into it takes (an admin grants it with a Role and RoleBinding)", .missing.iter().map(ToString::to_string).collect::<Vec<_>>().join(", nor "))]
    Missing {
        /// Who asked.
        user: String,
        /// What they may not do.
        missing: Vec<Permission>,
    },
    /// A target pod is on the node's network and the user may not exec everywhere.
    #[error(
        "NotAuthorized: pod {pod} uses the node's network, so its traffic is the whole node's: targeting it takes create pods/exec in every namespace, which {user} may not; narrow podSelector"
    )]
    HostNetwork {
        /// Who asked.
        user: String,
        /// `namespace/name` of the pod.
        pod: String,
    },
    /// The API server could not answer (fail closed).
    #[error("{0}")]
    Unavailable(String),
}

fn typed<K: CaptureResource>(object: &DynamicObject) -> Result<K, serde_json::Error> {
    serde_json::to_value(object).and_then(serde_json::from_value)
}

/// Allows with a patch that sets the stamp annotation to `value` (removes it when `None`).
fn set_stamp(
    response: AdmissionResponse,
    object: &impl ResourceExt,
    value: Option<String>,
) -> AdmissionResponse {
    let has_annotations = object.meta().annotations.is_some();
    let has_stamp = object.annotations().contains_key(ANNOTATION);
    // A JSON pointer escapes '/' as "~1".
    let path = format!(
        "/metadata/annotations/{}",
        ANNOTATION.replace('~', "~0").replace('/', "~1")
    );
    let ops = match (value, has_annotations, has_stamp) {
        (Some(v), false, _) => {
            json!([{"op": "add", "path": "/metadata/annotations", "value": {ANNOTATION: v}}])
        }
        (Some(v), true, _) => json!([{"op": "add", "path": path, "value": v}]),
        (None, _, true) => json!([{"op": "remove", "path": path}]),
        (None, _, false) => return response,
    };
    let patch: json_patch::Patch = serde_json::from_value(ops).expect("a JSON patch");
    match response.clone().with_patch(patch) {
        Ok(r) => r,
        Err(e) => response.deny(format!("building the stamp patch failed: {e}")),
    }
}
