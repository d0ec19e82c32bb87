//! The environment a node job's podtracer reads (the operator sets it in the Job).

/// The node the Job runs on (the Job sets it from `spec.nodeName`): in Kafka messages.
pub const NODE_NAME: &str = "NODE_NAME";
/// The run's id, in every Kafka message's `run` header (podtracer's `--run-id`).
pub const RUN_ID: &str = "SNOOPY_RUN_ID";
/// A file of `SNOOPY_KAFKA_*=VALUE` lines (the variables below, for a host without them).
pub const KAFKA_CONFIG: &str = "SNOOPY_KAFKA_CONFIG";
/// The Kafka client id.
pub const KAFKA_CLIENT_ID: &str = "SNOOPY_KAFKA_CLIENT_ID";
/// PEM file of the CA that signed the brokers' certificates (`kafkas://`).
pub const KAFKA_TLS_CA_FILE: &str = "SNOOPY_KAFKA_TLS_CA_FILE";
/// PEM file of the client certificate (mutual TLS).
pub const KAFKA_TLS_CERT_FILE: &str = "SNOOPY_KAFKA_TLS_CERT_FILE";
/// PEM file of the client certificate's key (mutual TLS).
pub const KAFKA_TLS_KEY_FILE: &str = "SNOOPY_KAFKA_TLS_KEY_FILE";
/// `PLAIN`, `SCRAM-SHA-256` or `SCRAM-SHA-512`.
pub const KAFKA_SASL_MECHANISM: &str = "SNOOPY_KAFKA_SASL_MECHANISM";
/// The SASL user name.
pub const KAFKA_SASL_USERNAME: &str = "SNOOPY_KAFKA_SASL_USERNAME";
/// The SASL password (prefer the file).
pub const KAFKA_SASL_PASSWORD: &str = "SNOOPY_KAFKA_SASL_PASSWORD";
/// A file holding the SASL password (a mounted Secret key).
pub const KAFKA_SASL_PASSWORD_FILE: &str = "SNOOPY_KAFKA_SASL_PASSWORD_FILE";
