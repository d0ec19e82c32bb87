//! Where and how to connect: `kafka://BROKER[,BROKER…]/TOPIC` plus TLS and SASL settings
//! read from the environment or a settings file — never from the command line, where a
//! password would show in `ps` and in a Job's spec.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rskafka::client::{Credentials, SaslConfig};

use super::KafkaError;

// The names are the node-job contract's (snoopy-job), which the operator sets in its Jobs.

/// The environment variable naming a settings file (`KEY=VALUE` lines, same keys as the
/// variables; a variable that is set wins over the file).
pub const ENV_CONFIG: &str = snoopy_job::env::KAFKA_CONFIG;
/// Client id sent to the brokers (default `snoopy`).
pub const ENV_CLIENT_ID: &str = snoopy_job::env::KAFKA_CLIENT_ID;
/// PEM file of the CA(s) that signed the brokers' certificates; setting it turns TLS on.
pub const ENV_TLS_CA_FILE: &str = snoopy_job::env::KAFKA_TLS_CA_FILE;
/// PEM file of the client certificate (mutual TLS), with [`ENV_TLS_KEY_FILE`].
pub const ENV_TLS_CERT_FILE: &str = snoopy_job::env::KAFKA_TLS_CERT_FILE;
/// PEM file of the client certificate's private key.
pub const ENV_TLS_KEY_FILE: &str = snoopy_job::env::KAFKA_TLS_KEY_FILE;
/// SASL mechanism: `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
pub const ENV_SASL_MECHANISM: &str = snoopy_job::env::KAFKA_SASL_MECHANISM;
/// SASL user name.
pub const ENV_SASL_USERNAME: &str = snoopy_job::env::KAFKA_SASL_USERNAME;
/// SASL password (prefer [`ENV_SASL_PASSWORD_FILE`]: a mounted Secret).
pub const ENV_SASL_PASSWORD: &str = snoopy_job::env::KAFKA_SASL_PASSWORD;
/// File holding the SASL password (trailing newline ignored).
pub const ENV_SASL_PASSWORD_FILE: &str = snoopy_job::env::KAFKA_SASL_PASSWORD_FILE;

/// A SASL mechanism the client speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaslMechanism {
    /// `PLAIN` (RFC 4616): only over TLS in production.
    Plain,
    /// `SCRAM-SHA-256` (RFC 7677).
    ScramSha256,
    /// `SCRAM-SHA-512`.
    ScramSha512,
}

/// SASL credentials. `Debug` never shows the password.
#[derive(Clone)]
pub struct Sasl {
    /// The mechanism.
    pub mechanism: SaslMechanism,
    /// The user name.
    pub username: String,
    /// The password.
    pub password: String,
}

impl std::fmt::Debug for Sasl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sasl")
            .field("mechanism", &self.mechanism)
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// TLS to the brokers: the CA to trust and, for mutual TLS, a client certificate.
#[derive(Debug, Clone)]
pub struct Tls {
    /// PEM file of the CA certificates.
    pub ca_file: PathBuf,
    /// PEM files of the client certificate chain and its key.
    pub client: Option<(PathBuf, PathBuf)>,
}

/// Everything needed to reach one topic.
#[derive(Debug, Clone)]
pub struct KafkaSettings {
    /// Bootstrap brokers, `HOST:PORT`.
    pub brokers: Vec<String>,
    /// The topic.
    pub topic: String,
    /// The client id the brokers see.
    pub client_id: String,
    /// TLS, when set.
    pub tls: Option<Tls>,
    /// SASL, when set.
    pub sasl: Option<Sasl>,
    /// How long connecting and looking the topic up may take before it is an error.
    pub connect_timeout: Duration,
}

