//! The reconciler (the kube-rs controller-rs shape): a [`Context`], the free functions
//! [`reconcile`] and [`error_policy`], a finalizer for cleanup, and [`run`] wiring the
//! watches. Level-triggered: every reconcile reads Jobs, pods and the CR and converges;
//! Job names are deterministic, so repeating a reconcile (or restarting mid-way) never
//! duplicates a Job.

mod apply;
mod decide;
mod paged;
mod per_node;
pub mod pod_watch;
pub(crate) mod targets;

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::batch::v1::Job;
use kube::api::{Api, ListParams};
use kube::runtime::controller::{Action, Controller};
use kube::runtime::events::Reporter;
use kube::runtime::finalizer::{Event as Finalizer, finalizer};
use kube::runtime::reflector::ObjectRef;
use kube::runtime::watcher;
use kube::{Client, Resource, ResourceExt};
use serde::Serialize;
use serde::de::DeserializeOwned;
use tracing::{info, instrument, warn};

use crate::crd::{CaptureStatus, SnoopyJob, Tcpdump};
use crate::metrics::{ErrorLabels, KindLabels, Metrics};
use crate::naming;
use crate::plan::{Authorization, CrRef, Invalid, Namespaces, Plan};
use crate::selector;
use crate::settings::Settings;
use crate::stamp::{self, StampKey, Subject};

/// What every reconcile gets.
pub struct Context {
    /// The API client.
    pub client: Client,
    /// Job settings.
    pub settings: Settings,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Who publishes Events.
    pub reporter: Reporter,
    /// Each CR's plan for its current generation (validating compiles the filter: once per
    /// generation, not on every reconcile or pod event).
    pub plans: PlanCache,
    /// The key that signs and verifies authorization stamps; `None` when the operator runs
    /// without its webhook (every CR then gets the fail-closed rules).
    pub stamp_key: Option<StampKey>,
}

impl Context {
    /// A context with an empty plan cache.
    pub fn new(
        client: Client,
        settings: Settings,
        metrics: Arc<Metrics>,
        reporter: Reporter,
    ) -> Self {
        Self {
            client,
            settings,
            metrics,
            reporter,
            plans: PlanCache::default(),
            stamp_key: None,
        }
    }

    /// The same, verifying stamps with `key`.
    pub fn with_stamp_key(mut self, key: StampKey) -> Self {
        self.stamp_key = Some(key);
        self
    }
}

/// Plans by CR uid, each for one generation and stamp: a CR is validated (its filter
/// compiled) again only when its spec or its authorization stamp changes (the stamp is an
/// annotation: it does not change the generation). The settings are fixed for the
/// operator's life, and a CR's namespace and name never change, so (uid, generation, stamp)
/// determines the plan.
#[derive(Debug, Default)]
pub struct PlanCache {
    plans: Mutex<HashMap<String, Planned>>,
}

/// A plan and the generation and stamp it was made for.
type Planned = (i64, Option<String>, Result<Plan, Invalid>);

impl PlanCache {
    /// The plan of CR `uid` at `generation` with `stamp`, made by `make` unless already
    /// made for both. Without a uid or generation (never from the API server) nothing is
    /// kept.
    pub fn get_or_make(
        &self,
        uid: Option<&str>,
        generation: Option<i64>,
        stamp: Option<&str>,
        make: impl FnOnce() -> Result<Plan, Invalid>,
    ) -> Result<Plan, Invalid> {
        let (Some(uid), Some(generation)) = (uid, generation) else {
            return make();
        };
        let mut plans = self.plans.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((g, s, plan)) = plans.get(uid)
            && *g == generation
            && s.as_deref() == stamp
        {
            return plan.clone();
        }
        let plan = make();
        plans.insert(
            uid.to_owned(),
            (generation, stamp.map(str::to_owned), plan.clone()),
        );
        plan
    }

    /// Forgets a CR (deleted).
    pub fn forget(&self, uid: &str) {
        self.plans
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(uid);
    }

