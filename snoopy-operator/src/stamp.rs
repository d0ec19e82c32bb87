//! The authorization stamp: how the reconciler knows that what it acts on passed the
//! admission webhook.
//!
//! The webhook checks the requesting user's RBAC (SubjectAccessReview) for everything a CR
//! asks for, then writes this annotation: who was checked, whether they may `create
//! pods/exec` cluster-wide, when, and a digest of the CR's kind, namespace and spec, all
//! signed (HMAC-SHA256) with a key only the operator holds (a Secret in its namespace). The
//! reconciler verifies it before planning; a CR whose stamp is missing, forged, or for
//! another spec (created before the webhook existed, with the webhook disabled, or edited
//! around it) gets the fail-closed rules instead (see [`crate::plan::Authorization`]).
//!
//! The CR's name is not covered: the webhook may see a CR before the apiserver generates
//! its name (`generateName`). A stamp copied to another CR of the same namespace with the
//! same spec authorizes exactly what was authorized already; copying it needs the webhook
//! off (it overwrites the annotation of every CR it admits).

use ring::rand::SecureRandom;
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};

/// The annotation holding the stamp.
pub const ANNOTATION: &str = "snoopy.fennecproject.io/authorization";

/// The stamp format's version (part of what is signed).
const VERSION: &str = "snoopy-stamp-v1";

/// Length of a generated key, in bytes.
pub const KEY_LEN: usize = 32;

/// The operator's signing key.
#[derive(Clone)]
pub struct StampKey {
    key: hmac::Key,
}

impl std::fmt::Debug for StampKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StampKey(..)")
    }
}

impl StampKey {
    /// A key from stored bytes (at least 32 of them).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, StampError> {
        if bytes.len() < KEY_LEN {
            return Err(StampError::ShortKey(bytes.len()));
        }
        Ok(Self {
            key: hmac::Key::new(hmac::HMAC_SHA256, bytes),
        })
    }

    /// A new random key, and its bytes (to store).
    pub fn generate() -> Result<(Self, Vec<u8>), StampError> {
        let mut bytes = vec![0u8; KEY_LEN];
        ring::rand::SystemRandom::new()
            .fill(&mut bytes)
            .map_err(|_| StampError::Random)?;
        Ok((Self::from_bytes(&bytes)?, bytes))
    }
}

/// What the webhook checked, as stored in the annotation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stamp {
    /// The user the webhook asked for (the request's `userInfo.username`).
    pub user: String,
    /// Whether that user may `create pods/exec` in every namespace (needed for
    /// `namespaceSelector` and for hostNetwork targets, which expose the node).
    pub cluster_wide_exec: bool,
    /// When the webhook checked (RFC 3339).
    pub issued: String,
    /// Hex SHA-256 of the spec that was checked.
    pub spec: String,
    /// Hex HMAC-SHA256 over all of the above, the kind and the namespace.
    pub sig: String,
}

/// Why a stamp does not authorize a CR.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StampError {
    /// No annotation.
    #[error("it has no {ANNOTATION} annotation")]
    Missing,
    /// The annotation is not a stamp.
    #[error("its {ANNOTATION} annotation is not a stamp: {0}")]
    Malformed(String),
    /// The stamp is for another spec (the spec changed without passing the webhook).
    #[error("its spec changed after the webhook checked it")]
    SpecChanged,
    /// The signature does not verify (forged, or signed by another operator's key).
    #[error("its stamp's signature is not this operator's")]
    BadSignature,
    /// A stored key is too short.
    #[error("the stamp key has {0} bytes, at least {KEY_LEN} are needed")]
    ShortKey(usize),
    /// The system's random source failed.
    #[error("the system random generator failed (getrandom)")]
    Random,
}

/// What a stamp is about: the CR's kind and namespace and its spec as JSON.
#[derive(Debug, Clone, Copy)]
pub struct Subject<'a> {
    /// `SnoopyJob` or `Tcpdump`.
    pub kind: &'a str,
    /// The CR's namespace.
    pub namespace: &'a str,
    /// `serde_json::to_vec(&cr.spec)`: the typed spec, so the webhook and the reconciler
    /// serialize the same bytes (fields in declaration order, maps sorted).
    pub spec_json: &'a [u8],
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn spec_digest(spec_json: &[u8]) -> String {
    hex(digest::digest(&digest::SHA256, spec_json).as_ref())
}

fn message(
    subject: Subject<'_>,
    spec: &str,
    user: &str,
    cluster_wide: bool,
    issued: &str,
) -> Vec<u8> {
    // A JSON array: unambiguous whatever characters the user name holds.
    serde_json::to_vec(&(
        VERSION,
        subject.kind,
        subject.namespace,
        spec,
        user,
        cluster_wide,
        issued,
    ))
    .expect("a tuple of strings serializes")
}

