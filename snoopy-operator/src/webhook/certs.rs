//! The webhook's TLS certificate and the stamp key, kept in one Secret of the operator's
//! namespace, and the caBundle of the webhook configurations: what cert-manager would do,
//! done by the operator at start so that `make deploy` needs nothing else.
//!
//! The certificate is self-signed for the names the apiserver calls (the Service's DNS
//! names, or the testbed's 127.0.0.1), valid ten years, and made again when those names
//! change; the configurations trust exactly it (their caBundle). The stamp key is made once
//! and kept: a new key would turn every existing CR's stamp invalid.

use std::collections::BTreeMap;

use anyhow::Context as _;
use k8s_openapi::ByteString;
use k8s_openapi::api::admissionregistration::v1::{
    MutatingWebhookConfiguration, ValidatingWebhookConfiguration,
};
use k8s_openapi::api::core::v1::Secret;
use kube::api::{Api, Patch, PatchParams, PostParams};
use kube::{Client, ResourceExt};
use serde_json::json;

use crate::stamp::StampKey;

/// The Secret (in the operator's namespace).
pub const SECRET: &str = "snoopy-operator-webhook";
/// Both webhook configurations' name.
pub const CONFIGURATION: &str = "snoopy-operator";
/// Secret key: the stamp key's bytes.
const STAMP_KEY: &str = "stamp.key";
/// Secret annotation: the names the certificate is for (comma-separated).
const HOSTS_ANNOTATION: &str = "snoopy.fennecproject.io/certificate-hosts";

/// The webhook's certificate and key (PEM) and the stamp key.
pub struct Material {
    /// The certificate, PEM (also the configurations' caBundle).
    pub cert_pem: String,
    /// Its private key, PEM.
    pub key_pem: String,
    /// The stamp key.
    pub stamp_key: StampKey,
}

/// A self-signed certificate for `hosts` (DNS names or IP addresses) and its key, PEM.
pub fn self_signed(hosts: &[String]) -> anyhow::Result<(String, String)> {
    anyhow::ensure!(
        !hosts.is_empty(),
        "the webhook certificate needs at least one host name (SNOOPY_WEBHOOK_HOSTS)"
    );
    let mut params = rcgen::CertificateParams::new(hosts.to_vec())
        .with_context(|| format!("webhook certificate names {hosts:?}"))?;
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, hosts[0].clone());
    let year = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::UTC)
        .year();
    params.not_before = rcgen::date_time_ymd(i32::from(year) - 1, 1, 1);
    params.not_after = rcgen::date_time_ymd(i32::from(year) + 10, 1, 1);
    let key = rcgen::KeyPair::generate().context("generating the webhook's key (rcgen)")?;
    let cert = params
        .self_signed(&key)
        .context("signing the webhook certificate (rcgen)")?;
    Ok((cert.pem(), key.serialize_pem()))
}

/// Reads the Secret, completing it (certificate for `hosts`, stamp key) where needed.
pub async fn ensure(
    client: &Client,
    namespace: &str,
    hosts: &[String],
) -> anyhow::Result<Material> {
    let api: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let existing = api
        .get_opt(SECRET)
        .await
        .with_context(|| format!("get secret {namespace}/{SECRET} (the operator's Role needs get, create, update on secrets)"))?;
    let mut secret = existing.clone().unwrap_or_default();
    secret.metadata.name = Some(SECRET.into());
    secret.metadata.namespace = Some(namespace.into());
    secret.type_ = Some("kubernetes.io/tls".into());
    let wanted_hosts = hosts.join(",");
    let same_hosts = secret.annotations().get(HOSTS_ANNOTATION) == Some(&wanted_hosts);
    let mut data = secret.data.take().unwrap_or_default();
    let field = |data: &BTreeMap<String, ByteString>, key: &str| {
        data.get(key)
            .and_then(|v| String::from_utf8(v.0.clone()).ok())
    };
    let stamp_key = match data.get(STAMP_KEY).map(|v| StampKey::from_bytes(&v.0)) {
        Some(Ok(key)) => key,
        _ => {
            let (key, bytes) = StampKey::generate().context("generating the stamp key")?;
            data.insert(STAMP_KEY.into(), ByteString(bytes));
            key
        }
    };
    let current = (field(&data, "tls.crt"), field(&data, "tls.key"));
    let (cert_pem, key_pem) = match current {
        (Some(c), Some(k)) if same_hosts => (c, k),
        _ => {
            let (c, k) = self_signed(hosts)?;
            data.insert("tls.crt".into(), ByteString(c.clone().into_bytes()));
            data.insert("tls.key".into(), ByteString(k.clone().into_bytes()));
            secret
                .annotations_mut()
                .insert(HOSTS_ANNOTATION.into(), wanted_hosts);
            (c, k)
        }
    };
    secret.data = Some(data);
    if existing.as_ref() != Some(&secret) {
        if existing.is_some() {
            api.replace(SECRET, &PostParams::default(), &secret)
                .await
                .with_context(|| format!("update secret {namespace}/{SECRET}"))?;
        } else {
            api.create(&PostParams::default(), &secret)
                .await
                .with_context(|| format!("create secret {namespace}/{SECRET}"))?;
        }
    }
    Ok(Material {
        cert_pem,
        key_pem,
        stamp_key,
    })
}