    /// How many CRs have a plan kept.
    pub fn len(&self) -> usize {
        self.plans.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    /// Whether no plan is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Reconcile failures (they are retried by [`error_policy`]).
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// An API call failed.
    #[error("{action}: {source}")]
    Kube {
        /// What was being done (`list Jobs in snoopy-operator`).
        action: String,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// Adding or removing the finalizer, or the cleanup, failed.
    #[error("finalizer: {0}")]
    Finalizer(#[source] Box<kube::runtime::finalizer::Error<Error>>),
    /// Cleanup is waiting for Jobs to disappear.
    #[error("waiting for {0} Jobs to be deleted")]
    JobsRemain(usize),
    /// A Job with our name exists but belongs to something else (a hash collision or a
    /// foreign object).
    #[error("Job {0} exists and is not ours (owner-uid label differs); delete it or rename the CR")]
    Conflict(String),
}

impl Error {
    fn short(&self) -> &'static str {
        match self {
            Self::Kube { .. } => "kube",
            Self::Finalizer(_) => "finalizer",
            Self::JobsRemain(_) => "jobs_remain",
            Self::Conflict(_) => "conflict",
        }
    }
}

/// Wraps a client error with what was being done.
pub(crate) fn kube_err(action: impl Into<String>) -> impl FnOnce(kube::Error) -> Error {
    let action = action.into();
    move |source| Error::Kube { action, source }
}

/// A custom resource the operator turns into Jobs (both kinds share everything below).
pub trait CaptureResource:
    Resource<DynamicType = (), Scope = NamespaceResourceScope>
    + Clone
    + Debug
    + Serialize
    + DeserializeOwned
    + Send
    + Sync
    + 'static
{
    /// The validated plan under the admin's settings for what `authorization` allows, or
    /// why the CR cannot run. Compiles the filter: call it through [`PlanCache`], never per
    /// pod event.
    fn plan(&self, settings: &Settings, authorization: &Authorization) -> Result<Plan, Invalid>;
    /// The spec as the authorization stamp covers it (see [`crate::stamp::Subject`]).
    fn spec_json(&self) -> Vec<u8>;
    /// The namespaces and pod selector the spec names, unvalidated and cheap: what the pod
    /// watch uses to decide which CRs a pod event concerns.
    fn scope(
        &self,
    ) -> (
        Namespaces,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    );
    /// The current status.
    fn capture_status(&self) -> Option<&CaptureStatus>;
}

fn cr_ref<'a, K: Resource>(cr: &'a K, authorization: &'a Authorization) -> CrRef<'a> {
    CrRef {
        namespace: cr.meta().namespace.as_deref().unwrap_or_default(),
        name: cr.meta().name.as_deref().unwrap_or_default(),
        authorization,
    }
}

/// What a CR's stamp authorizes: verified with the operator's key, or why not (no key: the
/// operator runs without its webhook, so nothing can be checked).
pub fn authorization<K: CaptureResource>(cr: &K, key: Option<&StampKey>) -> Authorization {
    let Some(key) = key else {
        return Authorization::Unchecked {
            why: "the operator runs without its admission webhook".into(),
        };
    };
    let spec = cr.spec_json();
    let subject = Subject {
        kind: &K::kind(&()),
        namespace: cr.meta().namespace.as_deref().unwrap_or_default(),
        spec_json: &spec,
    };
    match key.verify(
        cr.annotations().get(stamp::ANNOTATION).map(String::as_str),
        subject,
    ) {
        Ok(s) => Authorization::Checked {
            user: s.user,
            cluster_wide_exec: s.cluster_wide_exec,
        },
        Err(e) => Authorization::Unchecked { why: e.to_string() },
    }
}

impl CaptureResource for Tcpdump {
    fn plan(&self, settings: &Settings, authorization: &Authorization) -> Result<Plan, Invalid> {
        Plan::for_tcpdump(&self.spec, cr_ref(self, authorization), settings)
    }
    fn spec_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.spec).expect("a spec serializes")
    }
    fn scope(
        &self,
    ) -> (
        Namespaces,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) {
        (
            Namespaces::Named(self.spec.target_namespace.clone()),
            selector::from_map(&self.spec.pod_label),
        )
    }
    fn capture_status(&self) -> Option<&CaptureStatus> {
        self.status.as_ref()
    }
}