impl StampKey {
    /// The annotation value for `subject` checked for `user`.
    pub fn sign(
        &self,
        subject: Subject<'_>,
        user: &str,
        cluster_wide_exec: bool,
        issued: &str,
    ) -> String {
        let spec = spec_digest(subject.spec_json);
        let sig = hex(hmac::sign(
            &self.key,
            &message(subject, &spec, user, cluster_wide_exec, issued),
        )
        .as_ref());
        serde_json::to_string(&Stamp {
            user: user.to_owned(),
            cluster_wide_exec,
            issued: issued.to_owned(),
            spec,
            sig,
        })
        .expect("a stamp serializes")
    }

    /// The stamp in `annotation`, if it was signed with this key for exactly `subject`.
    pub fn verify(
        &self,
        annotation: Option<&str>,
        subject: Subject<'_>,
    ) -> Result<Stamp, StampError> {
        let text = annotation.ok_or(StampError::Missing)?;
        let stamp: Stamp =
            serde_json::from_str(text).map_err(|e| StampError::Malformed(e.to_string()))?;
        let sig =
            unhex(&stamp.sig).ok_or_else(|| StampError::Malformed("sig is not hex".into()))?;
        hmac::verify(
            &self.key,
            &message(
                subject,
                &stamp.spec,
                &stamp.user,
                stamp.cluster_wide_exec,
                &stamp.issued,
            ),
            &sig,
        )
        .map_err(|_| StampError::BadSignature)?;
        // Compared after the signature: a forged stamp is reported as forged.
        if stamp.spec != spec_digest(subject.spec_json) {
            return Err(StampError::SpecChanged);
        }
        Ok(stamp)
    }
}

fn unhex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.is_ascii() {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn subject<'a>(ns: &'a str, spec: &'a [u8]) -> Subject<'a> {
        Subject {
            kind: "SnoopyJob",
            namespace: ns,
            spec_json: spec,
        }
    }

    #[test]
    fn a_stamp_verifies_for_its_subject_only() {
        let (key, _) = StampKey::generate().unwrap();
        let spec = br#"{"targetNamespace":"b"}"#;
        let stamp = key.sign(subject("a", spec), "alice", false, "2026-12-03T14:00:00Z");
        let ok = key.verify(Some(&stamp), subject("a", spec)).unwrap();
        assert_eq!((ok.user.as_str(), ok.cluster_wide_exec), ("alice", false));

        assert_eq!(
            key.verify(Some(&stamp), subject("a", br#"{"targetNamespace":"c"}"#)),
            Err(StampError::SpecChanged)
        );
        // Another namespace or kind is another message: the signature fails.
        assert_eq!(
            key.verify(Some(&stamp), subject("other", spec)),
            Err(StampError::BadSignature)
        );
        let tcpdump = Subject {
            kind: "Tcpdump",
            ..subject("a", spec)
        };
        assert_eq!(
            key.verify(Some(&stamp), tcpdump),
            Err(StampError::BadSignature)
        );
        assert_eq!(
            key.verify(None, subject("a", spec)),
            Err(StampError::Missing)
        );
        assert!(matches!(
            key.verify(Some("yes"), subject("a", spec)),
            Err(StampError::Malformed(_))
        ));
    }

    #[test]
    fn edited_or_foreign_stamps_are_refused() {
        let (key, _) = StampKey::generate().unwrap();
        let (other, _) = StampKey::generate().unwrap();
        let spec = b"{}";
        let stamp = key.sign(subject("a", spec), "alice", false, "t");
        // Another operator's key.
        assert_eq!(
            other.verify(Some(&stamp), subject("a", spec)),
            Err(StampError::BadSignature)
        );
        // The user raises their own rights in the annotation.
        let mut edited: Stamp = serde_json::from_str(&stamp).unwrap();
        edited.cluster_wide_exec = true;
        let edited = serde_json::to_string(&edited).unwrap();
        assert_eq!(
            key.verify(Some(&edited), subject("a", spec)),
            Err(StampError::BadSignature)
        );
        // A stamp for another spec with the digest swapped in.
        let mut swapped: Stamp = serde_json::from_str(&stamp).unwrap();
        swapped.spec = spec_digest(b"{\"x\":1}");
        let swapped = serde_json::to_string(&swapped).unwrap();
        assert_eq!(
            key.verify(Some(&swapped), subject("a", b"{\"x\":1}")),
            Err(StampError::BadSignature)
        );
    }

    #[test]
    fn keys_are_stored_and_read_back() {
        let (key, bytes) = StampKey::generate().unwrap();
        let again = StampKey::from_bytes(&bytes).unwrap();
        let stamp = key.sign(subject("a", b"{}"), "u", true, "t");
        assert!(again.verify(Some(&stamp), subject("a", b"{}")).is_ok());
        assert_eq!(
            StampKey::from_bytes(&bytes[..16]).unwrap_err(),
            StampError::ShortKey(16)
        );
    }
}
