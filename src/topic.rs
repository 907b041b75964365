//! MQTT topic filter matching (`+` one level, `#` the rest), used to tell which configured
//! filter a message belongs to and to refuse overlapping filters (a message matching two
//! filters would be delivered, and stored, twice).

/// True when `topic` matches `filter`.
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when some topic would match both filters.
pub fn overlap(a: &str, b: &str) -> bool {
    let mut x = a.split('/');
    let mut y = b.split('/');
    loop {
        match (x.next(), y.next()) {
            (Some("#"), _) | (_, Some("#")) => return true,
            (Some("+"), Some(_)) | (Some(_), Some("+")) => {}
            (Some(p), Some(q)) if p == q => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when every topic that `requested` matches is also matched by `allowed`: a
/// subscription to `requested` stays within what a user may read.
pub fn covers(allowed: &str, requested: &str) -> bool {
    let mut a = allowed.split('/');
    let mut r = requested.split('/');
    loop {
        match (a.next(), r.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(lvl)) if lvl != "#" => {}
            (Some(p), Some(q)) if p == q && p != "+" && p != "#" => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

/// True when `topic` starts with `$`: such topics are the broker's own and are not matched
/// by filters starting with a wildcard (MQTT 3.1.1 §4.7.2).
pub fn is_system(topic: &str) -> bool {
    topic.starts_with('$')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matching_and_overlap() {
        assert!(matches("Prueba", "Prueba"));
        assert!(!matches("Prueba", "Prueba/x"));
        assert!(matches("sensores/#", "sensores/a/b"));
        assert!(matches("sensores/+/t", "sensores/a/t"));
        assert!(!matches("sensores/+/t", "sensores/a/b"));
        assert!(overlap("sensores/#", "sensores/a"));
        assert!(overlap("+/a", "b/+"));
        assert!(!overlap("Prueba", "sensores/#"));
        assert!(!overlap("a/+", "a/b/c"));
    }

    #[test]
    fn covering_filters() {
        assert!(covers("#", "sensores/#"));
        assert!(covers("sensores/#", "sensores/+/t"));
        assert!(covers("sensores/+", "sensores/a"));
        assert!(covers("Prueba", "Prueba"));
        assert!(!covers("sensores/+", "sensores/#"));
        assert!(!covers("Prueba", "#"));
        assert!(!covers("Prueba", "+"));
        assert!(!covers("sensores/a", "sensores/+"));
        assert!(!covers("a/b", "a"));
    }
}