impl CaptureResource for SnoopyJob {
    fn plan(&self, settings: &Settings, authorization: &Authorization) -> Result<Plan, Invalid> {
        Plan::for_snoopyjob(&self.spec, cr_ref(self, authorization), settings)
    }
    fn spec_json(&self) -> Vec<u8> {
        serde_json::to_vec(&self.spec).expect("a spec serializes")
    }
    fn scope(
        &self,
    ) -> (
        Namespaces,
        k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector,
    ) {
        let namespaces = match (&self.spec.target_namespace, &self.spec.namespace_selector) {
            (Some(ns), _) => Namespaces::Named(ns.clone()),
            (None, Some(sel)) => Namespaces::Selector(sel.clone()),
            // Invalid (neither): its reconcile says so; pod events change nothing.
            (None, None) => Namespaces::Named(String::new()),
        };
        (namespaces, self.spec.pod_selector.clone())
    }
    fn capture_status(&self) -> Option<&CaptureStatus> {
        self.status.as_ref()
    }
}

/// Reconciles one CR: the finalizer first, then converge (or clean up when deleted).
#[instrument(skip_all, fields(kind = %K::kind(&()), cr = %format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())))]
pub async fn reconcile<K: CaptureResource>(
    obj: Arc<K>,
    ctx: Arc<Context>,
) -> Result<Action, Error> {
    let kind = K::kind(&()).to_string();
    ctx.metrics
        .reconciles
        .get_or_create(&KindLabels { kind: kind.clone() })
        .inc();
    let started = std::time::Instant::now();
    let ns = obj.namespace().unwrap_or_default();
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ns);
    let result = finalizer(&api, naming::FINALIZER, obj, |event| async {
        match event {
            Finalizer::Apply(cr) => apply::apply(cr, &ctx).await,
            Finalizer::Cleanup(cr) => {
                let result = apply::cleanup(cr.clone(), &ctx).await;
                if result.is_ok()
                    && let Some(uid) = cr.uid()
                {
                    ctx.plans.forget(&uid);
                }
                result
            }
        }
    })
    .await
    .map_err(|e| Error::Finalizer(Box::new(e)));
    ctx.metrics
        .duration
        .get_or_create(&KindLabels { kind })
        .observe(started.elapsed().as_secs_f64());
    result
}

/// Retries failed reconciles: soon when cleanup waits for Jobs, later for API errors.
pub fn error_policy<K: CaptureResource>(obj: Arc<K>, error: &Error, ctx: Arc<Context>) -> Action {
    let inner = match error {
        Error::Finalizer(e) => match e.as_ref() {
            kube::runtime::finalizer::Error::ApplyFailed(e)
            | kube::runtime::finalizer::Error::CleanupFailed(e) => e,
            _ => error,
        },
        other => other,
    };
    ctx.metrics
        .errors
        .get_or_create(&ErrorLabels {
            kind: K::kind(&()).to_string(),
            error: inner.short().into(),
        })
        .inc();
    if matches!(inner, Error::JobsRemain(_)) {
        return Action::requeue(Duration::from_secs(1));
    }
    warn!(cr = %obj.name_any(), error = %error, "reconcile failed");
    Action::requeue(Duration::from_secs(5))
}

/// Fails with a hint when the CRDs are not installed (a list of each kind answers 404).
pub async fn check_crds(client: &Client) -> anyhow::Result<()> {
    async fn check<K: CaptureResource>(client: &Client) -> anyhow::Result<()> {
        let api: Api<K> = Api::all(client.clone());
        match api.list(&ListParams::default().limit(1)).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(s)) if s.code == 404 => anyhow::bail!(
                "the {} CRD ({}) is not installed: run `kubectl apply -k snoopy-operator/config/crd` (or `make deploy`)",
                K::kind(&()),
                K::api_version(&())
            ),
            Err(e) => {
                Err(anyhow::Error::new(e)
                    .context(format!("listing {} to check its CRD", K::kind(&()))))
            }
        }
    }
    check::<Tcpdump>(client).await?;
    check::<SnoopyJob>(client).await
}