/// Sets the caBundle of every webhook in the configurations named `name` to `cert_pem`;
/// which configurations were found (none: the webhook is not registered, and every CR gets
/// the fail-closed rules).
pub async fn publish_ca_bundle(
    client: &Client,
    name: &str,
    cert_pem: &str,
) -> anyhow::Result<Vec<&'static str>> {
    let bundle = serde_json::to_value(ByteString(cert_pem.as_bytes().to_vec()))?;
    let mut found = Vec::new();
    if patch_bundle::<MutatingWebhookConfiguration>(client, name, &bundle, |c| {
        c.webhooks.as_ref().map_or(0, Vec::len)
    })
    .await?
    {
        found.push("MutatingWebhookConfiguration");
    }
    if patch_bundle::<ValidatingWebhookConfiguration>(client, name, &bundle, |c| {
        c.webhooks.as_ref().map_or(0, Vec::len)
    })
    .await?
    {
        found.push("ValidatingWebhookConfiguration");
    }
    Ok(found)
}

/// Sets the caBundle of each of the `webhooks` of configuration `name`, if it exists.
async fn patch_bundle<K>(
    client: &Client,
    name: &str,
    bundle: &serde_json::Value,
    webhooks: impl Fn(&K) -> usize,
) -> anyhow::Result<bool>
where
    K: kube::Resource<DynamicType = (), Scope = k8s_openapi::ClusterResourceScope>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let kind = K::kind(&()).to_lowercase();
    let api: Api<K> = Api::all(client.clone());
    let Some(config) = api
        .get_opt(name)
        .await
        .with_context(|| format!("get {kind} {name}"))?
    else {
        return Ok(false);
    };
    api.patch(
        name,
        &PatchParams::default(),
        &Patch::Json::<()>(ca_patch(webhooks(&config), bundle)),
    )
    .await
    .with_context(|| format!("patch {kind} {name} (caBundle)"))?;
    Ok(true)
}

fn ca_patch(webhooks: usize, bundle: &serde_json::Value) -> json_patch::Patch {
    let ops: Vec<serde_json::Value> = (0..webhooks)
        .map(|i| json!({"op": "add", "path": format!("/webhooks/{i}/clientConfig/caBundle"), "value": bundle}))
        .collect();
    serde_json::from_value(serde_json::Value::Array(ops)).expect("a JSON patch")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_certificate_is_for_the_names_asked() {
        let (cert, key) = self_signed(&[
            "snoopy-operator-webhook.snoopy-operator.svc".into(),
            "127.0.0.1".into(),
        ])
        .unwrap();
        assert!(cert.starts_with("-----BEGIN CERTIFICATE-----"));
        assert!(key.contains("PRIVATE KEY-----"));
        // rustls takes it as a server certificate for those names.
        super::super::server::tls_config(&cert, &key).unwrap();
        assert!(self_signed(&[]).is_err());
    }
}