impl KafkaSettings {
    /// Settings for `kafka://BROKER[,BROKER…]/TOPIC` (or `kafkas://…` to require TLS), with
    /// no TLS or SASL yet: see [`from_env`](Self::from_env).
    pub fn from_url(url: &str) -> Result<Self, KafkaError> {
        let bad = |why: &str| {
            KafkaError::Settings(format!(
                "{url:?}: {why}; expected kafka://BROKER[:PORT][,BROKER…]/TOPIC"
            ))
        };
        let rest = url
            .strip_prefix("kafka://")
            .or_else(|| url.strip_prefix("kafkas://"))
            .ok_or_else(|| bad("not a kafka:// URL"))?;
        let (brokers, topic) = rest.split_once('/').ok_or_else(|| bad("no topic"))?;
        if topic.is_empty() || topic.contains('/') || !topic.chars().all(valid_topic_char) {
            return Err(bad("a topic name is letters, digits, '.', '_' and '-'"));
        }
        let brokers: Vec<String> = brokers
            .split(',')
            .filter(|b| !b.is_empty())
            .map(|b| {
                if b.rsplit_once(':')
                    .is_some_and(|(_, port)| port.parse::<u16>().is_ok())
                {
                    b.to_string()
                } else {
                    format!("{b}:9092")
                }
            })
            .collect();
        if brokers.is_empty() {
            return Err(bad("no broker"));
        }
        let tls = url.starts_with("kafkas://").then(|| Tls {
            ca_file: PathBuf::new(),
            client: None,
        });
        Ok(KafkaSettings {
            brokers,
            topic: topic.to_string(),
            client_id: "snoopy".to_string(),
            tls,
            sasl: None,
            connect_timeout: Duration::from_secs(10),
        })
    }

    /// [`from_url`](Self::from_url), then the TLS, SASL and client-id settings from the
    /// process environment and the file `$SNOOPY_KAFKA_CONFIG` names.
    pub fn from_env(url: &str) -> Result<Self, KafkaError> {
        Self::from_url(url)?.with_lookup(|key| std::env::var(key).ok())
    }

