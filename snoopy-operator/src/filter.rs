//! Filter validation before any Job exists.
//!
//! Interim: a structural check of tcpdump filter syntax (balanced parentheses, operators
//! between operands, primitives that need an argument have one, no unknown words). It will
//! be replaced by the workspace's filter compiler (`snoopy_capture::filter::compile`) once
//! that is on main: that module is pure (no I/O, no unsafe), and validating with the very
//! compiler podtracer runs is the only way the operator's verdict cannot differ from the
//! Job's — a justified exception to "the operator never links the capture code".

/// Checks a tcpdump filter expression; the error says what is wrong and where.
pub fn check(expr: &str) -> Result<(), String> {
    let tokens = tokenize(expr);
    if tokens.is_empty() {
        return Ok(()); // An empty filter accepts everything, as in tcpdump.
    }
    let mut depth = 0i32;
    let mut expect_operand = true;
    let mut i = 0;
    while i < tokens.len() {
        let t = tokens[i].as_str();
        let lower = t.to_ascii_lowercase();
        match lower.as_str() {
            "(" => {
                if !expect_operand {
                    return Err(format!(
                        "'(' at word {} follows an operand without and/or",
                        i + 1
                    ));
                }
                depth += 1;
            }
            ")" => {
                if expect_operand {
                    return Err(format!(
                        "')' at word {} closes an empty or unfinished group",
                        i + 1
                    ));
                }
                depth -= 1;
                if depth < 0 {
                    return Err(format!("unbalanced ')' at word {}", i + 1));
                }
            }
            "and" | "or" | "&&" | "||" => {
                if expect_operand {
                    return Err(format!("{t:?} at word {} has no left operand", i + 1));
                }
                expect_operand = true;
            }
            "not" | "!" => {
                if !expect_operand {
                    return Err(format!(
                        "{t:?} at word {} follows an operand without and/or",
                        i + 1
                    ));
                }
            }
            _ => {
                // A primitive: qualifiers, then maybe a keyword that needs an argument.
                let mut j = i;
                while j < tokens.len()
                    && QUALIFIERS.contains(&tokens[j].to_ascii_lowercase().as_str())
                {
                    j += 1;
                }
                if j < tokens.len() && NEEDS_ARG.contains(&tokens[j].to_ascii_lowercase().as_str())
                {
                    let Some(arg) = tokens.get(j + 1) else {
                        return Err(format!("{:?} needs an argument", tokens[j]));
                    };
                    if is_keyword(arg) {
                        return Err(format!("{:?} needs an argument, found {arg:?}", tokens[j]));
                    }
                    j += 2;
                } else if j > i && j < tokens.len() && !is_keyword(&tokens[j]) {
                    // `src 10.0.0.1`, `tcp 80`…: a qualifier and a bare id.
                    j += 1;
                } else if j == i {
                    if !(PRIMITIVES.contains(&lower.as_str()) || looks_like_expression(t)) {
                        return Err(format!("unknown word {t:?} in filter (at word {})", i + 1));
                    }
                    j += 1;
                }
                // Relational tails such as `tcp[13] & 2 != 0`: operands and operators.
                while j < tokens.len()
                    && (is_arith(&tokens[j]) || (j > 0 && is_arith(&tokens[j - 1])))
                {
                    j += 1;
                }
                if !expect_operand {
                    return Err(format!(
                        "{t:?} at word {} follows an operand without and/or",
                        i + 1
                    ));
                }
                expect_operand = false;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    if depth != 0 {
        return Err("unbalanced '(': a group is not closed".into());
    }
    if expect_operand {
        return Err("the filter ends with an operator".into());
    }
    Ok(())
}

const QUALIFIERS: &[&str] = &[
    "src", "dst", "ether", "ip", "ip6", "arp", "rarp", "tcp", "udp", "icmp", "icmp6", "sctp",
    "inbound", "outbound",
];
const NEEDS_ARG: &[&str] = &[
    "host",
    "net",
    "port",
    "portrange",
    "proto",
    "less",
    "greater",
    "vlan",
    "mask",
];
const PRIMITIVES: &[&str] = &[
    "ip",
    "ip6",
    "arp",
    "rarp",
    "tcp",
    "udp",
    "icmp",
    "icmp6",
    "sctp",
    "broadcast",
    "multicast",
    "vlan",
    "inbound",
    "outbound",
    "ether",
    "igmp",
    "pim",
    "vrrp",
    "ah",
    "esp",
    "gateway",
];

fn is_keyword(word: &str) -> bool {
    let w = word.to_ascii_lowercase();
    matches!(
        w.as_str(),
        "and" | "or" | "not" | "&&" | "||" | "!" | "(" | ")"
    ) || NEEDS_ARG.contains(&w.as_str())
        || QUALIFIERS.contains(&w.as_str())
}

fn is_arith(word: &str) -> bool {
    matches!(
        word,
        "&" | "|"
            | "="
            | "=="
            | "!="
            | "<"
            | ">"
            | "<="
            | ">="
            | "+"
            | "-"
            | "*"
            | "/"
            | "<<"
            | ">>"
    )
}

fn looks_like_expression(word: &str) -> bool {
    word.contains('[') || word.chars().next().is_some_and(|c| c.is_ascii_digit())
}

fn tokenize(expr: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut word = String::new();
    for c in expr.chars() {
        if c.is_whitespace() || c == '(' || c == ')' {
            if !word.is_empty() {
                out.push(std::mem::take(&mut word));
            }
            if c == '(' || c == ')' {
                out.push(c.to_string());
            }
        } else {
            word.push(c);
        }
    }
    if !word.is_empty() {
        out.push(word);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::check;

    #[test]
    fn accepts_common_filters() {
        for f in [
            "",
            "icmp",
            "tcp port 80",
            "udp and dst port 53",
            "host 10.0.0.1 and not port 22",
            "src net 10.0.0.0/8",
            "(tcp or udp) and port 443",
            "tcp[13] & 2 != 0",
            "icmp or arp",
            "not icmp",
            "ip proto 1",
            "portrange 1000-2000",
            "less 100",
        ] {
            assert_eq!(check(f), Ok(()), "{f}");
        }
    }

    #[test]
    fn rejects_broken_filters_with_a_reason() {
        for (f, needle) in [
            ("tcp port", "needs an argument"),
            ("port and", "needs an argument"),
            ("(tcp", "unbalanced"),
            ("tcp)", "unbalanced"),
            ("and tcp", "no left operand"),
            ("tcp and", "ends with an operator"),
            ("port 80 port 81", "without and/or"),
            ("frobnicate", "unknown word"),
            ("()", "empty"),
        ] {
            let err = check(f).unwrap_err();
            assert!(err.contains(needle), "{f}: {err}");
        }
    }
}