/// Runs both controllers until a shutdown signal, fed by one metadata-only pod watch.
pub async fn run(ctx: Arc<Context>) {
    let (watch, [tcpdump_pods, snoopyjob_pods]) = pod_watch::shared(ctx.client.clone());
    let controllers = futures::future::join(
        controller::<Tcpdump>(ctx.clone(), tcpdump_pods),
        controller::<SnoopyJob>(ctx, snoopyjob_pods),
    );
    // The watch never ends by itself: the controllers' end (a shutdown signal) ends both.
    futures::future::select(std::pin::pin!(watch), std::pin::pin!(controllers)).await;
}

/// One controller: the CRs, the Jobs they own (by label) and the pods they select (from
/// the shared pod watch).
pub async fn controller<K: CaptureResource>(ctx: Arc<Context>, pods: pod_watch::PodEvents) {
    let client = ctx.client.clone();
    let crs: Api<K> = match &ctx.settings.watch_namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    let jobs: Api<Job> = Api::namespaced(client, &ctx.settings.namespace);
    let kind = K::kind(&()).to_string();
    let job_labels = format!(
        "{}={},{}={kind}",
        naming::MANAGED_BY,
        naming::MANAGED_BY_VALUE,
        naming::OWNER_KIND
    );
    // A burst of pod events (a Deployment scaled to 200) becomes a few reconciles, not 200.
    let config = kube::runtime::controller::Config::default().debounce(Duration::from_millis(200));
    let controller =
        Controller::new(crs, watcher::Config::default().any_semantic()).with_config(config);
    let store = controller.store();
    controller
        .watches(
            jobs,
            watcher::Config::default()
                .labels(&job_labels)
                .any_semantic(),
            owner_of::<K>,
        )
        .watches_stream(pods, move |pod: pod_watch::PodMeta| {
            // A Job's own pod (Pending → Running) concerns the CR that owns the Job.
            if let Some(owner) = job_pod_owner::<K>(&pod) {
                return vec![owner];
            }
            store
                .state()
                .into_iter()
                .filter(|cr| selects(cr.as_ref(), &pod))
                .map(|cr| ObjectRef::from_obj(cr.as_ref()))
                .collect::<Vec<_>>()
        })
        .shutdown_on_signal()
        .run(reconcile::<K>, error_policy::<K>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                info!(error = %e, "controller event");
            }
        })
        .await;
}

/// The CR a Job belongs to, from its annotation.
fn owner_of<K: CaptureResource>(job: Job) -> Option<ObjectRef<K>> {
    owner_ref(job.annotations())
}

/// The CR of kind `K` a Job's pod belongs to: managed by this operator, of this kind.
fn job_pod_owner<K: CaptureResource>(pod: &impl Resource) -> Option<ObjectRef<K>> {
    let labels = pod.labels();
    let ours = labels.get(naming::MANAGED_BY).map(String::as_str) == Some(naming::MANAGED_BY_VALUE)
        && labels.get(naming::OWNER_KIND).map(String::as_str) == Some(&*K::kind(&()));
    if !ours {
        return None;
    }
    owner_ref(pod.annotations())
}

fn owner_ref<K: CaptureResource>(
    annotations: &std::collections::BTreeMap<String, String>,
) -> Option<ObjectRef<K>> {
    let owner = annotations.get(naming::OWNER_ANNOTATION)?;
    let (ns, name) = owner.split_once('/')?;
    Some(ObjectRef::new(name).within(ns))
}