    /// Applies the settings `lookup` finds (an environment, for tests a map); see the
    /// `ENV_*` constants for the keys.
    pub fn with_lookup(
        mut self,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, KafkaError> {
        let file = match lookup(ENV_CONFIG) {
            Some(path) => read_settings_file(Path::new(&path))?,
            None => BTreeMap::new(),
        };
        let get = |key: &str| {
            lookup(key)
                .or_else(|| file.get(key).cloned())
                .filter(|v| !v.is_empty())
        };
        if let Some(id) = get(ENV_CLIENT_ID) {
            self.client_id = id;
        }
        if let Some(ca) = get(ENV_TLS_CA_FILE) {
            self.tls = Some(Tls {
                ca_file: ca.into(),
                client: None,
            });
        }
        match (get(ENV_TLS_CERT_FILE), get(ENV_TLS_KEY_FILE)) {
            (None, None) => {}
            (Some(cert), Some(key)) => match self.tls.as_mut() {
                Some(tls) => tls.client = Some((cert.into(), key.into())),
                None => {
                    return Err(KafkaError::Settings(format!(
                        "{ENV_TLS_CERT_FILE} is set but {ENV_TLS_CA_FILE} is not: name the CA that signed the brokers' certificates"
                    )));
                }
            },
            _ => {
                return Err(KafkaError::Settings(format!(
                    "set both {ENV_TLS_CERT_FILE} and {ENV_TLS_KEY_FILE} (client certificate and its key), or neither"
                )));
            }
        }
        if let Some(tls) = &self.tls
            && tls.ca_file.as_os_str().is_empty()
        {
            return Err(KafkaError::Settings(format!(
                "kafkas:// needs {ENV_TLS_CA_FILE}: the PEM file of the CA that signed the brokers' certificates"
            )));
        }
        if let Some(mechanism) = get(ENV_SASL_MECHANISM) {
            let mechanism = match mechanism.to_ascii_uppercase().as_str() {
                "PLAIN" => SaslMechanism::Plain,
                "SCRAM-SHA-256" => SaslMechanism::ScramSha256,
                "SCRAM-SHA-512" => SaslMechanism::ScramSha512,
                other => {
                    return Err(KafkaError::Settings(format!(
                        "{ENV_SASL_MECHANISM}={other}: supported are PLAIN, SCRAM-SHA-256, SCRAM-SHA-512"
                    )));
                }
            };
            let username = get(ENV_SASL_USERNAME).ok_or_else(|| {
                KafkaError::Settings(format!(
                    "{ENV_SASL_MECHANISM} is set but {ENV_SASL_USERNAME} is not"
                ))
            })?;
            let password = match (get(ENV_SASL_PASSWORD_FILE), get(ENV_SASL_PASSWORD)) {
                (Some(path), _) => std::fs::read_to_string(&path)
                    .map_err(|source| KafkaError::ReadFile {
                        what: "SASL password",
                        path: path.into(),
                        source,
                    })?
                    .trim_end_matches(['\r', '\n'])
                    .to_string(),
                (None, Some(password)) => password,
                (None, None) => {
                    return Err(KafkaError::Settings(format!(
                        "{ENV_SASL_MECHANISM} is set but neither {ENV_SASL_PASSWORD_FILE} nor {ENV_SASL_PASSWORD} is"
                    )));
                }
            };
            self.sasl = Some(Sasl {
                mechanism,
                username,
                password,
            });
        }
        Ok(self)
    }

    /// The same brokers and security settings, another topic.
    pub fn with_topic(&self, topic: impl Into<String>) -> Self {
        KafkaSettings {
            topic: topic.into(),
            ..self.clone()
        }
    }

    /// The rustls configuration, reading the PEM files now (so a bad file is an error at
    /// start, naming the file).
    pub(crate) fn tls_config(&self) -> Result<Option<Arc<rustls::ClientConfig>>, KafkaError> {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let Some(tls) = &self.tls else {
            return Ok(None);
        };
        let read_err = |what: &'static str, path: &Path, e: rustls::pki_types::pem::Error| {
            KafkaError::ReadFile {
                what,
                path: path.to_path_buf(),
                source: match e {
                    rustls::pki_types::pem::Error::Io(io) => io,
                    other => std::io::Error::new(std::io::ErrorKind::InvalidData, other),
                },
            }
        };
        let certs = |what: &'static str, path: &Path| {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|it| it.collect::<Result<Vec<_>, _>>())
                .map_err(|e| read_err(what, path, e))?;
            if certs.is_empty() {
                return Err(KafkaError::ReadFile {
                    what,
                    path: path.to_path_buf(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        "no PEM certificate in it",
                    ),
                });
            }
            Ok(certs)
        };
        let mut roots = rustls::RootCertStore::empty();
        for cert in certs("TLS CA", &tls.ca_file)? {
            roots
                .add(cert)
                .map_err(|e| KafkaError::Tls(format!("CA in {}: {e}", tls.ca_file.display())))?;
        }
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| KafkaError::Tls(e.to_string()))?
            .with_root_certificates(roots);
        let config = match &tls.client {
            None => builder.with_no_client_auth(),
            Some((cert, key)) => {
                let chain = certs("TLS client certificate", cert)?;
                let key = PrivateKeyDer::from_pem_file(key)
                    .map_err(|e| read_err("TLS client key", key, e))?;
                builder
                    .with_client_auth_cert(chain, key)
                    .map_err(|e| KafkaError::Tls(format!("client certificate: {e}")))?
            }
        };
        Ok(Some(Arc::new(config)))
    }

    /// The SASL configuration rskafka takes.
    pub(crate) fn sasl_config(&self) -> Option<SaslConfig> {
        self.sasl.as_ref().map(|s| {
            let credentials = Credentials::new(s.username.clone(), s.password.clone());
            match s.mechanism {
                SaslMechanism::Plain => SaslConfig::Plain(credentials),
                SaslMechanism::ScramSha256 => SaslConfig::ScramSha256(credentials),
                SaslMechanism::ScramSha512 => SaslConfig::ScramSha512(credentials),
            }
        })
    }
}

/// Whether a `kafka://BROKERS[/TOPIC]` URL names its topic.
pub fn url_names_topic(url: &str) -> bool {
    let rest = url.split_once("://").map_or("", |(_, r)| r);
    rest.split_once('/').is_some_and(|(_, t)| !t.is_empty())
}

/// The URL with `topic` appended when it names none (`kafka://b` and `kafka://b/` both
/// become `kafka://b/TOPIC`); a URL that names one is returned as it is.
pub fn url_with_topic(url: &str, topic: &str) -> String {
    if url_names_topic(url) {
        url.to_string()
    } else {
        format!("{}/{topic}", url.strip_suffix('/').unwrap_or(url))
    }
}

