//! Canonical JSON: the one byte form of a JSON value that hashes cover.
//!
//! Object members are written sorted by their names' UTF-8 bytes, with no
//! whitespace; strings with serde_json's escaping; numbers as serde_json
//! writes them (policies and log entries hold only integers). The order
//! is the writer's, not the map's: `serde_json::Map` keeps insertion order
//! when any crate in a build switches on its `preserve_order` feature
//! (the AWS SDK's HTTP client does), and a hash must not depend on what
//! else is linked.

use serde_json::Value;

/// The canonical bytes of `value`.
#[must_use]
pub(crate) fn to_vec(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    write(value, &mut out);
    out
}

fn write(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Object(map) => {
            let mut members: Vec<_> = map.iter().collect();
            members.sort_by(|(a, _), (b, _)| a.as_bytes().cmp(b.as_bytes()));
            out.push(b'{');
            for (i, (name, member)) in members.into_iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                string(name, out);
                out.push(b':');
                write(member, out);
            }
            out.push(b'}');
        }
        Value::Array(items) => {
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                write(item, out);
            }
            out.push(b']');
        }
        Value::String(s) => string(s, out),
        // Scalars: serde_json's own text (a number, true, false, null).
        other => out.extend_from_slice(other.to_string().as_bytes()),
    }
}

fn string(s: &str, out: &mut Vec<u8>) {
    // Serializing a string cannot fail.
    out.extend_from_slice(serde_json::to_string(s).unwrap_or_default().as_bytes());
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    #[test]
    fn members_are_sorted_whatever_order_they_were_inserted_in() {
        let mut a = serde_json::Map::new();
        a.insert("b".into(), json!(1));
        a.insert("a".into(), json!({"z": [true, null, "x\"y"], "y": 2}));
        assert_eq!(
            super::to_vec(&serde_json::Value::Object(a)),
            br#"{"a":{"y":2,"z":[true,null,"x\"y"]},"b":1}"#
        );
    }
}