/// Whether a pod event concerns a CR: the pod is in its namespace and matches its selector.
/// Selector-based namespaces cannot be checked without the namespace's labels, so those CRs
/// are reconciled for every pod that matches the pod selector. Reads the spec only (no
/// validation, no filter compiling): this runs for every CR on every pod event.
fn selects<K: CaptureResource>(cr: &K, pod: &impl Resource) -> bool {
    let (namespaces, pod_selector) = cr.scope();
    let in_namespace = match &namespaces {
        Namespaces::Named(ns) => pod.namespace().as_deref() == Some(ns.as_str()),
        Namespaces::Selector(_) => true,
    };
    in_namespace && selector::matches(&pod_selector, pod.labels())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::build;
    use crate::job::fixtures::{owner, poc_plan, target};
    use k8s_openapi::api::core::v1::Pod;

    /// The filter is compiled once per generation: the same generation is answered from the
    /// cache, a new one is planned again, and a forgotten CR starts over.
    #[test]
    fn plans_are_made_once_per_generation() {
        let cache = PlanCache::default();
        let made = std::cell::Cell::new(0);
        let make = || {
            made.set(made.get() + 1);
            Ok(poc_plan())
        };
        for _ in 0..3 {
            assert_eq!(
                cache.get_or_make(Some("u1"), Some(1), None, make),
                Ok(poc_plan())
            );
        }
        assert_eq!(made.get(), 1);
        cache.get_or_make(Some("u1"), Some(2), None, make).unwrap();
        cache.get_or_make(Some("u1"), Some(2), None, make).unwrap();
        assert_eq!(made.get(), 2);
        cache.get_or_make(Some("u2"), Some(2), None, make).unwrap();
        assert_eq!((made.get(), cache.len()), (3, 2));
        cache.forget("u1");
        cache.get_or_make(Some("u1"), Some(2), None, make).unwrap();
        assert_eq!(made.get(), 4);
        // A stamp added (or changed) without a spec change plans again.
        cache
            .get_or_make(Some("u1"), Some(2), Some("s"), make)
            .unwrap();
        cache
            .get_or_make(Some("u1"), Some(2), Some("s"), make)
            .unwrap();
        assert_eq!(made.get(), 5);
    }

    /// The pod watch's question reads the spec only: a CR whose filter does not compile (or
    /// that the policy refuses) still maps its pods, and nothing is compiled to answer.
    #[test]
    fn the_pod_mapper_needs_no_plan() {
        let cr: SnoopyJob = serde_json::from_value(serde_json::json!({
            "apiVersion": "snoopy.fennecproject.io/v1alpha1", "kind": "SnoopyJob",
            "metadata": {"name": "x", "namespace": "shop"},
            "spec": {"targetNamespace": "shop", "podSelector": {"matchLabels": {"app": "web"}},
                     "tool": {"capture": {"filter": "tcp and and", "packetCount": 1}}},
        }))
        .unwrap();
        let pod = |ns: &str, app: &str| Pod {
            metadata: kube::api::ObjectMeta {
                namespace: Some(ns.into()),
                labels: Some([("app".to_owned(), app.to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert!(selects(&cr, &pod("shop", "web")));
        assert!(!selects(&cr, &pod("shop", "db")));
        assert!(!selects(&cr, &pod("other", "web")));
    }

    /// A Job's pod (as the Job controller makes it from the template) leads to its CR, of
    /// the right kind only; a target pod does not.
    #[test]
    fn a_job_pod_leads_to_its_owner() {
        let job = build(
            &owner(),
            &target(),
            naming::RUN_ONCE,
            &poc_plan(),
            &Settings::default(),
        );
        let pod = Pod {
            metadata: job.spec.unwrap().template.metadata.unwrap(),
            ..Default::default()
        };
        assert_eq!(
            job_pod_owner::<Tcpdump>(&pod),
            Some(ObjectRef::new("tcpdump-sample").within("cnf-telco"))
        );
        assert_eq!(job_pod_owner::<SnoopyJob>(&pod), None);
        let target_pod = Pod {
            metadata: kube::api::ObjectMeta {
                labels: Some([("networkMonitor".to_owned(), "true".to_owned())].into()),
                ..Default::default()
            },
            ..Default::default()
        };
        assert_eq!(job_pod_owner::<Tcpdump>(&target_pod), None);
    }
}