fn valid_topic_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')
}

/// `KEY=VALUE` lines; `#` starts a comment line.
fn read_settings_file(path: &Path) -> Result<BTreeMap<String, String>, KafkaError> {
    let text = std::fs::read_to_string(path).map_err(|source| KafkaError::ReadFile {
        what: "Kafka settings",
        path: path.to_path_buf(),
        source,
    })?;
    let mut map = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (key, value) = line.split_once('=').ok_or_else(|| {
            KafkaError::Settings(format!("{}:{}: expected KEY=VALUE", path.display(), n + 1))
        })?;
        map.insert(key.trim().to_string(), value.trim().to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod url_tests {
    use super::*;

    #[test]
    fn a_default_topic_fills_in_only_where_none_is_named() {
        // podtracer's sink tests check url_with_topic on the URLs users write.
        assert!(url_names_topic("kafkas://a:9093,b/t"));
        assert!(!url_names_topic("kafka://a,b/"));
        assert!(!url_names_topic("kafka://a"));
        assert_eq!(url_with_topic("kafka://a,b/", "t"), "kafka://a,b/t");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lookup(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn urls_name_brokers_and_topic() {
        let s = KafkaSettings::from_url("kafka://a:19092,b/snoopy.packets").unwrap();
        assert_eq!(s.brokers, ["a:19092", "b:9092"]);
        assert_eq!(s.topic, "snoopy.packets");
        assert!(s.tls.is_none());
        for bad in [
            "file:///x",
            "kafka://a",
            "kafka:///t",
            "kafka://a/",
            "kafka://a/t/u",
            "kafka://a/t p",
        ] {
            assert!(KafkaSettings::from_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn sasl_password_comes_from_a_file_and_never_shows() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("pw");
        std::fs::write(&file, "s3cret\n").unwrap();
        let s = KafkaSettings::from_url("kafka://a/t")
            .unwrap()
            .with_lookup(lookup(&[
                (ENV_SASL_MECHANISM, "scram-sha-512"),
                (ENV_SASL_USERNAME, "snoopy"),
                (ENV_SASL_PASSWORD_FILE, file.to_str().unwrap()),
            ]))
            .unwrap();
        let sasl = s.sasl.as_ref().unwrap();
        assert_eq!(sasl.mechanism, SaslMechanism::ScramSha512);
        assert_eq!(sasl.password, "s3cret");
        assert!(!format!("{s:?}").contains("s3cret"));
    }

    #[test]
    fn settings_file_is_read_and_environment_wins() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("kafka.env");
        std::fs::write(
            &file,
            "# comment\nSNOOPY_KAFKA_CLIENT_ID=from-file\nSNOOPY_KAFKA_SASL_MECHANISM=PLAIN\nSNOOPY_KAFKA_SASL_USERNAME=u\nSNOOPY_KAFKA_SASL_PASSWORD=p\n",
        )
        .unwrap();
        let path = file.to_str().unwrap();
        let s = KafkaSettings::from_url("kafka://a/t")
            .unwrap()
            .with_lookup(lookup(&[
                (ENV_CONFIG, path),
                (ENV_SASL_USERNAME, "env-user"),
            ]))
            .unwrap();
        assert_eq!(s.client_id, "from-file");
        assert_eq!(s.sasl.unwrap().username, "env-user");
    }

    #[test]
    fn bad_tls_files_are_named() {
        let s = KafkaSettings::from_url("kafka://a/t")
            .unwrap()
            .with_lookup(lookup(&[(ENV_TLS_CA_FILE, "/nonexistent/ca.pem")]))
            .unwrap();
        let err = s.tls_config().unwrap_err().to_string();
        assert!(err.contains("/nonexistent/ca.pem"), "{err}");
        let half = KafkaSettings::from_url("kafka://a/t")
            .unwrap()
            .with_lookup(lookup(&[(ENV_TLS_CERT_FILE, "/c.pem")]));
        assert!(half.is_err());
        let kafkas = KafkaSettings::from_url("kafkas://a/t")
            .unwrap()
            .with_lookup(lookup(&[]));
        assert!(kafkas.unwrap_err().to_string().contains(ENV_TLS_CA_FILE));
    }
}
