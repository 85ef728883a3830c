//! What the API server accepts as an object's name, namespace, label and annotation (the rules of
//! k8s.io/apimachinery's validation package), so that offline validation refuses what `kubectl
//! apply` would. Each check returns why the value is refused, as a clause ("it must ...").

/// A DNS-1123 label: the namespace of an object, a label's name part.
pub const DNS1123_LABEL_MAX: usize = 63;
/// A DNS-1123 subdomain: the name of a custom resource, a label key's prefix.
pub const DNS1123_SUBDOMAIN_MAX: usize = 253;
/// A label value, and the name part of a label or annotation key.
pub const LABEL_VALUE_MAX: usize = 63;
/// All the annotations of an object together (keys and values).
pub const ANNOTATIONS_MAX_BYTES: usize = 256 * 1024;

fn lower_alphanumeric(c: char) -> bool {
    c.is_ascii_lowercase() || c.is_ascii_digit()
}

fn dns_label_chars(s: &str) -> bool {
    !s.is_empty()
        && s.starts_with(lower_alphanumeric)
        && s.ends_with(lower_alphanumeric)
        && s.chars().all(|c| lower_alphanumeric(c) || c == '-')
}

/// A namespace: at most 63 lowercase letters, digits and '-', starting and ending alphanumeric.
pub fn check_dns1123_label(s: &str) -> Result<(), String> {
    if s.len() > DNS1123_LABEL_MAX {
        return Err(format!("it must be at most {DNS1123_LABEL_MAX} characters"));
    }
    if !dns_label_chars(s) {
        return Err(
            "it must consist of lowercase letters, digits and '-', and start and end with a letter or digit".into(),
        );
    }
    Ok(())
}

/// A custom resource's name: at most 253 characters, dot-separated DNS labels.
pub fn check_dns1123_subdomain(s: &str) -> Result<(), String> {
    if s.len() > DNS1123_SUBDOMAIN_MAX {
        return Err(format!("it must be at most {DNS1123_SUBDOMAIN_MAX} characters"));
    }
    if !s.split('.').all(dns_label_chars) {
        return Err("it must consist of lowercase letters, digits, '-' and '.', each '.'-separated part starting and ending with a letter or digit".into());
    }
    Ok(())
}

fn qualified_name_part(s: &str) -> bool {
    let alphanumeric = |c: char| c.is_ascii_alphanumeric();
    !s.is_empty()
        && s.len() <= LABEL_VALUE_MAX
        && s.starts_with(alphanumeric)
        && s.ends_with(alphanumeric)
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// A label or annotation key: an optional DNS subdomain prefix and '/', then a name of at most 63
/// letters, digits, '-', '_' and '.', starting and ending alphanumeric.
pub fn check_qualified_name(key: &str) -> Result<(), String> {
    let (prefix, name) = match key.split_once('/') {
        Some((prefix, name)) => (Some(prefix), name),
        None => (None, key),
    };
    if let Some(prefix) = prefix {
        if prefix.is_empty() {
            return Err("its prefix before '/' is empty".into());
        }
        check_dns1123_subdomain(prefix).map_err(|e| format!("its prefix {prefix:?}: {e}"))?;
    }
    if !qualified_name_part(name) {
        return Err(format!(
            "it must be a name of at most {LABEL_VALUE_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally after a DNS subdomain prefix and '/'"
        ));
    }
    Ok(())
}

/// A label value: empty, or at most 63 letters, digits, '-', '_' and '.', starting and ending
/// alphanumeric.
pub fn check_label_value(value: &str) -> Result<(), String> {
    if value.is_empty() || qualified_name_part(value) {
        return Ok(());
    }
    Err(format!(
        "it must be empty or at most {LABEL_VALUE_MAX} letters, digits, '-', '_' and '.', starting and ending with a letter or digit"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_subdomains_as_the_api_server_checks_them() {
        for ok in ["a", "payments", "payments-prod.eu", "0", &"a".repeat(253)] {
            assert_eq!(check_dns1123_subdomain(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "A",
            "a..b",
            "a.-b",
            "-a",
            "a-",
            "a_b",
            "a b",
            "\n",
            &"a".repeat(254),
        ] {
            assert!(check_dns1123_subdomain(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn namespaces_are_dns_labels() {
        assert_eq!(check_dns1123_label("accounts"), Ok(()));
        for bad in ["", "Bad_NS!! with spaces", "a.b", "\n", &"a".repeat(64)] {
            assert!(check_dns1123_label(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn label_keys_are_qualified_names_and_values_short_names() {
        for ok in ["app", "trailkeeper.io/set", "a_b.c-D", "example.com/x"] {
            assert_eq!(check_qualified_name(ok), Ok(()), "{ok}");
        }
        for bad in [
            "",
            "bad key/with space",
            "/x",
            "a/",
            "Example.com/x",
            "a/b/c",
            "-a",
            &"a".repeat(64),
        ] {
            assert!(check_qualified_name(bad).is_err(), "{bad:?}");
        }
        for ok in ["", "prod", "111122223333", "a.b_c-d"] {
            assert_eq!(check_label_value(ok), Ok(()), "{ok}");
        }
        for bad in ["{{accountId}}", "a b", "-a", &"a".repeat(64)] {
            assert!(check_label_value(bad).is_err(), "{bad:?}");
        }
    }
}
