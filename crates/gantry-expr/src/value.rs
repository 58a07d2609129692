//! The values expressions read from contexts and produce.

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::number::coerce_number_to_string;
use crate::text::keys_match;

/// A value of the expression language: JSON's data model with every number a double.
///
/// Object keys keep their case and order; lookups through expressions ignore case and take the
/// first matching key, like GitHub does.
#[derive(Debug, Clone, PartialEq, Default)]
pub enum Value {
    /// `null`; also what a missing property reads as.
    #[default]
    Null,
    /// `true` or `false`.
    Boolean(bool),
    /// A double; NaN, the infinities and -0 are possible results.
    Number(f64),
    /// A string.
    String(String),
    /// An array.
    Array(Vec<Value>),
    /// An object with case-preserving keys in insertion order.
    Object(IndexMap<String, Value>),
}

impl Value {
    /// GitHub's name for the value's kind: `Null`, `Boolean`, `Number`, `String`, `Array` or
    /// `Object`.
    pub fn kind(&self) -> &'static str {
        match self {
            Value::Null => "Null",
            Value::Boolean(_) => "Boolean",
            Value::Number(_) => "Number",
            Value::String(_) => "String",
            Value::Array(_) => "Array",
            Value::Object(_) => "Object",
        }
    }

    /// Converts JSON into a value; numbers become doubles.
    pub fn from_json(json: &serde_json::Value) -> Value {
        match json {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Boolean(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::String(s.clone()),
            serde_json::Value::Array(items) => {
                Value::Array(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(map) => Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), Value::from_json(value)))
                    .collect(),
            ),
        }
    }

    /// Converts the value into JSON the way JavaScript's `JSON.stringify` would: NaN and the
    /// infinities become `null`, -0 becomes 0 and integral numbers become JSON integers.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Boolean(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Array(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(map) => serde_json::Value::Object(
                map.iter()
                    .map(|(key, value)| (key.clone(), value.to_json()))
                    .collect(),
            ),
        }
    }

    /// Truthiness as `if:`, `!`, `&&` and `||` see it: `null`, `false`, `0`, `-0`, NaN and `''`
    /// are false; everything else, including empty arrays and objects, is true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Boolean(b) => *b,
            Value::Number(n) => !(*n == 0.0 || n.is_nan()),
            Value::String(s) => !s.is_empty(),
            Value::Array(_) | Value::Object(_) => true,
        }
    }

    /// The string GitHub makes of the value when it interpolates it into text: `''` for null,
    /// `true`/`false`, numbers printed like JavaScript after rounding to 15 decimals, strings
    /// unchanged, and the words `Array` and `Object` for containers.
    pub fn to_coerced_string(&self) -> String {
        match self {
            Value::Null => String::new(),
            Value::Boolean(b) => b.to_string(),
            Value::Number(n) => coerce_number_to_string(*n),
            Value::String(s) => s.clone(),
            Value::Array(_) => "Array".to_owned(),
            Value::Object(_) => "Object".to_owned(),
        }
    }

    /// Reads a property the way `value.name` does: objects match the name case-insensitively
    /// (the first matching key wins); anything else has no properties.
    pub fn get(&self, name: &str) -> Option<&Value> {
        match self {
            Value::Object(map) => lookup_key(map, name),
            _ => None,
        }
    }
}

/// The first entry whose key matches `name` case-insensitively.
pub(crate) fn lookup_key<'a>(map: &'a IndexMap<String, Value>, name: &str) -> Option<&'a Value> {
    // An exact hit is the answer unless an earlier key differs only in case, which the scan
    // below would find first; checking the index keeps the common case O(1) plus a short scan.
    if let Some((index, _, value)) = map.get_full(name) {
        let earlier = map
            .iter()
            .take(index)
            .find(|(key, _)| keys_match(key, name))
            .map(|(_, value)| value);
        return Some(earlier.unwrap_or(value));
    }
    map.iter()
        .find(|(key, _)| keys_match(key, name))
        .map(|(_, value)| value)
}

fn number_to_json(n: f64) -> serde_json::Value {
    if !n.is_finite() {
        return serde_json::Value::Null;
    }
    // 2^53: beyond it doubles are not all integers a JSON reader could take back exactly.
    const MAX_EXACT_INTEGER: f64 = 9_007_199_254_740_992.0;
    if n.fract() == 0.0 && n.abs() <= MAX_EXACT_INTEGER {
        return serde_json::Value::from(n as i64);
    }
    serde_json::Number::from_f64(n)
        .map(serde_json::Value::Number)
        .unwrap_or(serde_json::Value::Null)
}

impl From<serde_json::Value> for Value {
    fn from(json: serde_json::Value) -> Value {
        Value::from_json(&json)
    }
}

impl From<&str> for Value {
    fn from(text: &str) -> Value {
        Value::String(text.to_owned())
    }
}

impl From<String> for Value {
    fn from(text: String) -> Value {
        Value::String(text)
    }
}

impl From<bool> for Value {
    fn from(b: bool) -> Value {
        Value::Boolean(b)
    }
}

impl From<f64> for Value {
    fn from(n: f64) -> Value {
        Value::Number(n)
    }
}

impl Serialize for Value {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for Value {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Value, D::Error> {
        serde_json::Value::deserialize(deserializer).map(Value::from)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn converts_json_both_ways() {
        let json = json!({"a": [1, 2.5, null, true, "x"], "B": {}});
        let value = Value::from_json(&json);
        assert_eq!(value.to_json(), json);
        assert_eq!(Value::Number(f64::NAN).to_json(), json!(null));
        assert_eq!(Value::Number(-0.0).to_json(), json!(0));
    }

    #[test]
    fn coerces_and_tests_truthiness() {
        assert_eq!(Value::Number(1.5).to_coerced_string(), "1.5");
        assert_eq!(Value::Null.to_coerced_string(), "");
        assert_eq!(Value::Array(vec![]).to_coerced_string(), "Array");
        assert!(!Value::Number(f64::NAN).is_truthy());
        assert!(Value::Object(IndexMap::new()).is_truthy());
        assert!(!Value::String(String::new()).is_truthy());
    }

    #[test]
    fn looks_up_keys_case_insensitively_first_wins() {
        let value = Value::from_json(&json!({"Name": 1, "name": 2}));
        assert_eq!(value.get("name"), Some(&Value::Number(1.0)));
        assert_eq!(value.get("NAME"), Some(&Value::Number(1.0)));
        assert_eq!(value.get("other"), None);
    }
}
