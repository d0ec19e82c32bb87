//! Label selectors: to the API's query string, and matched locally (to map a pod event to
//! the CRs that select it without asking the API server).

use std::collections::BTreeMap;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement};

/// A selector the API cannot express (an unknown operator, `In` without values…).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid label selector: {0}")]
pub struct SelectorError(pub String);

/// The selector as a `labelSelector` query string (`a=b,c in (d,e),!f`). Empty matches all.
pub fn to_query(selector: &LabelSelector) -> Result<String, SelectorError> {
    let mut parts = Vec::new();
    for (k, v) in selector.match_labels.iter().flatten() {
        parts.push(format!("{k}={v}"));
    }
    for req in selector.match_expressions.iter().flatten() {
        parts.push(requirement_query(req)?);
    }
    Ok(parts.join(","))
}

fn requirement_query(req: &LabelSelectorRequirement) -> Result<String, SelectorError> {
    let values = req.values.clone().unwrap_or_default();
    let key = &req.key;
    match req.operator.as_str() {
        "In" | "NotIn" if values.is_empty() => Err(SelectorError(format!(
            "{key} {}: needs at least one value",
            req.operator
        ))),
        "In" => Ok(format!("{key} in ({})", values.join(","))),
        "NotIn" => Ok(format!("{key} notin ({})", values.join(","))),
        "Exists" => Ok(key.clone()),
        "DoesNotExist" => Ok(format!("!{key}")),
        other => Err(SelectorError(format!(
            "{key}: unknown operator {other:?} (use In, NotIn, Exists or DoesNotExist)"
        ))),
    }
}

/// Whether `labels` satisfy `selector`, with the API server's semantics.
pub fn matches(selector: &LabelSelector, labels: &BTreeMap<String, String>) -> bool {
    let exact = selector
        .match_labels
        .iter()
        .flatten()
        .all(|(k, v)| labels.get(k) == Some(v));
    exact
        && selector.match_expressions.iter().flatten().all(|req| {
            let value = labels.get(&req.key);
            let values = req.values.as_deref().unwrap_or_default();
            match req.operator.as_str() {
                "In" => value.is_some_and(|v| values.contains(v)),
                "NotIn" => value.is_none_or(|v| !values.contains(v)),
                "Exists" => value.is_some(),
                "DoesNotExist" => value.is_none(),
                _ => false,
            }
        })
}

/// An equality selector from a plain label map (the Tcpdump `podLabel`).
pub fn from_map(labels: &BTreeMap<String, String>) -> LabelSelector {
    LabelSelector {
        match_labels: Some(labels.clone()),
        match_expressions: None,
    }
}

/// Whether a selector selects everything.
pub fn is_empty(selector: &LabelSelector) -> bool {
    selector
        .match_labels
        .as_ref()
        .is_none_or(BTreeMap::is_empty)
        && selector
            .match_expressions
            .as_ref()
            .is_none_or(Vec::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).into(), (*v).into()))
            .collect()
    }

    fn req(key: &str, op: &str, values: &[&str]) -> LabelSelectorRequirement {
        LabelSelectorRequirement {
            key: key.into(),
            operator: op.into(),
            values: Some(values.iter().map(|v| (*v).into()).collect()),
        }
    }

    #[test]
    fn query_strings() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("tier", "In", &["a", "b"]),
                req("env", "NotIn", &["prod"]),
                req("x", "Exists", &[]),
                req("y", "DoesNotExist", &[]),
            ]),
        };
        assert_eq!(
            to_query(&sel).unwrap(),
            "app=web,tier in (a,b),env notin (prod),x,!y"
        );
        assert_eq!(to_query(&LabelSelector::default()).unwrap(), "");
        let bad = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![req("a", "Near", &[])]),
        };
        assert!(to_query(&bad).unwrap_err().to_string().contains("Near"));
        let empty_in = LabelSelector {
            match_labels: None,
            match_expressions: Some(vec![req("a", "In", &[])]),
        };
        assert!(to_query(&empty_in).is_err());
    }

    #[test]
    fn local_matching_follows_the_api_semantics() {
        let sel = LabelSelector {
            match_labels: Some(labels(&[("app", "web")])),
            match_expressions: Some(vec![
                req("env", "NotIn", &["prod"]),
                req("tier", "Exists", &[]),
            ]),
        };
        assert!(matches(&sel, &labels(&[("app", "web"), ("tier", "1")])));
        assert!(matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "1"), ("env", "dev")])
        ));
        assert!(!matches(
            &sel,
            &labels(&[("app", "web"), ("tier", "1"), ("env", "prod")])
        ));
        assert!(!matches(&sel, &labels(&[("app", "web")])));
        assert!(!matches(&sel, &labels(&[("app", "db"), ("tier", "1")])));
        assert!(matches(&LabelSelector::default(), &labels(&[])));
        assert!(is_empty(&LabelSelector::default()));
        assert!(!is_empty(&from_map(&labels(&[("a", "b")]))));
    }
}
